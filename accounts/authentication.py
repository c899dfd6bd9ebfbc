"""DRF authentication classes for user credentials, and their OpenAPI declarations.

* ``Authorization: Bearer <jwt>``: simplejwt access token whose session is still live.
* ``Authorization: Bearer cpk_…``, ``Authorization: ApiKey cpk_…`` or ``X-API-Key: cpk_…``: a user API key.
* ``Authorization: Bearer <ADMIN_SECRET_KEY>``: only on admin views (``AdminSecretAuthentication``,
  see ``accounts.permissions``).

Credentials are read by ``chatplatform.api.credentials.presented``. These classes claim JWTs and
``cpk_`` keys only and defer anything else (other apps' keys are theirs to claim); what nobody
claims is refused by the catch-all listed last in settings.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework_simplejwt import authentication as jwt_auth
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts import selectors as account_selectors
from accounts import services as account_services
from chatplatform.api.credentials import BEARER, presented


def user_for_access_token(raw: str):
    """``(user, token)`` of a valid access token whose session is live, else ``(None, None)``."""
    try:
        token = AccessToken(raw)
    except TokenError:
        return None, None
    user = account_selectors.session_user(session_id=token.get("sid"), user_id=token.get("user_id"))
    return user, token


def user_for_api_key(raw: str):
    """``(user, api_key)`` of an active key, else ``(None, None)``."""
    key = account_services.api_key_authenticate(raw)
    return (key.user, key) if key else (None, None)


def _api_key_or_401(raw: str):
    user, key = user_for_api_key(raw)
    if user is None:
        raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
    return user, key


class JWTAuthentication(jwt_auth.JWTAuthentication):
    """Bearer JWTs (with live-session check) and bearer API keys (for OpenAI-style clients)."""

    www_authenticate_realm = "api"

    def authenticate(self, request):
        credential = presented(request.META)
        if credential is None or credential.scheme != BEARER:
            return None
        if credential.has_prefix(account_services.API_KEY_PREFIX):
            return _api_key_or_401(credential.value)
        if not credential.is_jwt:
            return None  # not ours: another class claims it, or the catch-all refuses it
        user, token = user_for_access_token(credential.value)
        if user is None:
            raise InvalidToken("Invalid or expired token.")
        return user, token


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: ApiKey cpk_…`` and ``X-API-Key: cpk_…``."""

    def authenticate(self, request):
        credential = presented(request.META)
        if credential is None or credential.scheme == BEARER:
            return None
        if not credential.has_prefix(account_services.API_KEY_PREFIX):
            return None
        return _api_key_or_401(credential.value)

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
        credential = presented(request.META)
        if not secret or credential is None or credential.scheme != BEARER or not credential.value:
            return None
        if hmac.compare_digest(credential.value.encode(), secret.encode()):
            return AdminPrincipal(), "admin-secret"
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


# --- OpenAPI -------------------------------------------------------------------------------------


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Access token from /api/v1/auth/login (an API key `cpk_…` is accepted too).",
        }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = ["apiKeyHeader", "apiKeyAuthorization"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            {"type": "apiKey", "in": "header", "name": "Authorization",
             "description": "`ApiKey <key>`"},
        ]


class AdminSecretScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.AdminSecretAuthentication"
    name = "adminSecret"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "`Bearer <ADMIN_SECRET_KEY>` (admin routes only)."}
