"""The streaming pipeline every transport uses, started by the turn service: saving, events, errors,
disconnects, cancel, resume."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser

from chats import services, streaming
from chats.models import Conversation, Message
from chats.turns import Caller, Turn, turn_begin
from providers.models import UsageRecord
from providers.params import GenerationParams
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)


async def begin(user, text="Hello?", *, conversation=None, **options) -> streaming.Reply:
    """A turn in ``conversation`` (a new one when None) through the turn service."""
    conversation = conversation or await sync_to_async(services.conversation_create)(user=user)
    params = GenerationParams(**{k: options.pop(k) for k in ("temperature", "max_tokens") if k in options})
    return await turn_begin(Caller(user=user), Turn(text=text, conversation=conversation, params=params, **options))


async def run(user, text="Hello?", **options) -> list[dict]:
    return [e async for e in streaming.stream_reply(await begin(user, text, **options))]


async def get_message(message_id):
    return await sync_to_async(Message.objects.get)(id=message_id)


async def test_events_and_saved_reply(openai_configured, user):
    openai_configured.push(Step(text="Hi there friend", prompt_tokens=12, completion_tokens=3))
    events = await run(user)
    conversation_id, message_id = events[0]["conversation_id"], events[0]["user_message_id"]
    assert [e["type"] for e in events] == ["start", "delta", "delta", "delta", "done"]
    assert [e["id"] for e in events] == [1, 2, 3, 4, 5]
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Hi there friend"
    done = events[-1]
    assert done["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert done["status"] == "complete" and done["finish_reason"] == "stop"
    saved = await get_message(done["message_id"])
    assert saved.content == "Hi there friend" and saved.parent_id == message_id
    assert (saved.model, saved.provider, saved.total_tokens) == ("gpt-4o-mini", "openai", 15)
    assert saved.cost > 0 and saved.status == "complete"
    conversation = await sync_to_async(Conversation.objects.get)(id=conversation_id)
    assert conversation.active_leaf_id == saved.id and conversation.title == "Hello?"


async def test_history_of_the_thread_reaches_the_provider(openai_configured, user):
    openai_configured.push(Step(text="First answer"), Step(text="Second answer"))
    conversation = await sync_to_async(services.conversation_create)(user=user)
    await run(user, "First question", conversation=conversation, system="Be terse.")
    await run(user, "Second question", conversation=conversation, system="Be terse.")
    sent = openai_configured.calls[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("system", "Be terse."), ("user", "First question"), ("assistant", "First answer"),
        ("user", "Second question")]


async def test_provider_error_mid_stream_keeps_partial_and_user_message(openai_configured, user):
    openai_configured.push(Step("disconnect", text="one two three four", after=2))
    events = await run(user)
    assert events[-1]["type"] == "error"
    assert events[-1]["content"] == "one two" and events[-1]["status_code"] == 502
    saved = await get_message(events[-1]["message_id"])
    assert (saved.status, saved.content, saved.error_code) == ("error", "one two", "PROVIDER_ERROR")
    assert (await get_message(events[0]["user_message_id"])).content == "Hello?"


async def test_client_disconnect_saves_incomplete_then_generation_completes(openai_configured, user):
    openai_configured.push(Step(text="a b c d e f g h i j", chunk_delay=0.05))
    events = streaming.stream_reply(await begin(user))
    stream_id = None
    async for event in events:
        stream_id = event["stream_id"]
        if event["type"] == "delta":
            break
    await events.aclose()  # the client went away
    snapshot = await get_message(stream_id)
    assert snapshot.status == "incomplete" and snapshot.content.startswith("a")
    # Generation went on server-side; a client resuming from event 2 gets the rest.
    resumed = [e async for e in streaming.reply_events(stream_id, after=2)]
    assert resumed[0]["id"] == 3 and resumed[-1]["type"] == "done"
    assert resumed[-1]["content"] == "a b c d e f g h i j"
    final = await get_message(stream_id)
    assert (final.status, final.content) == ("complete", "a b c d e f g h i j")


async def test_cancel_stops_generation_and_saves_incomplete(openai_configured, user):
    openai_configured.push(Step(text=" ".join(["word"] * 60), chunk_delay=0.05))
    reply = await begin(user)
    async for event in reply.events():
        if event["type"] == "delta":
            break
    assert await streaming.cancel_reply(reply.stream_id) is True
    final = await reply.wait()
    assert final["type"] == "done" and final["status"] == "incomplete" and final["finish_reason"] == "cancelled"
    saved = await get_message(reply.stream_id)
    assert saved.status == "incomplete" and 0 < len(saved.content) < len(" ".join(["word"] * 60))
    await asyncio.sleep(0.05)
    rows = await sync_to_async(lambda: list(UsageRecord.objects.values_list("status", flat=True)))()
    assert rows == ["cancelled"]


async def test_invalid_parameters_fail_before_anything_runs(openai_configured, user):
    from chatplatform.api.exceptions import AppError

    with pytest.raises(AppError):
        await begin(user, model="gpt-4", temperature=5.0)
    assert not openai_configured.calls
    assert not await sync_to_async(Message.objects.exists)()  # nothing saved either


async def test_stateless_call_without_conversation(openai_configured):
    openai_configured.push(Step(text="Stateless reply"))
    reply = await turn_begin(Caller(user=AnonymousUser()), Turn(text="Hi", history=[]))
    events = [e async for e in streaming.stream_reply(reply)]
    assert events[-1]["type"] == "done" and events[-1]["content"] == "Stateless reply"
    assert events[-1]["conversation_id"] is None


async def test_message_too_long_for_the_context_is_refused_before_starting(openai_configured, user):
    from chatplatform.api.exceptions import AppError
    from providers.models import Model

    await sync_to_async(Model.objects.create)(id="tiny-ctx", provider="openai", upstream_name="tiny",
                                              name="Tiny", context_length=100, max_output_tokens=20)
    conversation = await sync_to_async(services.conversation_create)(user=user)
    with pytest.raises(AppError) as caught:
        await begin(user, "x" * 2000, conversation=conversation, model="tiny-ctx")
    assert caught.value.status_code == 422
    assert not openai_configured.calls
    assert not any(r.conversation and r.conversation.id == conversation.id for r in streaming._running.values())
    assert not await sync_to_async(Message.objects.filter(conversation=conversation).exists)()


async def test_cancel_before_the_generation_task_runs_still_ends_the_stream(openai_configured, user):
    openai_configured.push(Step(text=" ".join(["word"] * 40), chunk_delay=0.03))
    reply = await begin(user)
    # No await in between: the generation task has not run a single step yet.
    assert await streaming.cancel_reply(reply.stream_id) is True
    final = await reply.wait()
    assert final["type"] == "done" and final["status"] == "incomplete" and final["content"] == ""
    events = [e async for e in streaming.reply_events(reply.stream_id)]
    assert events[-1]["type"] == "done"
