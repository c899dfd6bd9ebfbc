"""WebSocket plumbing: token auth from the query string and an Origin check.

A client connects with ``?token=<jwt or API key>`` (browsers cannot set headers on a WebSocket).
``Authorization``/``X-API-Key`` headers work too for non-browser clients. The resolved user goes in
``scope["user"]`` (AnonymousUser when absent or invalid; ``scope["auth_error"]`` says which), so
each consumer decides whether anonymous callers may stay.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from accounts.services import API_KEY_PREFIX
from chatplatform.api.authentication import CHATBOT_KEY_PREFIX, user_for_access_token, user_for_api_key

# Close codes sent by consumers (documented in the README).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_RATE_LIMITED = 4429
CLOSE_UNAVAILABLE = 4503


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope.get("headers", [])}


def _credentials(scope) -> str:
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    token = (query.get("token") or query.get("api_key") or [""])[0].strip()
    if token:
        return token
    headers = _headers(scope)
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "apikey") and value.strip():
        return value.strip()
    return headers.get("x-api-key", "").strip()


@database_sync_to_async
def _resolve(raw: str):
    if raw.startswith(CHATBOT_KEY_PREFIX):
        # A chatbot's key chats as that chatbot (its prompt, model and endpoint apply downstream).
        from support.services import chatbot_api_key_authenticate

        key = chatbot_api_key_authenticate(raw)
        return (key.chatbot.owner, key) if key else (None, None)
    if raw.startswith(f"{API_KEY_PREFIX}_"):
        return user_for_api_key(raw)
    return user_for_access_token(raw)


class TokenAuthMiddleware:
    """Puts the user of the ``token`` query parameter (JWT or API key) in the scope."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        raw = _credentials(scope)
        scope["user"], scope["auth"], scope["auth_error"] = AnonymousUser(), None, None
        if raw:
            user, credential = await _resolve(raw)
            if user is None:
                scope["auth_error"] = "invalid_token"
            else:
                scope["user"], scope["auth"] = user, credential
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
