"""Chatbot API keys as credentials: ``Authorization: Bearer cbk_…``, ``Authorization: ApiKey cbk_…``
or ``X-API-Key: cbk_…``.

The request is authenticated as the chatbot's owner with ``request.auth`` the
:class:`~support.models.ChatbotAPIKey` (whose ``turn_profile()`` gives the chat turn the
chatbot's prompt, model and endpoint). A chatbot key is meant to be embedded in a
chatbot's client, so it is *not* a general credential for its owner's account: it is accepted
only by views that opt in with ``chatbot_key_allowed = True`` (chat routes, public FAQ reads);
elsewhere a valid key gets 403. Unknown or revoked keys get 401 everywhere.

Listed in settings after the ``accounts`` classes (which defer ``cbk_`` credentials) and before
the shared kit's catch-all.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from chatplatform.api.credentials import presented
from support import services
from support.models import CHATBOT_KEY_PREFIX

CHATBOT_KEY_ATTRIBUTE = "chatbot_key_allowed"


def chatbot_key_from(request) -> str:
    """The ``cbk_…`` credential a request carries, or ``""``."""
    credential = presented(request.META)
    return credential.value if credential is not None and credential.has_prefix(CHATBOT_KEY_PREFIX) else ""


class ChatbotKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates ``cbk_`` keys as ``(chatbot.owner, chatbot_key)``."""

    def authenticate(self, request):
        raw = chatbot_key_from(request)
        if not raw:
            return None
        key = services.chatbot_api_key_authenticate(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked chatbot API key.")
        view = (getattr(request, "parser_context", None) or {}).get("view")
        if not getattr(view, CHATBOT_KEY_ATTRIBUTE, False):
            raise exceptions.PermissionDenied("Chatbot API keys only authenticate chat requests.")
        return key.chatbot.owner, key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ChatbotKeyAllowed:
    """View mixin: accept chatbot keys on this view."""

    chatbot_key_allowed = True


class ChatbotKeyScheme(OpenApiAuthenticationExtension):
    target_class = "support.authentication.ChatbotKeyAuthentication"
    name = "chatbotKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A chatbot's key `cbk_…` (also as `ApiKey cbk_…` or `X-API-Key`); chat routes only."}
