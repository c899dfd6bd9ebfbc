"""Seed 003's WebSocket example on ``/ws/chat``: ``{"type": "message", "content", "conversation_id"}``
in, frames whose ``content`` the seed's client logs. Needs an account (JWT in ``?token=``)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from chats.models import Conversation, Message
from chats.tests.test_websocket_common import access_token, frames_until, open_ws
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def thread_of(conversation_id: str) -> list[tuple[str, str, str]]:
    return list(Message.objects.filter(conversation_id=conversation_id).order_by("created_at")
                .values_list("role", "content", "status"))


async def test_documented_example(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Hi! How can I help you?", prompt_tokens=20, completion_tokens=25))
    comm = await open_ws(f"/ws/chat?token={await access_token(tokens_for, user)}")
    await comm.send_json_to({"type": "message", "content": "Hello AI!", "conversation_id": 123})
    frames = await frames_until(comm)
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()

    # The seed's client logs data.content of every frame it gets: by default one frame, the whole reply.
    assert [f["content"] for f in frames] == ["Hi! How can I help you?"]
    final = frames[0]
    assert final["type"] == "message" and final["conversation_id"] == "123" and final["tokens_used"] == 45
    assert isinstance(final["response_time"], int) and final["response_time"] >= 0
    assert final["event_id"] == f"{final['message_id']}:8"
    conversation = await database_sync_to_async(Conversation.objects.get)(id="123")
    assert conversation.user_id == user.id
    assert await thread_of("123") == [("user", "Hello AI!", "complete"),
                                      ("assistant", "Hi! How can I help you?", "complete")]


async def test_streaming_on_request_sends_deltas_under_delta(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Hi! How can I help you?"))
    comm = await open_ws(f"/ws/chat?token={await access_token(tokens_for, user)}")
    await comm.send_json_to({"type": "message", "content": "Hello AI!", "conversation_id": 5, "stream": True})
    frames = await frames_until(comm)
    await comm.disconnect()
    *streamed, final = frames
    assert [f["delta"] for f in streamed] == ["Hi!", " How", " can", " I", " help", " you?"]
    assert all(f["type"] == "stream" and "content" not in f and f["conversation_id"] == "5" for f in streamed)
    assert final["type"] == "message" and final["content"] == "Hi! How can I help you?"


async def test_without_conversation_id_starts_one_and_can_continue_it(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="First."), Step(text="Second."))
    comm = await open_ws(f"/ws/chat?token={await access_token(tokens_for, user)}")
    await comm.send_json_to({"type": "message", "content": "One"})
    first = (await frames_until(comm))[-1]
    assert first["conversation_id"].startswith("conv_")
    await comm.send_json_to({"type": "message", "content": "Two", "conversation_id": first["conversation_id"]})
    second = (await frames_until(comm))[-1]
    await comm.disconnect()
    assert second["conversation_id"] == first["conversation_id"]
    assert [m["content"] for m in openai_configured.calls[-1].body["messages"]] == ["One", "First.", "Two"]


async def test_anonymous_gets_unauthorized_frame_and_socket_stays_open(openai_configured):
    comm = await open_ws("/ws/chat")
    await comm.send_json_to({"type": "message", "content": "Hello AI!", "conversation_id": 123})
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "UNAUTHORIZED"
    assert error["data"]["code"] == "UNAUTHORIZED"
    # Seed 001 traffic may share the socket: it still works.
    await comm.send_json_to({"type": "ping", "id": "p1"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
    await comm.disconnect()
    assert not openai_configured.calls
    assert not await database_sync_to_async(Conversation.objects.exists)()


async def test_another_users_conversation_is_not_found(openai_configured, make_user, tokens_for):
    owner = await database_sync_to_async(make_user)("owner")
    other = await database_sync_to_async(make_user)("other")
    await database_sync_to_async(Conversation.objects.create)(id="77", user=owner)
    comm = await open_ws(f"/ws/chat?token={await access_token(tokens_for, other)}")
    await comm.send_json_to({"type": "message", "content": "Let me in", "conversation_id": 77})
    error = await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    assert error["type"] == "error" and error["code"] == "NOT_FOUND"
    assert await thread_of("77") == []
    assert not openai_configured.calls


async def test_invalid_message_frames(openai_configured, user, tokens_for):
    comm = await open_ws(f"/ws/chat?token={await access_token(tokens_for, user)}")
    for frame in ({"type": "message"}, {"type": "message", "content": "   "},
                  {"type": "message", "content": "Hi", "conversation_id": "bad id!"},
                  {"type": "message", "content": "Hi", "temperature": -1},
                  # refused by the provider layer's checks, before anything is saved
                  {"type": "message", "content": "Hi", "conversation_id": "c9", "model": "gpt-3.5-turbo",
                   "temperature": 5},
                  {"type": "message", "content": "Hi", "conversation_id": "c9", "model": "no-such-model"}):
        await comm.send_json_to(frame)
        error = await comm.receive_json_from(timeout=5)
        assert error["type"] == "error" and error["code"] == "INVALID_REQUEST", (frame, error)
    await comm.disconnect()
    assert not openai_configured.calls
    assert not await database_sync_to_async(Conversation.objects.exists)()
    assert not await database_sync_to_async(Message.objects.exists)()


async def test_disconnect_mid_stream_then_resume(openai_configured, user, tokens_for):
    text = "one two three four five six seven eight nine ten"
    openai_configured.push(Step(text=text, chunk_delay=0.05))
    token = await access_token(tokens_for, user)
    comm = await open_ws(f"/ws/chat?token={token}")
    await comm.send_json_to({"type": "message", "content": "Count", "conversation_id": "c3", "stream": True})
    first = [await comm.receive_json_from(timeout=5) for _ in range(3)]
    await comm.disconnect()
    stream_id = first[-1]["message_id"]
    snapshot = await database_sync_to_async(Message.objects.get)(id=stream_id)
    assert snapshot.status == "incomplete" and snapshot.content.startswith("one two three")

    comm = await open_ws(f"/ws/chat?token={token}")
    await comm.send_json_to({"type": "resume", "last_event_id": first[-1]["event_id"]})
    rest = await frames_until(comm)
    await comm.disconnect()
    assert "".join(f["delta"] for f in first + rest[:-1]) == text  # nothing lost, nothing twice
    assert rest[-1]["type"] == "message" and rest[-1]["content"] == text and "data" not in rest[-1]
    saved = await database_sync_to_async(Message.objects.get)(id=stream_id)
    assert (saved.status, saved.content) == ("complete", text)
