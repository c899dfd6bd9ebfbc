"""Account reads."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import ApiKey, AuthSession, User


def user_by_login(identifier: str) -> User | None:
    """The user whose username or email matches ``identifier`` (case-insensitive)."""
    identifier = identifier.strip()
    if not identifier:
        return None
    field = Q(email__iexact=identifier) if "@" in identifier else Q(username__iexact=identifier)
    return User.objects.filter(field).first()


def session_user(*, session_id: Any, user_id: Any) -> User | None:
    """The active user of a live session, in one query; None when revoked or unknown."""
    if not isinstance(session_id, str) or not isinstance(user_id, str):
        return None
    session = (
        AuthSession.objects.select_related("user")
        .filter(id=session_id, user_id=user_id, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    return session.user if session else None


def api_key_list(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at")
