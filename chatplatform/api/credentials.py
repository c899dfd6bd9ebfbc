"""Presented credentials, read in one place, and the authentication plumbing shared by every app.

A caller presents at most one credential: ``Authorization: Bearer <value>`` or
``Authorization: ApiKey <value>`` (schemes case-insensitive), else ``X-API-Key: <value>``. Any
other ``Authorization`` scheme (``Basic``) counts as no credentials.

The apps' DRF authentication classes (``accounts``: JWTs and user API keys; ``support``: chatbot
keys) each claim the credentials of their own shape and defer the rest. The last class listed in
``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``, :class:`UnclaimedCredentialsAuthentication`,
refuses whatever was presented but claimed by none: a wrong credential is a 401, never a silent
fall-back to anonymous. The kit knows shapes only (a JWT, a ``<prefix>_<public>_<secret>`` key),
never which app owns which prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.settings import api_settings

BEARER = "bearer"
API_KEY = "apikey"
X_API_KEY = "x-api-key"


@dataclass(frozen=True)
class Credential:
    """What the caller presented and how: ``scheme`` is ``bearer``, ``apikey`` (both from
    ``Authorization``) or ``x-api-key``; ``value`` may be empty (a bare ``Authorization: Bearer``)."""

    scheme: str
    value: str

    @property
    def is_jwt(self) -> bool:
        """Shaped like a JWT (three dot-separated parts); says nothing of its validity."""
        return self.value.count(".") == 2

    def has_prefix(self, prefix: str) -> bool:
        """A prefixed key of that kind, e.g. ``has_prefix("cpk")`` for ``cpk_…``."""
        return self.value.startswith(f"{prefix}_")

    @property
    def key_parts(self) -> tuple[str, str] | None:
        """``(prefix, public id)`` of a well-formed ``<prefix>_<public>_<secret>`` key, else None."""
        parts = self.value.split("_")
        if len(parts) == 3 and all(parts):
            return parts[0], parts[1]
        return None


def presented(meta: Mapping[str, Any]) -> Credential | None:
    """The credential in a request's ``META`` (or a WSGI/ASGI-style header mapping), or None."""
    scheme, _, value = str(meta.get("HTTP_AUTHORIZATION", "")).strip().partition(" ")
    scheme = scheme.lower()
    if scheme in (BEARER, API_KEY):
        return Credential(scheme=scheme, value=value.strip())
    header = str(meta.get("HTTP_X_API_KEY", "")).strip()
    return Credential(scheme=X_API_KEY, value=header) if header else None


class UnclaimedCredentialsAuthentication(authentication.BaseAuthentication):
    """Listed last: credentials were presented, and no authentication class before this one
    claimed them (an unknown key, a garbled token, the admin secret off an admin route): 401."""

    def authenticate(self, request):
        if presented(request.META) is not None:
            raise exceptions.AuthenticationFailed("Invalid or unrecognised credentials.")
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class UnclaimedCredentialsScheme(OpenApiAuthenticationExtension):
    """Adds no security scheme: it only refuses what the real schemes did not accept."""

    target_class = "chatplatform.api.credentials.UnclaimedCredentialsAuthentication"
    name: list[str] = []

    def get_security_requirement(self, auto_schema):
        return None

    def get_security_definition(self, auto_schema):
        return []


class _ChatRoute:
    """Stands in for the view when authenticating chat routes outside DRF views: chatbot keys
    are accepted there (see ``support.authentication``)."""

    chatbot_key_allowed = True


def authenticate_request(request: HttpRequest, *, chatbot_keys: bool = False) -> tuple[Any, Any]:
    """``(user, auth)`` for a plain Django request by the project's DRF authentication classes
    (``(AnonymousUser(), None)`` without credentials), for async views and the WebSocket.

    Raises DRF's ``AuthenticationFailed`` for refused credentials (and ``PermissionDenied`` for
    a chatbot key when ``chatbot_keys`` is off), as a DRF view would. Blocking: run it in a thread."""
    from rest_framework.request import Request

    drf_request = Request(request, parser_context={"view": _ChatRoute() if chatbot_keys else None})
    for authenticator_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        result = authenticator_class().authenticate(drf_request)
        if result is not None:
            return result
    return AnonymousUser(), None
