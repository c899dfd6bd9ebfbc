"""Seed 001's POST /chat/completion and seed 004's POST /chat/completions, from the seeds' own
examples: JSON and SSE, anonymous access rules, validation, Idempotency-Key, the flags reaching
the provider's wire (Gemini fake), another user's chat -> 404."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from chats import services
from chats.models import Conversation, Message
from chats.tests.test_sse import asgi_request, bearer, data_events, wait_for
from providers.models import UsageRecord
from providers.tests.fake_gemini import FakeGemini
from providers.tests.fakeserver import FakeServer, Step

pytestmark = pytest.mark.django_db(transaction=True)

SEED001_REQUEST = {
    "message": "Hello, how are you?",
    "model": "gpt-3.5-turbo",
    "temperature": 0.7,
    "max_tokens": 1000,
    "stream": False,
    "system_prompt": "You are a helpful assistant",
    "conversation_history": [
        {"role": "user", "content": "Previous message"},
        {"role": "assistant", "content": "Previous response"},
    ],
}
SEED004_REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "What is AI?"}],
    "temperature": 0.7,
    "max_tokens": 4000,
    "stream": False,
    "use_web_grounding": False,
    "use_extended_thinking": False,
    "use_rag": False,
}


def without_request_id(events: list[dict]) -> list[dict]:
    """Event data minus ``request_id`` (each HTTP request, a replay included, has its own)."""
    return [{k: v for k, v in e["data"].items() if k != "request_id"} for e in events]


async def messages_of(conversation_id: str) -> list[Message]:
    return await sync_to_async(list)(Message.objects.filter(conversation_id=conversation_id).order_by("created_at"))


# --- seed 001 -----------------------------------------------------------------------------------


async def test_seed001_documented_request_anonymous(openai_configured):
    openai_configured.push(Step(text="I'm doing well, thank you! How can I help you today?",
                                prompt_tokens=10, completion_tokens=15))
    response = await asgi_request("POST", "/api/v1/chat/completion", json_body=SEED001_REQUEST,
                                  headers={"X-Request-ID": "req_abc123"})
    assert response.status == 200
    body = response.json()
    assert body["response"] == "I'm doing well, thank you! How can I help you today?"
    assert body["model"] == "gpt-3.5-turbo" and body["request_id"] == "req_abc123"
    assert body["timestamp"].endswith("Z")
    assert (body["cached"], body["cache_key"], body["similarity_score"]) == (False, None, None)
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 15, "total_tokens": 25}
    assert body["finish_reason"] == "stop" and body["provider"] == "openai"
    assert response.headers["x-cache-status"] == "BYPASS"
    sent = openai_configured.calls[0].body
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", "You are a helpful assistant"), ("user", "Previous message"),
        ("assistant", "Previous response"), ("user", "Hello, how are you?")]
    assert sent["temperature"] == 0.7 and sent["max_tokens"] == 1000
    # Stateless: nothing stored but usage.
    assert await sync_to_async(Conversation.objects.count)() == 0
    assert await sync_to_async(UsageRecord.objects.count)() == 1


async def test_seed001_sdk_example_and_authenticated_caller(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Hello! Nice to meet you."))
    response = await asgi_request("POST", "/api/v1/chat/completion", headers=await bearer(tokens_for, user),
                                  json_body={"message": "Hello!", "model": "gpt-3.5-turbo"})
    assert response.status == 200 and response.json()["response"] == "Hello! Nice to meet you."
    record = await sync_to_async(UsageRecord.objects.get)()
    assert record.user_id == user.id


async def test_seed001_stream_true_answers_as_sse(openai_configured):
    openai_configured.push(Step(text="Streaming works"))
    response = await asgi_request("POST", "/api/v1/chat/completion", json_body={**SEED001_REQUEST, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = data_events(response)
    assert "".join(e["data"]["chunk"] for e in events[:-1]) == "Streaming works"
    assert events[-1]["data"]["finished"] is True and events[-1]["data"]["usage"]["total_tokens"] == 18


async def test_anonymous_callers_only_get_public_models(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="ok"))
    refused = await asgi_request("POST", "/api/v1/chat/completion", json_body={"message": "Hi", "model": "gpt-4o"})
    assert refused.status == 403
    assert "anonymous" in refused.json()["message"] and refused.json()["details"]["model"]
    streamed = await asgi_request("POST", "/api/v1/chat/stream", json_body={"message": "Hi", "model": "gpt-4o"})
    assert streamed.status == 403 and not streamed.headers["content-type"].startswith("text/event-stream")
    assert not openai_configured.calls
    allowed = await asgi_request("POST", "/api/v1/chat/completion", headers=await bearer(tokens_for, user),
                                 json_body={"message": "Hi", "model": "gpt-4o"})
    assert allowed.status == 200 and allowed.json()["model"] == "gpt-4o"
    # No model asked for: the default (gpt-4o-mini, public) serves anonymous callers.
    openai_configured.push(Step(text="default"))
    default = await asgi_request("POST", "/api/v1/chat/completion", json_body={"message": "Hi"})
    assert default.status == 200 and default.json()["model"] == "gpt-4o-mini"
    # A public model whose provider is not configured here: another public model answers, never a
    # non-public one through the fallback chain.
    openai_configured.push(Step(text="substitute"))
    substitute = await asgi_request("POST", "/api/v1/chat/completion",
                                    json_body={"message": "Hi", "model": "gemini-2.5-flash"})
    assert substitute.status == 200 and substitute.json()["model"] == "gpt-4o-mini"
    assert openai_configured.calls[-1].body["model"] == "gpt-4o-mini"


async def test_anonymous_chat_off_requires_credentials(openai_configured, settings):
    settings.ANONYMOUS_CHAT = False
    for path in ("/api/v1/chat/completion", "/api/v1/chat/stream"):
        response = await asgi_request("POST", path, json_body={"message": "Hi"})
        assert response.status == 401 and response.json()["code"] == "UNAUTHORIZED"
    bad_token = await asgi_request("POST", "/api/v1/chat/completion", json_body={"message": "Hi"},
                                   headers={"Authorization": "Bearer not-a-token"})
    assert bad_token.status == 401


@pytest.mark.parametrize(("change", "field"), [
    ({"message": ""}, "message"),
    ({"message": "   "}, "message"),
    ({"message": "x" * 32_001}, "message"),
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 5000}, "max_tokens"),  # gpt-3.5-turbo's own limit is 4096
    ({"conversation_history": [{"role": "tool", "content": "x"}]}, "conversation_history"),
    ({"conversation_history": [{"role": "user", "content": "x"}] * 201}, "conversation_history"),
    ({"model": "no-such-model"}, "model"),
])
async def test_seed001_validation(openai_configured, change, field):
    response = await asgi_request("POST", "/api/v1/chat/completion", json_body={**SEED001_REQUEST, **change})
    assert response.status == 422, response.body
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR" and field in body["details"]
    assert not openai_configured.calls


async def test_malformed_body_and_wrong_method(openai_configured):
    from chatplatform.asgi import application  # noqa: F401  (the app the helper drives)

    malformed = await asgi_request("POST", "/api/v1/chat/completion", json_body=None)
    assert malformed.status == 422  # an empty body: `message` is required
    wrong = await asgi_request("GET", "/api/v1/chat/completion")
    assert wrong.status == 405 and wrong.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_seed001_idempotency_key_replays_without_a_second_provider_call(openai_configured):
    openai_configured.push(Step(text="First and only answer"))
    headers = {"Idempotency-Key": "retry-1"}
    first = await asgi_request("POST", "/api/v1/chat/completion", json_body=SEED001_REQUEST, headers=headers)
    second = await asgi_request("POST", "/api/v1/chat/completion", json_body=SEED001_REQUEST, headers=headers)
    assert first.status == second.status == 200
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"
    assert len(openai_configured.calls) == 1
    other_body = await asgi_request("POST", "/api/v1/chat/completion", headers=headers,
                                    json_body={**SEED001_REQUEST, "message": "Something else"})
    assert other_body.status == 422 and other_body.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_seed001_stream_idempotency_replays_the_same_stream(openai_configured):
    openai_configured.push(Step(text="one stream only"))
    headers = {"Idempotency-Key": "stream-key"}
    first = await asgi_request("POST", "/api/v1/chat/stream", json_body={"message": "Hi"}, headers=headers)
    second = await asgi_request("POST", "/api/v1/chat/stream", json_body={"message": "Hi"}, headers=headers)
    assert second.headers["x-stream-id"] == first.headers["x-stream-id"]
    assert without_request_id(data_events(second)) == without_request_id(data_events(first))
    assert len(openai_configured.calls) == 1


async def test_provider_refusal_is_an_envelope_error(openai_configured):
    openai_configured.push(Step("status", status=400))
    response = await asgi_request("POST", "/api/v1/chat/completion", json_body={"message": "Hi"})
    assert response.status == 502 and response.json()["code"] == "PROVIDER_ERROR"
    assert "sk-should-not-leak" not in response.body.decode()


# --- seed 004 -----------------------------------------------------------------------------------


async def test_seed004_documented_request_in_an_existing_chat(openai_configured, user, tokens_for):
    conversation = await sync_to_async(services.conversation_create)(user=user, title="My Chat",
                                                                     system_prompt="You are a helpful assistant")
    first = await sync_to_async(services.message_add_user)(conversation=conversation, content="Earlier question")
    await sync_to_async(services.message_save_assistant)(conversation=conversation, message_id="msg_earlier1",
                                                         parent=first, content="Earlier answer")
    openai_configured.push(Step(text="AI (Artificial Intelligence) is...", prompt_tokens=100, completion_tokens=50))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={**SEED004_REQUEST, "chat_id": conversation.id})
    assert response.status == 200, response.body
    body = response.json()
    assert body["message"] == {"role": "assistant", "content": "AI (Artificial Intelligence) is..."}
    assert body["model"] == "gpt-4o-mini" and body["tokens_used"] == 150 and body["finish_reason"] == "stop"
    assert body["chat_id"] == conversation.id and body["usage"]["total_tokens"] == 150
    assert "thinking" not in body
    stored = await messages_of(conversation.id)
    assert [(m.role, m.content) for m in stored][-2:] == [
        ("user", "What is AI?"), ("assistant", "AI (Artificial Intelligence) is...")]
    assert stored[-1].id == body["id"] and stored[-1].parent_id == stored[-2].id == body["user_message_id"]
    # The chat's thread (not the request's messages) is the history the provider sees.
    sent = openai_configured.calls[0].body["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("system", "You are a helpful assistant"), ("user", "Earlier question"), ("assistant", "Earlier answer"),
        ("user", "What is AI?")]


async def test_seed004_without_chat_id_creates_a_chat_from_the_messages(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Hi! How can I help you?"))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={"model": "gpt-4o-mini", "messages": [
                                      {"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "My name is Ann."},
                                      {"role": "assistant", "content": "Hello Ann."},
                                      {"role": "user", "content": "Hello!"}]})
    assert response.status == 200
    chat_id = response.json()["chat_id"]
    conversation = await sync_to_async(Conversation.objects.get)(id=chat_id)
    assert conversation.user_id == user.id and conversation.system_prompt == "Be brief."
    assert conversation.title == "My name is Ann."
    assert [(m.role, m.content) for m in await messages_of(chat_id)] == [
        ("user", "My name is Ann."), ("assistant", "Hello Ann."), ("user", "Hello!"),
        ("assistant", "Hi! How can I help you?")]
    sent = openai_configured.calls[0].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]


async def test_seed004_python_example_minimal_body(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Hello there"))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]})
    assert response.status == 200 and response.json()["message"]["content"] == "Hello there"


async def test_seed004_another_users_chat_is_404_and_nothing_is_called(openai_configured, user, make_user, tokens_for):
    owner = await sync_to_async(make_user)("owner")
    conversation = await sync_to_async(services.conversation_create)(user=owner)
    for stream in (False, True):
        response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                      json_body={**SEED004_REQUEST, "chat_id": conversation.id, "stream": stream})
        assert response.status == 404 and response.json()["code"] == "NOT_FOUND"
    assert await messages_of(conversation.id) == [] and not openai_configured.calls


async def test_seed004_requires_authentication(openai_configured):
    response = await asgi_request("POST", "/api/v1/chat/completions", json_body=SEED004_REQUEST)
    assert response.status == 401


@pytest.mark.parametrize(("messages", "detail"), [
    ([], "messages"),
    ([{"role": "assistant", "content": "Hi"}], "messages"),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "messages"),
    ([{"role": "user", "content": "  "}], "messages"),
    ([{"role": "robot", "content": "Hi"}], "messages"),
])
async def test_seed004_message_validation(openai_configured, user, tokens_for, messages, detail):
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={**SEED004_REQUEST, "messages": messages})
    assert response.status == 422 and detail in response.json()["details"]
    assert await sync_to_async(Conversation.objects.count)() == 0


async def test_seed004_parameters_checked_before_anything_is_saved(openai_configured, user, tokens_for):
    conversation = await sync_to_async(services.conversation_create)(user=user)
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={**SEED004_REQUEST, "chat_id": conversation.id,
                                             "model": "claude-sonnet-4.5", "temperature": 1.5})
    assert response.status == 422 and "temperature" in response.json()["details"]
    assert await messages_of(conversation.id) == []


async def test_seed004_stream(openai_configured, user, tokens_for):
    conversation = await sync_to_async(services.conversation_create)(user=user)
    openai_configured.push(Step(text="Streamed answer here"))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={**SEED004_REQUEST, "chat_id": conversation.id, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-chat-id"] == conversation.id
    events = data_events(response)
    assert [e["data"] for e in events[:-1]] == [
        {"chunk": "Streamed", "index": 0}, {"chunk": " answer", "index": 1}, {"chunk": " here", "index": 2}]
    final = events[-1]["data"]
    assert final["finished"] is True and final["chat_id"] == conversation.id
    assert final["message"] == {"role": "assistant", "content": "Streamed answer here"}
    assert final["tokens_used"] == 18 and final["finish_reason"] == "stop"
    saved = await sync_to_async(Message.objects.get)(id=final["id"])
    assert saved.status == "complete" and saved.content == "Streamed answer here"


async def test_seed004_idempotency_key_no_second_call_no_second_message(openai_configured, user, tokens_for):
    conversation = await sync_to_async(services.conversation_create)(user=user)
    openai_configured.push(Step(text="Only once"), Step(text="Streamed once"))
    headers = {**(await bearer(tokens_for, user)), "Idempotency-Key": "abc-123"}
    body = {**SEED004_REQUEST, "chat_id": conversation.id}
    first = await asgi_request("POST", "/api/v1/chat/completions", headers=headers, json_body=body)
    retry = await asgi_request("POST", "/api/v1/chat/completions", headers=headers, json_body=body)
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    assert len(openai_configured.calls) == 1 and len(await messages_of(conversation.id)) == 2
    # Streamed: the retry replays the same stream from the hub.
    headers["Idempotency-Key"] = "abc-456"
    body["stream"] = True
    streamed = await asgi_request("POST", "/api/v1/chat/completions", headers=headers, json_body=body)
    replay = await asgi_request("POST", "/api/v1/chat/completions", headers=headers, json_body=body)
    assert replay.headers["x-stream-id"] == streamed.headers["x-stream-id"]
    assert without_request_id(data_events(replay)) == without_request_id(data_events(streamed))
    assert len(openai_configured.calls) == 2 and len(await messages_of(conversation.id)) == 4


async def test_seed004_client_gone_before_the_answer_still_gets_it_on_retry(openai_configured, user, tokens_for):
    conversation = await sync_to_async(services.conversation_create)(user=user)
    openai_configured.push(Step(text="a slow but complete answer", chunk_delay=0.1))
    headers = {**(await bearer(tokens_for, user)), "Idempotency-Key": "dropped-1"}
    body = {**SEED004_REQUEST, "chat_id": conversation.id}
    gone = asyncio.Event()

    async def leave_once_the_provider_is_called() -> None:  # not on a timer: a cold process is slower
        while not openai_configured.calls:
            await asyncio.sleep(0.01)
        gone.set()

    leaving = asyncio.ensure_future(leave_once_the_provider_is_called())
    dropped = await asgi_request("POST", "/api/v1/chat/completions", headers=headers, json_body=body, disconnect=gone)
    await leaving
    assert dropped.status == 0  # the client left before any answer

    async def saved() -> bool:
        try:
            return any(m.role == "assistant" and m.status == "complete" for m in await messages_of(conversation.id))
        except OperationalError:  # in-memory SQLite's shared cache: the table locked by the save, read again
            return False

    await wait_for(saved)
    retry = None
    for _ in range(50):  # the stored answer lands just after the message is saved
        retry = await asgi_request("POST", "/api/v1/chat/completions", headers=headers, json_body=body)
        if retry.status != 409:
            break
        await asyncio.sleep(0.05)
    assert retry.status == 200 and retry.json()["message"]["content"] == "a slow but complete answer"
    assert len(openai_configured.calls) == 1


async def test_seed004_provider_error_keeps_the_users_message(openai_configured, user, tokens_for):
    conversation = await sync_to_async(services.conversation_create)(user=user)
    openai_configured.push(Step("status", status=400))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={**SEED004_REQUEST, "chat_id": conversation.id})
    assert response.status == 502 and response.json()["details"]["chat_id"] == conversation.id
    stored = await messages_of(conversation.id)
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "error")]


# --- the flags reach the provider's wire (Gemini) ----------------------------------------------


@pytest.fixture(scope="module")
def gemini_upstream():
    upstream = FakeGemini()
    with FakeServer(upstream) as server:
        upstream.url = server.url
        yield upstream


@pytest.fixture
def gemini_configured(openai_configured, gemini_upstream):
    from providers.services import provider_config_save

    gemini_upstream.reset()
    provider_config_save(name="gemini", kind="gemini", api_key="AIza-test-key-1234", base_url=gemini_upstream.url,
                         max_retries=0)
    return gemini_upstream


async def test_seed004_thinking_and_grounding_reach_gemini(gemini_configured, user, tokens_for):
    conversation = await sync_to_async(services.conversation_create)(user=user)
    gemini_configured.push(Step(text="Grounded answer.", thinking="Let me search first."),
                           Step(text="Plain answer."))
    headers = await bearer(tokens_for, user)
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=headers, json_body={
        **SEED004_REQUEST, "chat_id": conversation.id, "model": "gemini-2.5-flash",
        "use_web_grounding": True, "use_extended_thinking": True, "use_rag": True})
    assert response.status == 200, response.body
    body = response.json()
    assert body["message"]["content"] == "Grounded answer." and body["thinking"] == "Let me search first."
    wire = gemini_configured.calls[0].body
    assert wire["tools"] == [{"googleSearch": {}}]
    thinking_config = wire["generationConfig"].get("thinkingConfig") or wire["generationConfig"]["thinking_config"]
    assert thinking_config.get("includeThoughts", thinking_config.get("include_thoughts")) is True
    # Flags off: neither reaches the wire.
    plain = await asgi_request("POST", "/api/v1/chat/completions", headers=headers, json_body={
        **SEED004_REQUEST, "chat_id": conversation.id, "model": "gemini-2.5-flash"})
    assert plain.status == 200 and "thinking" not in plain.json()
    wire = gemini_configured.calls[1].body
    assert "tools" not in wire and "thinkingConfig" not in wire.get("generationConfig", {})


async def test_seed004_streamed_thinking_events(gemini_configured, user, tokens_for):
    conversation = await sync_to_async(services.conversation_create)(user=user)
    gemini_configured.push(Step(text="The answer.", thinking="Thinking hard."))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={**SEED004_REQUEST, "chat_id": conversation.id, "stream": True,
                                             "model": "gemini-2.5-flash", "use_extended_thinking": True})
    events = data_events(response)
    thinking = [e for e in events if e.get("event") == "thinking"]
    assert "".join(e["data"]["thinking"] for e in thinking) == "Thinking hard."
    assert "".join(e["data"].get("chunk", "") for e in events) == "The answer."
    assert events[-1]["data"]["thinking"] == "Thinking hard."


async def test_routes_are_in_the_openapi_schema(openai_configured):
    response = await asgi_request("GET", "/openapi.json")
    paths = response.json()["paths"]
    for path in ("/api/v1/chat/completion", "/api/v1/chat/stream", "/api/v1/chat/stream/{stream_id}",
                 "/api/v1/chat/completions", "/v1/chat/completions", "/v1/models", "/v1/embeddings"):
        assert path in paths
    assert "text/event-stream" in paths["/api/v1/chat/stream"]["post"]["responses"]["200"]["content"]


async def test_open_routes_offer_a_public_model_of_every_configured_provider(all_providers_configured):
    from rest_framework.test import APIClient

    listed = await sync_to_async(lambda: APIClient().get("/api/v1/models").json())()
    kinds = {m["provider"] for m in listed if m["available"]}
    assert {"openai", "anthropic", "gemini"} <= kinds  # anonymous callers see each configured provider
    assert all(m["public"] for m in listed)
    all_providers_configured["anthropic"].push(Step(text="Claude, anonymously."))
    response = await asgi_request("POST", "/api/v1/chat/completion",
                                  json_body={"message": "Hi", "model": "claude-haiku-4.5"})
    assert response.status == 200, response.body
    assert (response.json()["model"], response.json()["provider"]) == ("claude-haiku-4.5", "anthropic")
    assert all_providers_configured["anthropic"].calls[-1].body["model"] == "claude-haiku-4-5"
