"""Account writes: registration, login, tokens, logout, passwords, API keys, profile."""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_ratelimit.core import get_usage
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend as jwt_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import credential_cache, selectors
from accounts.models import ApiKey, AuthProvider, AuthSession, User
from accounts.team_services import teams_hand_over
from chatplatform.api.exceptions import AppError

API_KEY_PREFIX = "cpk"
_KEY_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    session_id: str

    def as_response(self) -> dict[str, Any]:
        return {
            "access_token": self.access,
            "refresh_token": self.refresh,
            "token_type": "bearer",
            "expires_in": int(settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        }


# --- registration and login -------------------------------------------------------------------


def _validate_password(password: str, user: User | None = None, field: str = "password") -> None:
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise AppError(
            "Password is too weak.", status_code=422, details={field: list(exc.messages)}
        ) from exc


@transaction.atomic
def user_register(
    *,
    username: str,
    email: str,
    password: str,
    full_name: str = "",
    auth_provider: str = AuthProvider.LOCAL,
) -> User:
    """Create a local account. Username and email are unique regardless of case."""
    if User.objects.filter(username__iexact=username).exists():
        raise AppError("Username already registered.", status_code=409, code="CONFLICT",
                       details={"username": ["A user with that username already exists."]})
    if User.objects.filter(email__iexact=email).exists():
        raise AppError("Email already registered.", status_code=409, code="CONFLICT",
                       details={"email": ["A user with that email already exists."]})
    user = User(username=username, email=email, full_name=full_name, auth_provider=auth_provider)
    _validate_password(password, user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise AppError("Username or email already registered.", status_code=409,
                       code="CONFLICT") from exc
    return user


def _throttle_key_ip(ip: str):
    return lambda group, request: f"ip:{ip}"


def _throttle_key_account(identifier: str):
    digest = hashlib.sha256(identifier.strip().lower().encode()).hexdigest()[:32]
    return lambda group, request: f"acct:{digest}"


def _too_many(usage: dict | None, message: str, *, at_limit: bool = False) -> None:
    """``at_limit``: a read-only check (nothing incremented), so reaching the limit already blocks."""
    if usage and (usage["should_limit"] or (at_limit and usage["count"] >= usage["limit"])):
        retry = max(1, int(usage["time_left"]))
        raise AppError(message, status_code=429, code="RATE_LIMITED",
                       headers={"Retry-After": str(retry)}, details={"retry_after": retry})


def user_login(*, request, identifier: str, password: str, ip: str, user_agent: str = "") -> tuple[User, TokenPair]:
    """Check credentials (username or email) and open a session.

    Throttled per client IP (every attempt counts) and per account (failures count), so neither
    password spraying from one address nor guessing one account from many addresses gets far.
    """
    ip_usage = get_usage(request, group="login-ip", key=_throttle_key_ip(ip),
                         rate=settings.LOGIN_RATE_PER_IP, increment=True)
    _too_many(ip_usage, "Too many login attempts from this address. Try again later.")
    user = selectors.user_by_login(identifier)
    # Keyed on the account itself when it exists, so its username and email share one counter.
    account_key = _throttle_key_account(f"id:{user.pk}" if user is not None else identifier)
    account_usage = get_usage(request, group="login-account", key=account_key,
                              rate=settings.LOGIN_FAILURES_PER_ACCOUNT, increment=False)
    _too_many(account_usage, "Too many failed login attempts for this account. Try again later.",
              at_limit=True)

    if user is None or not user.check_password(password) or not user.is_active:
        if user is None:
            # Spend the same time as a real check so timing does not reveal which usernames exist.
            User().set_password(password)
        get_usage(request, group="login-account", key=account_key,
                  rate=settings.LOGIN_FAILURES_PER_ACCOUNT, increment=True)
        raise AppError("Incorrect username or password.", status_code=401, code="INVALID_CREDENTIALS")
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    return user, session_open(user=user, ip=ip, user_agent=user_agent)


# --- sessions and tokens ----------------------------------------------------------------------


def session_open(*, user: User, ip: str = "", user_agent: str = "") -> TokenPair:
    """Start a session and issue its first token pair."""
    session = AuthSession.objects.create(user=user, ip_address=ip[:64], user_agent=user_agent[:256])
    return _issue(user, session.id)


def _issue(user: User, session_id: str) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    refresh["sid"] = session_id
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh), session_id=session_id)


def _decode_refresh(raw: str) -> dict[str, Any]:
    """Signature and expiry checked; blacklist not yet (the caller handles reuse)."""
    try:
        payload = jwt_backend.decode(raw, verify=True)
    except TokenBackendError as exc:
        raise AppError("Invalid or expired refresh token.", status_code=401, code="INVALID_TOKEN") from exc
    if payload.get(jwt_settings.TOKEN_TYPE_CLAIM) != "refresh" or not payload.get("sid"):
        raise AppError("Invalid or expired refresh token.", status_code=401, code="INVALID_TOKEN")
    return payload


def token_refresh(*, raw_refresh: str) -> tuple[User, TokenPair]:
    """Rotate a refresh token. Presenting an already-rotated token revokes the whole session:
    it means the token leaked and two parties are using it."""
    payload = _decode_refresh(raw_refresh)
    with transaction.atomic():
        session = (
            AuthSession.objects.select_for_update()
            .select_related("user")
            .filter(id=payload["sid"], user_id=payload.get(jwt_settings.USER_ID_CLAIM))
            .first()
        )
        if session is None or session.revoked_at is not None or not session.user.is_active:
            raise AppError("Session has ended. Please log in again.", status_code=401, code="INVALID_TOKEN")
        reused = BlacklistedToken.objects.filter(token__jti=payload["jti"]).exists()
        if reused:
            session_revoke(session=session)
        else:
            try:
                RefreshToken(raw_refresh).blacklist()
            except TokenError as exc:
                raise AppError("Invalid or expired refresh token.", status_code=401,
                               code="INVALID_TOKEN") from exc
            return session.user, _issue(session.user, session.id)
    # Raised after the block commits: raising inside it would roll the revocation back.
    raise AppError("Refresh token was already used; the session has been revoked.",
                   status_code=401, code="TOKEN_REUSED")


@transaction.atomic
def session_revoke(*, session: AuthSession) -> None:
    """End one session: its access and refresh tokens stop working now (both carry its id, and
    authentication and refresh both require the session to be live)."""
    if session.revoked_at is None:
        session.revoked_at = timezone.now()
        session.save(update_fields=["revoked_at"])


@transaction.atomic
def user_logout(*, user: User, session_id: str | None, raw_refresh: str | None = None) -> datetime:
    """Log out the session the caller's token belongs to (and the refresh token, if given)."""
    if raw_refresh:
        try:
            payload = _decode_refresh(raw_refresh)
            if payload.get(jwt_settings.USER_ID_CLAIM) == user.id:
                session_id = session_id or payload["sid"]
                RefreshToken(raw_refresh).blacklist()
        except (AppError, TokenError):
            pass  # an already-dead refresh token does not make logout fail
    if session_id:
        session = AuthSession.objects.filter(id=session_id, user=user).first()
        if session is not None:
            session_revoke(session=session)
    return timezone.now()


@transaction.atomic
def user_revoke_all_sessions(*, user: User) -> None:
    AuthSession.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    credential_cache.invalidate()  # a bulk update sends no save signal


@transaction.atomic
def user_change_password(*, user: User, current_password: str, new_password: str) -> TokenPair:
    """Change the password; every earlier token and session dies, a fresh pair is returned."""
    if not user.check_password(current_password):
        raise AppError("Current password is incorrect.", status_code=400, code="INVALID_PASSWORD",
                       details={"current_password": ["Current password is incorrect."]})
    if current_password == new_password:
        raise AppError("New password must differ from the current one.", status_code=422,
                       details={"new_password": ["New password must differ from the current one."]})
    _validate_password(new_password, user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    user_revoke_all_sessions(user=user)
    return session_open(user=user)


# --- API keys ---------------------------------------------------------------------------------


def hash_api_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _random(n: int) -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(n))


@transaction.atomic
def api_key_create(*, user: User, name: str = "default", expires_in_days: int | None = None) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never retrievable again."""
    prefix = _random(10)
    raw = f"{API_KEY_PREFIX}_{prefix}_{_random(40)}"
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    key = ApiKey.objects.create(user=user, name=name or "default", prefix=prefix,
                                key_hash=hash_api_key(raw), expires_at=expires_at)
    return key, raw


def api_key_revoke(*, user: User, key_id: str) -> ApiKey:
    key = ApiKey.objects.filter(id=key_id, user=user).first()
    if key is None:
        raise AppError("API key not found.", status_code=404)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def _verified_key(prefix: str, digest: str) -> ApiKey | None:
    key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.key_hash, digest):
        return None
    return key if key.is_active and key.user.is_active else None


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The active key matching ``raw`` (with its user), else None. Constant-time comparison.
    A key that checked out is remembered briefly in process (``accounts.credential_cache``)."""
    raw = raw.strip()
    parts = raw.split("_")
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    digest = hash_api_key(raw)
    shared = credential_cache.remembered(f"key:{digest}", lambda: _verified_key(parts[1], digest))
    if shared is None or not shared.is_active:  # is_active again: the key may have expired since
        return None
    now = timezone.now()
    # Record use at most once a minute per key: no write on every request.
    if shared.last_used_at is None or now - shared.last_used_at > timedelta(seconds=60):
        ApiKey.objects.filter(pk=shared.pk).update(last_used_at=now)
        shared.last_used_at = now
    key = copy.copy(shared)  # the caller's own objects: the remembered ones are shared by requests
    key.user = copy.copy(shared.user)
    return key


# --- profile, preferences, account ------------------------------------------------------------


@transaction.atomic
def user_update_profile(*, user: User, full_name: str | None = None, email: str | None = None) -> User:
    fields = ["updated_at"]
    if full_name is not None:
        user.full_name = full_name
        fields.append("full_name")
    if email is not None:
        if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
            raise AppError("Email already registered.", status_code=409, code="CONFLICT",
                           details={"email": ["A user with that email already exists."]})
        user.email = email
        fields.append("email")
    user.save(update_fields=fields)
    return user


@transaction.atomic
def user_update_preferences(*, user: User, preferences: dict[str, Any], replace: bool = False) -> dict[str, Any]:
    user.preferences = dict(preferences) if replace else {**(user.preferences or {}), **preferences}
    user.save(update_fields=["preferences", "updated_at"])
    return user.preferences


@transaction.atomic
def user_delete_account(*, user: User, password: str | None = None) -> None:
    """Delete the account and, through cascades, everything it owns; teams it alone owns pass to
    another member first (``teams_hand_over``). A ``password``, when given, must be the current
    one (the caller decides whether the credential itself suffices)."""
    if password is not None and not user.check_password(password):
        raise AppError("Password is incorrect.", status_code=400, code="INVALID_PASSWORD",
                       details={"password": ["Password is incorrect."]})
    teams_hand_over(user=user)
    OutstandingToken.objects.filter(user=user).delete()
    user.delete()
