"""Seed 000's WebSocket: ``/ws/chat/{conversation_id}?token=…``, ``{"type": "message", "content"}``
in, frames whose ``response`` the seed's client logs. Through the real ASGI stack, real OpenAI SDK
against the fake upstream."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from chats.models import Conversation, Message
from chats.tests.test_websocket_common import access_token, frames_until, open_ws, refused
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def messages_of(conversation_id: str) -> list[Message]:
    return list(Message.objects.filter(conversation_id=conversation_id).order_by("created_at"))


@database_sync_to_async
def get_message(message_id: str) -> Message:
    return Message.objects.get(id=message_id)


async def test_documented_example(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Hello! How can I help?", prompt_tokens=9, completion_tokens=6))
    token = await access_token(tokens_for, user)
    comm = await open_ws(f"/ws/chat/conv_123?token={token}")
    await comm.send_json_to({"type": "message", "content": "Hello!"})
    frames = await frames_until(comm)
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()

    # The seed's client logs data.response of every frame it gets: by default one frame, the whole reply.
    assert [f["response"] for f in frames] == ["Hello! How can I help?"]
    final = frames[0]
    stream_id = final["message_id"]
    assert final["type"] == "message" and final["message"] == final["response"]
    assert final["conversation_id"] == "conv_123"
    assert (final["model_used"], final["provider_used"], final["tokens_used"]) == ("gpt-4o-mini", "openai", 15)
    assert (final["status"], final["finish_reason"]) == ("complete", "stop")
    assert final["event_id"] == f"{stream_id}:7" and final["processing_time"] >= 0

    conversation = await database_sync_to_async(Conversation.objects.get)(id="conv_123")
    assert conversation.user_id == user.id and conversation.title == "Hello!"
    saved = await messages_of("conv_123")
    assert [(m.role, m.content, m.status) for m in saved] == [
        ("user", "Hello!", "complete"), ("assistant", "Hello! How can I help?", "complete")]
    assert saved[1].id == stream_id and saved[1].parent_id == saved[0].id


@pytest.mark.parametrize("how", ["frame", "query"])
async def test_streaming_on_request_sends_deltas_under_delta(how, openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Hello! How can I help?"))
    token = await access_token(tokens_for, user)
    comm = await open_ws(f"/ws/chat/conv_s?token={token}" + ("&stream=true" if how == "query" else ""))
    await comm.send_json_to({"type": "message", "content": "Hello!", **({"stream": True} if how == "frame" else {})})
    frames = await frames_until(comm)
    await comm.disconnect()
    *streamed, final = frames
    assert {f["type"] for f in streamed} == {"stream"}
    # A seed 000 client prints data.response of every frame: stream frames have none to print.
    assert all("response" not in f and "content" not in f for f in streamed)
    assert "".join(f["delta"] for f in streamed) == final["response"] == "Hello! How can I help?"
    stream_id = final["message_id"]
    assert [f["event_id"] for f in streamed] == [f"{stream_id}:{n}" for n in range(2, 7)]
    assert final["type"] == "message" and final["event_id"] == f"{stream_id}:7"


async def test_stream_false_in_the_frame_wins_over_the_query(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="One frame only"))
    comm = await open_ws(f"/ws/chat/conv_q?token={await access_token(tokens_for, user)}&stream=true")
    await comm.send_json_to({"type": "message", "content": "Hi", "stream": False})
    frames = await frames_until(comm)
    await comm.disconnect()
    assert [(f["type"], f["response"]) for f in frames] == [("message", "One frame only")]


async def test_conversation_continues_with_its_history(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Paris."), Step(text="About two million."))
    comm = await open_ws(f"/ws/chat/conv_geo?token={await access_token(tokens_for, user)}")
    await comm.send_json_to({"type": "message", "content": "Capital of France?"})
    await frames_until(comm)
    await comm.send_json_to({"type": "message", "content": "Population?", "model": "gpt-4o",
                             "model_parameters": {"temperature": 0.2, "max_tokens": 50}})
    final = (await frames_until(comm))[-1]
    await comm.disconnect()
    assert final["response"] == "About two million." and final["model_used"] == "gpt-4o"
    body = openai_configured.calls[-1].body
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "Capital of France?"), ("assistant", "Paris."), ("user", "Population?")]
    assert body["temperature"] == 0.2 and body["max_completion_tokens" if "max_completion_tokens" in body
                                               else "max_tokens"] == 50


async def test_unauthenticated_is_closed_4401(openai_configured):
    frame, code = await refused("/ws/chat/conv_123")
    assert code == 4401 and frame["code"] == "UNAUTHORIZED"
    assert not await database_sync_to_async(Conversation.objects.exists)()


async def test_another_users_conversation_is_closed_4404(openai_configured, make_user, tokens_for):
    owner = await database_sync_to_async(make_user)("owner")
    other = await database_sync_to_async(make_user)("other")
    await database_sync_to_async(Conversation.objects.create)(id="conv_private", user=owner, title="Mine")
    frame, code = await refused(f"/ws/chat/conv_private?token={await access_token(tokens_for, other)}")
    assert code == 4404 and frame["code"] == "NOT_FOUND"
    frame, code = await refused(f"/ws/chat/bad%20id!?token={await access_token(tokens_for, other)}")
    assert code == 4404
    assert await messages_of("conv_private") == []
    assert not openai_configured.calls


async def test_provider_error_mid_stream_sends_error_and_keeps_partial(openai_configured, user, tokens_for):
    openai_configured.push(Step("disconnect", text="one two three four", after=2))
    comm = await open_ws(f"/ws/chat/conv_err?token={await access_token(tokens_for, user)}")
    await comm.send_json_to({"type": "message", "content": "Count", "stream": True})
    frames = await frames_until(comm)
    await comm.disconnect()
    assert [f["delta"] for f in frames[:-1]] == ["one", " two"]
    error = frames[-1]
    assert error["type"] == "error" and error["code"] == "PROVIDER_ERROR"
    assert error["data"]["details"]["partial_response"] == "one two" and error["conversation_id"] == "conv_err"
    saved = await messages_of("conv_err")
    assert [(m.role, m.content, m.status) for m in saved] == [
        ("user", "Count", "complete"), ("assistant", "one two", "error")]


async def test_disconnect_mid_stream_then_resume(openai_configured, user, tokens_for):
    text = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    openai_configured.push(Step(text=text, chunk_delay=0.05))
    token = await access_token(tokens_for, user)
    comm = await open_ws(f"/ws/chat/conv_drop?token={token}")
    await comm.send_json_to({"type": "message", "content": "Greek letters", "stream": True})
    first = [await comm.receive_json_from(timeout=5) for _ in range(2)]
    await comm.disconnect()  # the client drops mid-stream

    stream_id = first[-1]["message_id"]
    snapshot = await get_message(stream_id)
    assert snapshot.status == "incomplete" and snapshot.content.startswith("alpha beta")

    # Reconnect and resume from the last event seen: the missed frames, then the rest live.
    comm = await open_ws(f"/ws/chat/conv_drop?token={token}")
    await comm.send_json_to({"type": "resume", "last_event_id": first[-1]["event_id"]})
    rest = await frames_until(comm)
    await comm.disconnect()
    streamed = first + rest[:-1]
    assert [f["event_id"] for f in streamed] == [f"{stream_id}:{n}" for n in range(2, 2 + len(streamed))]
    assert "".join(f["delta"] for f in streamed) == text  # nothing lost, nothing twice
    assert rest[-1]["type"] == "message" and rest[-1]["response"] == text and rest[-1]["status"] == "complete"
    final = await get_message(stream_id)
    assert (final.status, final.content) == ("complete", text)


async def test_cancel_ends_with_final_message_saying_cancelled(openai_configured, user, tokens_for):
    openai_configured.push(Step(text=" ".join(["word"] * 80), chunk_delay=0.03))
    comm = await open_ws(f"/ws/chat/conv_stop?token={await access_token(tokens_for, user)}")
    await comm.send_json_to({"type": "message", "content": "Talk", "stream": True})
    await comm.receive_json_from(timeout=5)
    await comm.send_json_to({"type": "cancel"})
    frames = await frames_until(comm)
    await comm.disconnect()
    final = frames[-1]
    assert final["type"] == "message" and final["status"] == "incomplete" and final["finish_reason"] == "cancelled"
    assert 0 < len(final["response"]) < len(" ".join(["word"] * 80))
    saved = await get_message(final["message_id"])
    assert saved.status == "incomplete" and saved.content == final["response"]
