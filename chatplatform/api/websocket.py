"""WebSocket plumbing: authentication by the project's DRF classes, and an Origin check.

A client connects with ``?token=<jwt or key>`` (or ``?api_key=``; browsers cannot set headers on
a WebSocket), taken as ``Authorization: Bearer <value>``; non-browser clients may send
``Authorization``/``X-API-Key`` headers instead. The same authentication classes as every HTTP
route then run (``chatplatform.api.credentials.authenticate_request``), the socket counting as
a chat route (a chatbot's key is accepted). The scope gets ``scope["user"]`` (AnonymousUser when
absent or refused), ``scope["auth"]`` (the credential object: an access token, an API key, a
chatbot key) and ``scope["auth_error"]`` (``"invalid_token"`` when credentials were presented but
refused), so each consumer decides whether anonymous callers may stay.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework import exceptions

from chatplatform.api.credentials import authenticate_request, presented

# Close codes sent by consumers (documented in the README).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_RATE_LIMITED = 4429
CLOSE_UNAVAILABLE = 4503


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope.get("headers", [])}


def request_from_scope(scope) -> HttpRequest:
    """A Django request carrying the connection's headers (``?token=``/``?api_key=`` becomes
    ``Authorization: Bearer <value>``, ahead of any header sent), for the authentication classes."""
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = scope.get("path", "")
    for name, value in scope.get("headers", []):
        key = "HTTP_" + name.decode("latin1").upper().replace("-", "_")
        value = value.decode("latin1")
        request.META[key] = f"{request.META[key]},{value}" if key in request.META else value
    client = scope.get("client")
    if client:
        request.META["REMOTE_ADDR"] = client[0]
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    token = (query.get("token") or query.get("api_key") or [""])[0].strip()
    if token:
        request.META["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return request


@database_sync_to_async
def _authenticate(request: HttpRequest) -> tuple[Any, Any, str | None]:
    try:
        user, credential = authenticate_request(request, chatbot_keys=True)
    except exceptions.APIException:  # refused credentials (401)
        return AnonymousUser(), None, "invalid_token"
    return user, credential, None


class TokenAuthMiddleware:
    """Puts the caller the project's authentication classes find in the scope (see the module
    docstring)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        scope["user"], scope["auth"], scope["auth_error"] = AnonymousUser(), None, None
        request = request_from_scope(scope)
        if presented(request.META) is not None:  # no credentials: no thread hop, no query
            scope["user"], scope["auth"], scope["auth_error"] = await _authenticate(request)
        return await self.inner(scope, receive, send)


def origin_allowed(origin: str | None) -> bool:
    """No Origin header (a non-browser client) is allowed; a browser's must be configured."""
    if not origin:
        return True
    if "*" in settings.ALLOWED_ORIGINS:
        return True
    allowed = {o.rstrip("/").lower() for o in settings.ALLOWED_ORIGINS}
    parsed = urlparse(origin)
    if f"{parsed.scheme}://{parsed.netloc}".lower() in allowed:
        return True
    # Same-host pages (the server's own docs) are fine.
    host = (parsed.hostname or "").lower()
    return host in {h.strip("[]").lower() for h in settings.ALLOWED_HOSTS if h != "*"}


class OriginValidator:
    """Refuses browser connections from origins that are not in ``ALLOWED_ORIGINS``."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(_headers(scope).get("origin")):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.inner(scope, receive, send)
