"""Single sign-on: login start, the provider's callback, the hand-off of our tokens, and which
account an identity signs in as.

The flow (``docs/compat.md`` records the decisions):

1. ``sso_login_start``: the client's ``redirect_uri`` must be on the allow-list (exact match). The
   PKCE verifier, the nonce and the client's redirect are kept server-side in the shared cache under
   the ``state`` sent to the provider (single use, ``STATE_TTL_SECONDS``).
2. ``sso_callback``: the state is taken (a second use finds nothing), the code exchanged and the ID
   token validated (``accounts.oidc``), the identity mapped to an account, and a one-time hand-off
   code issued. The browser goes back to the client's ``redirect_uri`` with ``?code=`` (and the
   client's own ``state``), or with ``?error=`` when sign-in failed. No token is ever in a URL.
3. ``sso_code_redeem``: the client posts the code (with the same ``redirect_uri``) and gets the
   usual token body. Codes are single use and live ``HANDOFF_TTL_SECONDS``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import oidc
from accounts.models import AuthProvider, SsoIdentity, User
from accounts.oidc import IdentityError, OidcProvider
from accounts.services import TokenPair, session_open
from chatplatform.api.exceptions import AppError

STATE_TTL_SECONDS = 600
HANDOFF_TTL_SECONDS = 120
_STATE_PREFIX = "sso:state:"
_CODE_PREFIX = "sso:code:"
_USERNAME_CHARS = re.compile(r"[^A-Za-z0-9_.\-]+")
_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")


def _key(prefix: str, secret: str) -> str:
    return prefix + hashlib.sha256(secret.encode()).hexdigest()


def _take(key: str) -> dict[str, Any] | None:
    """Read and delete ``key``; only the caller whose delete removed it gets the value (single use
    even when two requests race)."""
    value = cache.get(key)
    if not isinstance(value, dict) or not cache.delete(key):
        return None
    return value


def with_query(uri: str, params: dict[str, str]) -> str:
    """``uri`` with ``params`` added to its query string (its own parameters kept)."""
    parts = urlsplit(uri)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *((k, v) for k, v in params.items() if v)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


# --- 1. login ------------------------------------------------------------------------------------


def sso_login_start(*, provider_name: str | None, redirect_uri: str, client_state: str = "",
                    callback_url: str) -> str:
    """The identity provider's authorization URL to redirect the browser to."""
    provider = oidc.provider_named(provider_name)
    if redirect_uri not in provider.allowed_redirect_uris:
        raise AppError("redirect_uri is not on this server's allow-list.", status_code=400,
                       code="REDIRECT_URI_NOT_ALLOWED",
                       details={"redirect_uri": ["Not allowed: it must equal one of OIDC_ALLOWED_REDIRECT_URIS."]})
    try:
        started = oidc.authorization_start(provider, callback_url=callback_url)
    except IdentityError as exc:
        raise AppError(exc.description, status_code=502, code="SSO_PROVIDER_UNAVAILABLE") from exc
    cache.set(_key(_STATE_PREFIX, started["state"]), {
        "provider": provider.name, "code_verifier": started["code_verifier"], "nonce": started["nonce"],
        "redirect_uri": redirect_uri, "client_state": client_state, "callback_url": callback_url,
    }, STATE_TTL_SECONDS)
    return started["url"]


# --- 2. the provider's callback ----------------------------------------------------------------------


def sso_callback(*, state: str, code: str, error: str = "") -> str:
    """Finish a login; returns where to send the browser (the client's ``redirect_uri`` with a
    hand-off ``code``, or with ``error``). A missing, unknown, expired or reused ``state`` is a 400:
    there is no trustworthy place to send the browser then."""
    oidc.require_configured()
    pending = _take(_key(_STATE_PREFIX, state)) if state else None
    if pending is None:
        raise AppError("Unknown, expired or already used SSO state: start the login again.", status_code=400,
                       code="INVALID_SSO_STATE", details={"state": ["Unknown, expired or already used."]})
    back = {"state": pending["client_state"]}
    try:
        if error:
            raise IdentityError(error if _ERROR_CODE.match(error) else "access_denied",
                                "The identity provider did not sign the user in.")
        if not code:
            raise IdentityError("invalid_request", "The identity provider sent no authorization code.")
        provider = oidc.providers().get(pending["provider"])
        if provider is None:
            raise IdentityError("server_error", "The identity provider is no longer configured.")
        claims = oidc.identity_claims(provider, code=code, callback_url=pending["callback_url"],
                                      code_verifier=pending["code_verifier"], nonce=pending["nonce"])
        user = user_for_identity(provider=provider, claims=claims)
    except IdentityError as exc:
        return with_query(pending["redirect_uri"], {"error": exc.error, "error_description": exc.description,
                                                    **back})
    handoff = secrets.token_urlsafe(32)
    cache.set(_key(_CODE_PREFIX, handoff), {"user_id": user.pk, "redirect_uri": pending["redirect_uri"],
                                            "provider": provider.name}, HANDOFF_TTL_SECONDS)
    return with_query(pending["redirect_uri"], {"code": handoff, **back})


# --- 3. the hand-off --------------------------------------------------------------------------------


def sso_code_redeem(*, code: str, redirect_uri: str, ip: str = "", user_agent: str = "") -> tuple[User, TokenPair]:
    """Our tokens for a hand-off code (single use; bound to the ``redirect_uri`` it was sent to)."""
    oidc.require_configured()
    pending = _take(_key(_CODE_PREFIX, code))
    if pending is None or pending["redirect_uri"] != redirect_uri:
        raise AppError("Unknown, expired or already used sign-in code.", status_code=400, code="INVALID_SSO_CODE",
                       details={"code": ["Unknown, expired, already used, or issued for another redirect_uri."]})
    user = User.objects.filter(pk=pending["user_id"], is_active=True).first()
    if user is None:
        raise AppError("This account is disabled.", status_code=401, code="INVALID_CREDENTIALS")
    return user, session_open(user=user, ip=ip, user_agent=user_agent)


# --- which account an identity is -------------------------------------------------------------------


def _email_verified(claims: dict[str, Any]) -> bool:
    value = claims.get("email_verified")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _free_username(claims: dict[str, Any], email: str) -> str:
    base = claims.get("preferred_username") or (email.split("@")[0] if email else "") or "user"
    base = _USERNAME_CHARS.sub("-", str(base)).strip("-.")[:120] or "user"
    if len(base) < 3:
        base = f"{base}-sso"
    candidate = base
    for _ in range(20):
        if not User.objects.filter(username__iexact=candidate).exists():
            return candidate
        candidate = f"{base}-{secrets.randbelow(10**6):06d}"
    return f"sso-{hashlib.sha256(str(claims.get('sub')).encode()).hexdigest()[:20]}"


def user_for_identity(*, provider: OidcProvider, claims: dict[str, Any]) -> User:
    """The account this identity signs in as. Known identity (``iss`` + ``sub``): its account.
    Otherwise an account with the same email is linked only when the provider says the email is
    verified (an unverified match is refused: ``account_exists``); with no such account a new one
    is made (``auth_provider: "sso"``, no usable password). The provider must share an email."""
    try:
        with transaction.atomic():
            return _user_for_identity(provider, claims)
    except IntegrityError:  # a concurrent first login of the same identity or email won the race
        with transaction.atomic():
            return _user_for_identity(provider, claims)


def _user_for_identity(provider: OidcProvider, claims: dict[str, Any]) -> User:
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    email = str(claims.get("email") or "").strip()[:254]
    now = timezone.now()
    identity = SsoIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if identity is not None:
        user = identity.user
        SsoIdentity.objects.filter(pk=identity.pk).update(last_login_at=now, email=email or identity.email)
    else:
        user = User.objects.filter(email__iexact=email).first() if email else None
        if user is not None and not _email_verified(claims):
            raise IdentityError("account_exists", "An account with this email exists; the identity provider "
                                                  "has not verified the email, so it was not linked. Sign in "
                                                  "with your password.")
        if user is None:
            if not email:
                raise IdentityError("email_required", "The identity provider shared no email address "
                                                      "(the 'email' scope is needed).")
            user = User(username=_free_username(claims, email), email=email,
                        full_name=str(claims.get("name") or "")[:200], auth_provider=AuthProvider.SSO)
            user.set_unusable_password()
            user.save()
        SsoIdentity.objects.create(user=user, provider=provider.name, issuer=issuer, subject=subject,
                                   email=email, last_login_at=now)
    if not user.is_active:
        raise IdentityError("access_denied", "This account is disabled.")
    user.last_login = now
    user.save(update_fields=["last_login"])
    return user
