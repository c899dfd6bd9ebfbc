"""DRF authentication classes shared by every app.

* ``Authorization: Bearer <jwt>``: simplejwt access token whose session is still live.
* ``Authorization: Bearer cpk_…``, ``Authorization: ApiKey <key>`` or ``X-API-Key: <key>``: a user API key.
* ``Authorization: Bearer <ADMIN_SECRET_KEY>``: only on admin views (``AdminSecretAuthentication``).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions
from rest_framework_simplejwt import authentication as jwt_auth
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts import selectors as account_selectors
from accounts import services as account_services

# Chatbot keys (seed 002) are authenticated by support.authentication.ChatbotKeyAuthentication,
# listed after these classes: here they are deferred, neither accepted nor refused.
CHATBOT_KEY_PREFIX = "cbk_"


def _authorization(request) -> tuple[str, str]:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = header.partition(" ")
    return scheme.lower(), credentials.strip()


def user_for_access_token(raw: str):
    """The user of a valid access token whose session is live, else None."""
    try:
        token = AccessToken(raw)
    except TokenError:
        return None, None
    user = account_selectors.session_user(session_id=token.get("sid"), user_id=token.get("user_id"))
    return user, token


def user_for_api_key(raw: str):
    key = account_services.api_key_authenticate(raw)
    return (key.user, key) if key else (None, None)


class JWTAuthentication(jwt_auth.JWTAuthentication):
    """Bearer JWTs (with live-session check) and bearer API keys (for OpenAI-style clients)."""

    www_authenticate_realm = "api"

    def authenticate(self, request):
        scheme, credentials = _authorization(request)
        if scheme != "bearer":
            return None
        if not credentials:
            raise exceptions.AuthenticationFailed("Invalid authorization header.")
        if credentials.startswith(CHATBOT_KEY_PREFIX):
            return None
        if credentials.startswith(f"{account_services.API_KEY_PREFIX}_"):
            user, key = user_for_api_key(credentials)
            if user is None:
                raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
            return user, key
        user, token = user_for_access_token(credentials)
        if user is None:
            raise InvalidToken("Invalid or expired token.")
        return user, token


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: ApiKey <key>`` and ``X-API-Key: <key>``."""

    def authenticate(self, request):
        scheme, credentials = _authorization(request)
        raw = credentials if scheme == "apikey" else request.META.get("HTTP_X_API_KEY", "").strip()
        if not raw or raw.startswith(CHATBOT_KEY_PREFIX):
            return None
        user, key = user_for_api_key(raw)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
        return user, key

    def authenticate_header(self, request) -> str:
        return "ApiKey"


class AdminPrincipal(AnonymousUser):
    """The caller who presented the admin secret: staff rights, no user row."""

    id = None
    pk = None
    username = "admin-secret"

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    @property
    def is_staff(self) -> bool:  # type: ignore[override]
        return True

    is_superuser = False


class AdminSecretAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <ADMIN_SECRET_KEY>`` (constant-time compare). Only admin views
    list this class, so the secret is worthless anywhere else."""

    def authenticate(self, request):
        secret = settings.ADMIN_SECRET_KEY
        scheme, credentials = _authorization(request)
        if not secret or scheme != "bearer" or not credentials:
            return None
        if hmac.compare_digest(credentials.encode(), secret.encode()):
            return AdminPrincipal(), "admin-secret"
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
