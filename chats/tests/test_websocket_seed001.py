"""Seed 001's WebSocket protocol on ``/ws/chat``: chat -> stream... complete | error, ping/pong,
cancel by id, several chats in flight at once; open to anonymous callers (public models only)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from chats.models import Conversation, Message
from chats.tests.test_websocket_common import access_token, frames_until, open_ws, refused
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

DOCUMENTED_CHAT = {
    "type": "chat",
    "id": "msg_123",
    "data": {
        "message": "Hello",
        "model": "gpt-3.5-turbo",
        "stream": True,
        "temperature": 0.7,
        "max_tokens": 1000,
        "system_prompt": "You are helpful",
        "conversation_history": [],
    },
}


def chat(id_: str, message: str, **data) -> dict:
    return {"type": "chat", "id": id_, "data": {"message": message, "model": "gpt-3.5-turbo", **data}}


async def test_documented_example_anonymous(openai_configured):
    openai_configured.push(Step(text="Full response text", prompt_tokens=10, completion_tokens=20))
    comm = await open_ws("/ws/chat")
    await comm.send_json_to(DOCUMENTED_CHAT)
    frames = await frames_until(comm)
    await comm.disconnect()

    *streamed, complete = frames
    assert [f["data"] for f in streamed] == [
        {"chunk": "Full", "index": 0, "finished": False},
        {"chunk": " response", "index": 1, "finished": False},
        {"chunk": " text", "index": 2, "finished": False},
    ]
    assert all(f["type"] == "stream" and f["id"] == "msg_123" for f in streamed)
    assert complete["type"] == "complete" and complete["id"] == "msg_123"
    data = complete["data"]
    assert data["response"] == "Full response text" and data["model"] == "gpt-3.5-turbo"
    assert data["usage"] == {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
    assert data["cached"] is False and data["cancelled"] is False
    stream_id = complete["event_id"].rpartition(":")[0]
    assert [f["event_id"] for f in frames] == [f"{stream_id}:{n}" for n in range(2, 6)]

    body = openai_configured.calls[-1].body
    assert body["model"] == "gpt-3.5-turbo" and body["temperature"] == 0.7
    assert [(m["role"], m["content"]) for m in body["messages"]] == [("system", "You are helpful"), ("user", "Hello")]
    # Stateless: nothing but usage is kept.
    assert not await database_sync_to_async(Message.objects.exists)()


async def test_conversation_history_reaches_the_provider(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Still fine."))
    comm = await open_ws(f"/ws/chat?token={await access_token(tokens_for, user)}")
    await comm.send_json_to(chat("msg_h", "And now?", system_prompt="Be brief.", conversation_history=[
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "Previous message"}, {"role": "assistant", "content": "Previous response"}]))
    complete = (await frames_until(comm))[-1]
    await comm.disconnect()
    assert complete["data"]["response"] == "Still fine."
    assert [(m["role"], m["content"]) for m in openai_configured.calls[-1].body["messages"]] == [
        ("system", "Be brief.\n\nAnswer in English."), ("user", "Previous message"),
        ("assistant", "Previous response"), ("user", "And now?")]
    assert not await database_sync_to_async(Message.objects.exists)()


async def test_stream_false_sends_only_complete(openai_configured):
    openai_configured.push(Step(text="One shot answer"))
    comm = await open_ws("/ws/chat")
    await comm.send_json_to(chat("msg_1", "Hi", stream=False))
    frame = await comm.receive_json_from(timeout=10)
    assert frame["type"] == "complete" and frame["data"]["response"] == "One shot answer"
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_ping_pong(openai_configured):
    comm = await open_ws("/ws/chat")
    await comm.send_json_to({"type": "ping", "id": "ping_123", "timestamp": "2024-01-01T00:00:00Z"})
    pong = await comm.receive_json_from(timeout=5)
    assert pong["type"] == "pong" and pong["id"] == "ping_123"
    assert pong["timestamp"].endswith("Z") and pong["client_timestamp"] == "2024-01-01T00:00:00Z"
    await comm.disconnect()


async def test_cancel_by_id(openai_configured):
    full = " ".join(["word"] * 80)
    openai_configured.push(Step(text=full, chunk_delay=0.03))
    comm = await open_ws("/ws/chat")
    await comm.send_json_to(chat("msg_123", "Talk a lot"))
    first = await comm.receive_json_from(timeout=5)
    assert first["type"] == "stream"
    await comm.send_json_to({"type": "cancel", "id": "msg_123"})
    frames = await frames_until(comm)
    complete = frames[-1]
    assert complete["type"] == "complete" and complete["id"] == "msg_123"
    assert complete["data"]["cancelled"] is True and complete["data"]["finish_reason"] == "cancelled"
    partial = "".join(f["data"]["chunk"] for f in [first, *frames[:-1]])
    assert complete["data"]["response"] == partial and 0 < len(partial) < len(full)
    # Nothing left to cancel under that id now.
    await comm.send_json_to({"type": "cancel", "id": "msg_123"})
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["id"] == "msg_123" and error["data"]["code"] == "NOT_FOUND"
    await comm.disconnect()


async def test_cancel_right_after_sending_stops_before_any_text(openai_configured):
    openai_configured.push(Step(text=" ".join(["word"] * 80), chunk_delay=0.03))
    comm = await open_ws("/ws/chat")
    await comm.send_json_to(chat("msg_quick", "Never mind"))
    await comm.send_json_to({"type": "cancel", "id": "msg_quick"})
    complete = (await frames_until(comm))[-1]
    await comm.disconnect()
    assert complete["type"] == "complete" and complete["id"] == "msg_quick"
    assert complete["data"]["cancelled"] is True and len(complete["data"]["response"]) < 20


async def test_several_chats_in_flight_on_one_socket(openai_configured):
    texts = {"alpha one two three four", "beta five six seven eight"}
    openai_configured.push(*(Step(text=t, chunk_delay=0.02) for t in sorted(texts)))
    comm = await open_ws("/ws/chat")
    await comm.send_json_to(chat("a", "First"))
    await comm.send_json_to(chat("b", "Second"))
    chunks: dict[str, list[str]] = {"a": [], "b": []}
    completes: dict[str, str] = {}
    while len(completes) < 2:
        frame = await comm.receive_json_from(timeout=10)
        if frame["type"] == "stream":
            chunks[frame["id"]].append(frame["data"]["chunk"])
        else:
            assert frame["type"] == "complete", frame
            completes[frame["id"]] = frame["data"]["response"]
    await comm.disconnect()
    assert set(completes.values()) == texts
    assert all("".join(chunks[k]) == completes[k] for k in "ab")
    assert len(openai_configured.calls) == 2


async def test_duplicate_id_in_flight_is_refused(openai_configured):
    openai_configured.push(Step(text="slow " * 20, chunk_delay=0.03))
    comm = await open_ws("/ws/chat")
    await comm.send_json_to(chat("same", "One"))
    assert (await comm.receive_json_from(timeout=5))["type"] == "stream"
    await comm.send_json_to(chat("same", "Two"))
    frames = await frames_until(comm, lambda f: f["type"] == "error")
    assert frames[-1]["id"] == "same" and frames[-1]["data"]["code"] == "INVALID_REQUEST"
    await comm.send_json_to({"type": "cancel", "id": "same"})
    await frames_until(comm)
    await comm.disconnect()
    assert len(openai_configured.calls) == 1


async def test_anonymous_callers_get_public_models_only(openai_configured):
    comm = await open_ws("/ws/chat")
    await comm.send_json_to(chat("msg_4o", "Hi", model="gpt-4o"))
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["id"] == "msg_4o"
    assert error["data"]["code"] == "FORBIDDEN"
    await comm.send_json_to(chat("msg_conv", "Hi", conversation_id="conv_x"))
    assert (await comm.receive_json_from(timeout=5))["data"]["code"] == "UNAUTHORIZED"
    await comm.disconnect()
    assert not openai_configured.calls


async def test_anonymous_default_model_is_a_public_one(openai_configured):
    openai_configured.push(Step(text="Default"))
    comm = await open_ws("/ws/chat")
    await comm.send_json_to({"type": "chat", "id": "d", "data": {"message": "Hi"}})
    complete = (await frames_until(comm))[-1]
    await comm.disconnect()
    assert complete["data"]["model"] == "gpt-4o-mini" and openai_configured.calls[-1].body["model"] == "gpt-4o-mini"


async def test_authenticated_callers_may_use_any_model(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="From GPT-4o"))
    comm = await open_ws(f"/ws/chat?token={await access_token(tokens_for, user)}")
    await comm.send_json_to(chat("msg_4o", "Hi", model="gpt-4o"))  # not public
    complete = (await frames_until(comm))[-1]
    await comm.disconnect()
    assert complete["type"] == "complete" and complete["data"]["model"] == "gpt-4o"


async def test_anonymous_closed_when_anonymous_chat_is_off(settings, openai_configured):
    settings.ANONYMOUS_CHAT = False
    frame, code = await refused("/ws/chat")
    assert code == 4401 and frame["data"]["code"] == "UNAUTHORIZED"


async def test_invalid_requests(openai_configured):
    comm = await open_ws("/ws/chat")
    cases = [
        {"type": "chat", "id": "m1"},
        {"type": "chat", "id": "m2", "data": {"message": ""}},
        {"type": "chat", "id": "m3", "data": {"message": "Hi", "temperature": "hot"}},
        {"type": "chat", "id": "m4", "data": {"message": "Hi", "conversation_history": [{"role": "robot"}]}},
        {"type": "chat", "id": "m5", "data": {"message": "Hi", "model": "no-such-model"}},
        {"type": "chat", "id": "m6", "data": {"message": "Hi", "model": "gpt-3.5-turbo", "temperature": 9}},
    ]
    for case in cases:
        await comm.send_json_to(case)
        frame = await comm.receive_json_from(timeout=5)
        assert frame["type"] == "error" and frame["id"] == case["id"], frame
        assert frame["data"]["code"] == "INVALID_REQUEST", frame
    await comm.disconnect()
    assert not openai_configured.calls


async def test_provider_error_is_an_error_frame(openai_configured):
    openai_configured.push(Step("disconnect", text="partial words then nothing", after=2))
    comm = await open_ws("/ws/chat")
    await comm.send_json_to(chat("msg_e", "Hi"))
    frames = await frames_until(comm)
    await comm.disconnect()
    error = frames[-1]
    assert error["type"] == "error" and error["id"] == "msg_e"
    assert error["data"]["code"] == "PROVIDER_ERROR" and error["data"]["details"]["partial_response"] == "partial words"


async def test_provider_timeout_and_rate_limit_codes(openai_configured, settings):
    settings.PROVIDER_MAX_RETRIES = 0
    openai_configured.push(Step("status", status=429, headers={"retry-after": "1"}))
    comm = await open_ws("/ws/chat")
    await comm.send_json_to(chat("msg_r", "Hi"))
    frames = await frames_until(comm)
    await comm.disconnect()
    assert frames[-1]["type"] == "error" and frames[-1]["data"]["code"] == "RATE_LIMITED"
    assert frames[-1]["data"]["details"]["retry_after"] == 1  # the provider's Retry-After


async def test_resume_stateless_chat_after_disconnect(openai_configured):
    text = "one two three four five six seven eight nine ten"
    openai_configured.push(Step(text=text, chunk_delay=0.05))
    comm = await open_ws("/ws/chat")
    await comm.send_json_to(chat("msg_r", "Count"))
    first = [await comm.receive_json_from(timeout=5) for _ in range(2)]
    await comm.disconnect()
    comm = await open_ws("/ws/chat")
    await comm.send_json_to({"type": "resume", "last_event_id": first[-1]["event_id"]})
    rest = await frames_until(comm)
    await comm.disconnect()
    assert all(f["id"] == "msg_r" for f in rest)  # same protocol, same id as the original request
    assert [f["data"]["index"] for f in first + rest[:-1]] == list(range(10))
    assert rest[-1]["type"] == "complete" and rest[-1]["data"]["response"] == text
    # An anonymous stream belongs to its caller's address.
    elsewhere = await open_ws("/ws/chat", client=("192.0.2.50", 1000))
    await elsewhere.send_json_to({"type": "resume", "id": "msg_r", "last_event_id": first[-1]["event_id"]})
    frame = await elsewhere.receive_json_from(timeout=5)
    assert frame["type"] == "error" and frame["data"]["code"] == "NOT_FOUND"
    await elsewhere.disconnect()


async def test_chat_in_a_conversation_when_asked(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Saved answer"))
    comm = await open_ws(f"/ws/chat?token={await access_token(tokens_for, user)}")
    await comm.send_json_to(chat("msg_c", "Keep this", conversation_id="conv_kept"))
    complete = (await frames_until(comm))[-1]
    await comm.disconnect()
    assert complete["data"]["conversation_id"] == "conv_kept"
    conversation = await database_sync_to_async(Conversation.objects.get)(id="conv_kept")
    assert conversation.user_id == user.id
    saved = await database_sync_to_async(Message.objects.get)(id=complete["data"]["message_id"])
    assert (saved.content, saved.status) == ("Saved answer", "complete")

