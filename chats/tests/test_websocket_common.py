"""WebSocket chat: what both routes share (through the real ASGI stack: Origin check, token auth,
URL router): refusals and close codes, limits, malformed frames, ping. Also the helpers the
seed-specific WebSocket tests use."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from chatplatform.asgi import application
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

FINAL = {"message", "complete", "error"}


def communicator(path: str, *, client: tuple[str, int] = ("127.0.0.1", 50000),
                 headers: list | None = None) -> WebsocketCommunicator:
    """A communicator against the project's ASGI application (the whole middleware stack)."""
    comm = WebsocketCommunicator(application, path, headers=headers or [])
    comm.scope["client"] = client  # what the ASGI server puts there: the peer address
    return comm


async def open_ws(path: str, **kwargs) -> WebsocketCommunicator:
    comm = communicator(path, **kwargs)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def refused(path: str, **kwargs) -> tuple[dict, int]:
    """Connect to a socket that is accepted then closed: (the error frame, the close code)."""
    comm = communicator(path, **kwargs)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    frame = await comm.receive_json_from(timeout=5)
    close = await comm.receive_output(timeout=5)
    assert close["type"] == "websocket.close"
    await comm.disconnect()
    return frame, close["code"]


async def frames_until(comm: WebsocketCommunicator, done: Callable[[dict], bool] = lambda f: f["type"] in FINAL,
                       *, timeout: float = 10) -> list[dict]:
    frames = []
    while True:
        frame = await comm.receive_json_from(timeout=timeout)
        frames.append(frame)
        if done(frame):
            return frames


async def access_token(tokens_for, user) -> str:
    return (await database_sync_to_async(tokens_for)(user))["access_token"]


async def expired_token(tokens_for, user) -> str:
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken(await access_token(tokens_for, user))
    token.set_exp(from_time=timezone.now() - timedelta(hours=2), lifetime=timedelta(minutes=5))
    return str(token)


# --- refusals ----------------------------------------------------------------------------------


async def test_foreign_origin_refused_at_handshake(settings, user, tokens_for):
    settings.ALLOWED_ORIGINS = ["http://localhost:3000"]
    token = await access_token(tokens_for, user)
    for path in ("/ws/chat", f"/ws/chat/conv_1?token={token}"):
        comm = communicator(path, headers=[(b"origin", b"http://evil.example")])
        connected, _ = await comm.connect(timeout=5)
        assert connected is False
    ok = await open_ws("/ws/chat", headers=[(b"origin", b"http://localhost:3000")])
    await ok.send_json_to({"type": "ping", "id": "p"})
    assert (await ok.receive_json_from(timeout=5))["type"] == "pong"
    await ok.disconnect()


@pytest.mark.parametrize("path", ["/ws/chat", "/ws/chat/conv_abc"])
async def test_expired_and_invalid_tokens_close_4401(path, user, tokens_for):
    expired = await expired_token(tokens_for, user)
    for token in (expired, "not-a-token", "cpk_unknownkey"):
        frame, code = await refused(f"{path}?token={token}")
        assert code == 4401
        assert frame["type"] == "error" and frame["code"] == "UNAUTHORIZED"
        assert frame["data"]["code"] == "UNAUTHORIZED"


async def test_api_key_in_query_string_is_accepted(openai_configured, user):
    from accounts.services import api_key_create

    _, raw = await database_sync_to_async(api_key_create)(user=user)
    openai_configured.push(Step(text="Keyed reply"))
    comm = await open_ws(f"/ws/chat/conv_keyed?token={raw}")
    await comm.send_json_to({"type": "message", "content": "Hi"})
    frames = await frames_until(comm)
    assert frames[-1]["type"] == "message" and frames[-1]["response"] == "Keyed reply"
    await comm.disconnect()


# --- limits ------------------------------------------------------------------------------------


async def test_anonymous_connects_limited_per_ip(settings):
    settings.WS_CONNECTS_PER_MINUTE_ANONYMOUS = 5
    for _ in range(5):
        comm = await open_ws("/ws/chat", client=("198.51.100.7", 1000))
        await comm.disconnect()
    frame, code = await refused("/ws/chat", client=("198.51.100.7", 1000))
    assert code == 4429 and frame["code"] == "RATE_LIMITED"
    assert 1 <= frame["data"]["details"]["retry_after"] <= 61
    # A spoofed X-Forwarded-For from an untrusted peer changes nothing...
    _, code = await refused("/ws/chat", client=("198.51.100.7", 1000),
                            headers=[(b"x-forwarded-for", b"203.0.113.99")])
    assert code == 4429
    # ...while another address has its own budget.
    comm = await open_ws("/ws/chat", client=("198.51.100.8", 1000))
    await comm.disconnect()


async def test_connect_limit_uses_forwarded_for_behind_trusted_proxy(settings):
    settings.WS_CONNECTS_PER_MINUTE_ANONYMOUS = 2
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = ("10.0.0.2", 443)
    for client in ("203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.2"):
        comm = await open_ws("/ws/chat", client=proxy, headers=[(b"x-forwarded-for", client.encode())])
        await comm.disconnect()
    _, code = await refused("/ws/chat", client=proxy, headers=[(b"x-forwarded-for", b"203.0.113.1")])
    assert code == 4429


async def test_authenticated_connects_have_their_own_higher_limit(settings, user, tokens_for):
    settings.WS_CONNECTS_PER_MINUTE_ANONYMOUS = 1
    settings.WS_CONNECTS_PER_MINUTE = 3
    token = await access_token(tokens_for, user)
    anonymous = await open_ws("/ws/chat")
    await anonymous.disconnect()
    for _ in range(3):  # same address, but counted per user
        comm = await open_ws(f"/ws/chat?token={token}")
        await comm.disconnect()
    frame, code = await refused(f"/ws/chat?token={token}")
    assert code == 4429 and frame["code"] == "RATE_LIMITED"


async def test_messages_per_connection_limited(settings):
    settings.WS_MESSAGES_PER_MINUTE = 3
    comm = await open_ws("/ws/chat")
    for n in range(3):
        await comm.send_json_to({"type": "ping", "id": f"p{n}"})
        assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
    await comm.send_json_to({"type": "ping", "id": "p3"})
    frame = await comm.receive_json_from(timeout=5)
    assert frame["type"] == "error" and frame["id"] == "p3"
    assert frame["data"]["code"] == "RATE_LIMITED" and frame["data"]["details"]["retry_after"] >= 1
    await comm.send_to(text_data="{malformed")  # malformed frames count (and are refused) too
    assert (await comm.receive_json_from(timeout=5))["data"]["code"] == "RATE_LIMITED"
    await comm.disconnect()


async def test_oversized_and_malformed_frames_are_errors_not_crashes(settings):
    settings.WS_MAX_FRAME_BYTES = 1024
    comm = await open_ws("/ws/chat")
    await comm.send_to(text_data=json.dumps({"type": "chat", "id": "big", "data": {"message": "x" * 2000}}))
    frame = await comm.receive_json_from(timeout=5)
    assert frame["type"] == "error" and frame["data"]["code"] == "INVALID_REQUEST"
    assert "too large" in frame["data"]["error"]
    for bad in ("{not json", "[1, 2]", '"text"', json.dumps({"type": "teleport", "id": "t1"}),
                json.dumps({"id": "no-type"})):
        await comm.send_to(text_data=bad)
        frame = await comm.receive_json_from(timeout=5)
        assert frame["type"] == "error" and frame["data"]["code"] == "INVALID_REQUEST", bad
    await comm.send_to(bytes_data=b"\xff\xfe")
    assert (await comm.receive_json_from(timeout=5))["data"]["code"] == "INVALID_REQUEST"
    # The socket still works.
    await comm.send_json_to({"type": "ping", "id": "after"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
    await comm.disconnect()


async def test_resume_of_unknown_or_foreign_stream_is_not_found(openai_configured, make_user, tokens_for):
    alice = await database_sync_to_async(make_user)("alice")
    mallory = await database_sync_to_async(make_user)("mallory")
    openai_configured.push(Step(text="Private words here"))
    owner = await open_ws(f"/ws/chat?token={await access_token(tokens_for, alice)}")
    await owner.send_json_to({"type": "message", "content": "Secret"})
    final = (await frames_until(owner))[-1]
    await owner.disconnect()
    stream_id = final["message_id"]
    intruder = await open_ws(f"/ws/chat?token={await access_token(tokens_for, mallory)}")
    for last_event_id in (f"{stream_id}:0", "msg_doesnotexist:0"):
        await intruder.send_json_to({"type": "resume", "last_event_id": last_event_id})
        frame = await intruder.receive_json_from(timeout=5)
        assert frame["type"] == "error" and frame["data"]["code"] == "NOT_FOUND"
    await intruder.send_json_to({"type": "resume", "last_event_id": "msg_x:abc"})
    assert (await intruder.receive_json_from(timeout=5))["data"]["code"] == "INVALID_REQUEST"
    await intruder.disconnect()
    anonymous = await open_ws("/ws/chat")
    await anonymous.send_json_to({"type": "resume", "last_event_id": f"{stream_id}:0"})
    assert (await anonymous.receive_json_from(timeout=5))["data"]["code"] == "NOT_FOUND"
    await anonymous.disconnect()


def test_chat_sockets_hold_no_channel_layer_subscription():
    # Each subscription is a blocking read on Redis per idle socket; the stream hub carries
    # generations between workers instead.
    from chats.transports.websocket import ChatConsumer, ConversationChatConsumer

    assert ChatConsumer.channel_layer_alias is None and ConversationChatConsumer.channel_layer_alias is None
