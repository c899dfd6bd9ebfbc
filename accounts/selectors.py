"""Account reads."""

from __future__ import annotations

import copy
from typing import Any

from django.db.models import Q, QuerySet

from accounts import credential_cache
from accounts.models import ApiKey, AuthSession, User


def user_by_login(identifier: str) -> User | None:
    """The user whose username or email matches ``identifier`` (case-insensitive)."""
    identifier = identifier.strip()
    if not identifier:
        return None
    field = Q(email__iexact=identifier) if "@" in identifier else Q(username__iexact=identifier)
    return User.objects.filter(field).first()


def _live_session_user(session_id: str, user_id: str) -> User | None:
    session = (
        AuthSession.objects.select_related("user")
        .filter(id=session_id, user_id=user_id, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    return session.user if session else None


def session_user(*, session_id: Any, user_id: Any) -> User | None:
    """The active user of a live session, in one query (remembered briefly in process, see
    ``accounts.credential_cache``); None when revoked or unknown."""
    if not isinstance(session_id, str) or not isinstance(user_id, str):
        return None
    shared = credential_cache.remembered(f"session:{session_id}:{user_id}",
                                         lambda: _live_session_user(session_id, user_id))
    return copy.copy(shared) if shared is not None else None  # the caller's own object


def api_key_list(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at")
