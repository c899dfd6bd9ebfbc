"""WebSocket token middleware and Origin validation, through Channels' WebsocketCommunicator."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from chatplatform.api.websocket import OriginValidator, TokenAuthMiddleware


class WhoAmI(AsyncJsonWebsocketConsumer):
    channel_layer_alias = None  # what is tested here is the middleware, not the layer

    async def connect(self):
        await self.accept()
        user = self.scope["user"]
        await self.send_json({
            "authenticated": user.is_authenticated,
            "user_id": getattr(user, "id", None),
            "auth_error": self.scope.get("auth_error"),
            "auth": type(self.scope.get("auth")).__name__,
        })


app = OriginValidator(TokenAuthMiddleware(URLRouter([path("ws/whoami", WhoAmI.as_asgi())])))


async def _whoami(url: str, headers=None) -> dict | None:
    communicator = WebsocketCommunicator(app, url, headers=headers or [])
    connected, _ = await communicator.connect()
    if not connected:
        return None
    data = await communicator.receive_json_from()
    await communicator.disconnect()
    return data


@pytest.mark.django_db(transaction=True)
async def test_jwt_in_query_string_authenticates(user, tokens_for):
    tokens = await database_sync_to_async(tokens_for)(user)
    data = await _whoami(f"/ws/whoami?token={tokens['access_token']}")
    assert data == {"authenticated": True, "user_id": user.id, "auth_error": None, "auth": "AccessToken"}


@pytest.mark.django_db(transaction=True)
async def test_api_key_in_query_string_and_header(user):
    from accounts.services import api_key_create

    _, raw = await database_sync_to_async(api_key_create)(user=user)
    assert (await _whoami(f"/ws/whoami?token={raw}"))["user_id"] == user.id
    assert (await _whoami("/ws/whoami", [(b"x-api-key", raw.encode())]))["user_id"] == user.id


@pytest.mark.django_db(transaction=True)
async def test_invalid_and_revoked_tokens_are_anonymous(user, tokens_for):
    from accounts.services import user_logout

    data = await _whoami("/ws/whoami?token=not-a-jwt")
    assert data["authenticated"] is False and data["auth_error"] == "invalid_token"
    tokens = await database_sync_to_async(tokens_for)(user)
    from rest_framework_simplejwt.tokens import AccessToken

    sid = AccessToken(tokens["access_token"])["sid"]
    await database_sync_to_async(user_logout)(user=user, session_id=sid)
    data = await _whoami(f"/ws/whoami?token={tokens['access_token']}")
    assert data["authenticated"] is False


@pytest.mark.django_db(transaction=True)
async def test_no_token_is_anonymous_without_error():
    data = await _whoami("/ws/whoami")
    assert data == {"authenticated": False, "user_id": None, "auth_error": None, "auth": "NoneType"}


@pytest.mark.django_db(transaction=True)
async def test_foreign_origin_refused_allowed_origin_accepted(settings):
    settings.ALLOWED_ORIGINS = ["http://localhost:3000"]
    assert await _whoami("/ws/whoami", [(b"origin", b"http://evil.example")]) is None
    assert await _whoami("/ws/whoami", [(b"origin", b"http://localhost:3000")]) is not None


@pytest.mark.django_db(transaction=True)
async def test_every_credential_form_runs_the_same_authentication_classes(user, tokens_for):
    from accounts.services import api_key_create

    _, raw = await database_sync_to_async(api_key_create)(user=user)
    access = (await database_sync_to_async(tokens_for)(user))["access_token"]
    for url, headers in [
        (f"/ws/whoami?api_key={raw}", []),
        ("/ws/whoami", [(b"authorization", f"ApiKey {raw}".encode())]),
        ("/ws/whoami", [(b"authorization", f"Bearer {raw}".encode())]),
        ("/ws/whoami", [(b"authorization", f"Bearer {access}".encode())]),
        # The query string wins over a header.
        (f"/ws/whoami?token={raw}", [(b"authorization", b"Bearer garbage")]),
    ]:
        data = await _whoami(url, headers)
        assert data["user_id"] == user.id and data["auth_error"] is None, (url, headers)
        assert data["auth"] in ("ApiKey", "AccessToken")


@pytest.mark.django_db(transaction=True)
async def test_chatbot_key_is_accepted_on_the_socket_and_unknown_keys_refused(user):
    from support.services import chatbot_api_key_create, chatbot_create

    chatbot = await database_sync_to_async(chatbot_create)(owner=user, name="Socket bot")
    _, raw = await database_sync_to_async(chatbot_api_key_create)(chatbot=chatbot)
    assert await _whoami(f"/ws/whoami?token={raw}") == {
        "authenticated": True, "user_id": user.id, "auth_error": None, "auth": "ChatbotAPIKey"}
    assert (await _whoami("/ws/whoami", [(b"x-api-key", raw.encode())]))["auth"] == "ChatbotAPIKey"
    for bad in ("cbk_nope_nope", "cpk_nope_nope", "xyz_abc_def", ""):
        headers = [(b"x-api-key", bad.encode())] if bad else [(b"authorization", b"Bearer")]
        data = await _whoami("/ws/whoami", headers)
        assert (data["authenticated"], data["auth_error"], data["auth"]) == (False, "invalid_token", "NoneType"), bad


@pytest.mark.django_db(transaction=True)
async def test_an_unknown_scheme_is_anonymous_without_error():
    data = await _whoami("/ws/whoami", [(b"authorization", b"Basic YWxpY2U6cHc=")])
    assert data == {"authenticated": False, "user_id": None, "auth_error": None, "auth": "NoneType"}
