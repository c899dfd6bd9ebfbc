"""The OpenAI-compatible API (/v1) with the official ``openai`` SDK against a live server of ours
(uvicorn in a thread, our real ASGI app), the provider behind it being the fake OpenAI upstream."""

from __future__ import annotations

import math
import time

import openai
import pytest
from asgiref.sync import sync_to_async

from accounts.services import api_key_create
from chats.tests.test_sse import asgi_request, bearer, data_events
from providers.models import UsageRecord
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)



# --- with the SDK, over real HTTP ---------------------------------------------------------------


def test_sdk_chat_completion(openai_configured, openai_client, api_key):
    openai_configured.push(Step(text="Hello from the gateway", prompt_tokens=9, completion_tokens=4))
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", temperature=0.2, max_tokens=50,
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}])
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Hello from the gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (9, 4, 13)
    assert float(raw.headers["x-gateway-overhead-ms"]) >= 0
    assert raw.headers["x-request-id"]
    sent = openai_configured.calls[0].body
    assert sent["messages"] == [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 50
    record = UsageRecord.objects.get()
    assert (record.user_id, record.api_key_id, record.total_tokens) == (api_key[0].user_id, api_key[0].id, 13)



def test_usage_rows_are_written_behind_the_reply_within_the_window(settings, openai_configured, openai_client,
                                                                    api_key):
    """As served (USAGE_WRITE_BEHIND on): the reply does not wait for its usage row, which the
    writer thread inserts within USAGE_FLUSH_SECONDS, calls close together in one batch."""
    from providers.services import usage_rows

    settings.USAGE_WRITE_BEHIND, settings.USAGE_FLUSH_SECONDS = True, 1.0
    for tokens in (3, 4):
        openai_configured.push(Step(text="Hi", prompt_tokens=tokens, completion_tokens=1))
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    assert usage_rows.pending() == 2 and not UsageRecord.objects.exists()  # both answered before any row

    deadline = time.monotonic() + 5
    while UsageRecord.objects.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    usage_rows.flush()  # waits for the writer's batch to end
    records = UsageRecord.objects.order_by("prompt_tokens")
    assert [(r.prompt_tokens, r.api_key_id, r.status) for r in records] == [(3, api_key[0].id, "success"),
                                                                            (4, api_key[0].id, "success")]
    assert usage_rows.pending() == 0

def test_sdk_streaming_with_include_usage(openai_configured, openai_client):
    openai_configured.push(Step(text="Streaming through the gateway", prompt_tokens=5, completion_tokens=4))
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "Stream please"}])
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Streaming through the gateway"
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and (last.usage.prompt_tokens, last.usage.completion_tokens) == (5, 4)
    assert all(c.usage is None for c in chunks[:-1])


def test_sdk_streaming_without_usage_has_no_usage_chunk(openai_configured, openai_client):
    openai_configured.push(Step(text="No usage"))
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                 messages=[{"role": "user", "content": "Hi"}]))
    assert all(c.choices for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"


def test_sdk_provider_error_mid_stream_raises(openai_configured, openai_client):
    openai_configured.push(Step("disconnect", text="one two three", after=1))
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                            messages=[{"role": "user", "content": "Hi"}])
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content if chunk.choices else None)
    assert "one" in received
    assert info.value.body["type"] == "api_error" and info.value.body["code"] == "provider_error"


def test_sdk_models(openai_configured, openai_client):
    listed = openai_client.models.list()
    ids = [m.id for m in listed.data]
    assert {"gpt-4o-mini", "claude-sonnet-4.5", "gemini-2.5-flash", "all-MiniLM-L6-v2"} <= set(ids)
    assert all(m.object == "model" and m.owned_by for m in listed.data)
    model = openai_client.models.retrieve("claude-sonnet-4.5")
    assert model.id == "claude-sonnet-4.5" and model.owned_by == "anthropic"
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.models.retrieve("gpt-9000")
    assert info.value.body["code"] == "model_not_found"


def test_sdk_errors_have_openais_shape(openai_configured, openai_client, gateway_url):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model="gpt-4o-mini", temperature=5,
                                       messages=[{"role": "user", "content": "Hi"}])
    assert info.value.body["param"] == "temperature" and info.value.body["type"] == "invalid_request_error"
    assert info.value.body["request_id"]
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
    bad = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="cpk_wrong_key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.models.list()
    assert info.value.body["type"] == "authentication_error" and info.value.body["message"]
    assert not openai_configured.calls


def test_sdk_with_a_jwt(openai_configured, gateway_url, user, tokens_for):
    openai_configured.push(Step(text="JWT works"))
    jwt_client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=tokens_for(user)["access_token"], max_retries=0)
    completion = jwt_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content == "JWT works"


@pytest.mark.slow
def test_sdk_embeddings(openai_configured, openai_client):
    from providers.embeddings import embed_texts

    texts = ["The cat sat on the mat.", "A feline rested on the rug.", "Quarterly tax filing deadlines."]
    result = openai_client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)  # the SDK asks for base64
    assert result.object == "list" and result.model == "all-MiniLM-L6-v2"
    vectors = [d.embedding for d in sorted(result.data, key=lambda d: d.index)]
    assert all(len(v) == 384 for v in vectors)
    expected = embed_texts(texts)
    assert all(math.isclose(a, b, abs_tol=1e-5) for v, e in zip(vectors, expected, strict=True)
               for a, b in zip(v, e, strict=True))
    dot = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
    far = sum(a * b for a, b in zip(vectors[0], vectors[2], strict=True))
    assert dot > far
    assert result.usage.prompt_tokens == result.usage.total_tokens > 10
    single = openai_client.embeddings.create(model="all-MiniLM-L6-v2", input="hello world", encoding_format="float")
    assert len(single.data) == 1 and len(single.data[0].embedding) == 384
    with pytest.raises(openai.NotFoundError):
        openai_client.embeddings.create(model="text-embedding-3-small", input="x")


# --- in-process, for what the SDK cannot send ----------------------------------------------------


@pytest.mark.slow
async def test_embeddings_model_defaults_and_input_validation(openai_configured, user, tokens_for):
    headers = await bearer(tokens_for, user)
    response = await asgi_request("POST", "/v1/embeddings", headers=headers, json_body={"input": "hello"})
    assert response.status == 200, response.body
    body = response.json()
    assert body["model"] == "all-MiniLM-L6-v2" and len(body["data"][0]["embedding"]) == 384
    for bad in ([], [1, 2, 3], "", ["ok", ""], ["x"] * 513):
        refused = await asgi_request("POST", "/v1/embeddings", headers=headers, json_body={"input": bad})
        assert refused.status == 400 and refused.json()["error"]["param"] == "input"


async def test_unsupported_options_are_400_in_openais_shape(openai_configured, user, tokens_for):
    headers = await bearer(tokens_for, user)
    base = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    for change, param in [({"n": 2}, "n"), ({"logprobs": True}, "logprobs"), ({"audio": {"voice": "x"}}, "audio"),
                          ({"made_up_option": 1}, "made_up_option"),
                          ({"tools": [{"type": "function", "function": {"name": "not a name"}}]}, "tools"),
                          ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 3}}}]},
                           "tools"),
                          ({"tool_choice": {"type": "function", "function": {"name": "missing"}}}, "tool_choice"),
                          ({"response_format": {"type": "json_schema"}}, "response_format"),
                          ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
                          ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
                           "messages"),
                          ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]},
                           "messages")]:
        response = await asgi_request("POST", "/v1/chat/completions", headers=headers, json_body={**base, **change})
        assert response.status == 400, (change, response.body)
        error = response.json()["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"], (change, error)
    assert not openai_configured.calls


async def test_text_parts_and_developer_messages(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Parts ok"))
    response = await asgi_request("POST", "/v1/chat/completions", headers=await bearer(tokens_for, user), json_body={
        "model": "gpt-4o-mini", "messages": [
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "text", "text": "Bonjour, "}, {"type": "text", "text": "ça va ?"}]}]})
    assert response.status == 200 and response.json()["choices"][0]["message"]["content"] == "Parts ok"
    sent = openai_configured.calls[0].body["messages"]
    assert sent == [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Bonjour, ça va ?"}]


async def test_v1_unknown_route_wrong_method_and_no_credentials(openai_configured):
    unknown = await asgi_request("GET", "/v1/assistants")
    assert unknown.status == 404 and unknown.json()["error"]["type"] == "invalid_request_error"
    wrong = await asgi_request("GET", "/v1/chat/completions")
    assert wrong.status == 405 and wrong.headers["allow"] == "POST" and "error" in wrong.json()
    anonymous = await asgi_request("GET", "/v1/models")
    assert anonymous.status == 401 and anonymous.json()["error"]["type"] == "authentication_error"
    assert "x-gateway-overhead-ms" in anonymous.headers


async def test_overhead_header_excludes_the_providers_time(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="a b c d e f", chunk_delay=0.05))  # ~0.3 s upstream
    response = await asgi_request("POST", "/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
    overhead = float(response.headers["x-gateway-overhead-ms"])
    total = float(response.headers["x-process-time"]) * 1000
    assert 0 <= overhead < total - 200


async def test_v1_idempotency_key(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="once"))
    headers = {**(await bearer(tokens_for, user)), "Idempotency-Key": "v1-key"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    first = await asgi_request("POST", "/v1/chat/completions", headers=headers, json_body=body)
    again = await asgi_request("POST", "/v1/chat/completions", headers=headers, json_body=body)
    assert again.json() == first.json() and len(openai_configured.calls) == 1


async def test_v1_streamed_reasoning_and_sse_ids(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="Answer", thinking="Reasoning here"))
    response = await asgi_request("POST", "/v1/chat/completions", headers=await bearer(tokens_for, user), json_body={
        "model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Hi"}]})
    events = data_events(response)
    assert events[-1]["data"] == "[DONE]"
    chunks = [e["data"] for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks) == "Reasoning here"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Answer"
    assert all(e["id"].startswith(response.headers["x-stream-id"] + ":") for e in events[:-1])


async def test_v1_usage_is_recorded_per_api_key(openai_configured, user):
    key, raw = await sync_to_async(api_key_create)(user=user, name="usage")
    openai_configured.push(Step(text="counted", prompt_tokens=3, completion_tokens=2))
    response = await asgi_request("POST", "/v1/chat/completions", headers={"Authorization": f"Bearer {raw}"},
                                  json_body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status == 200
    record = await sync_to_async(UsageRecord.objects.get)()
    assert (record.api_key_id, record.total_tokens, record.status) == (key.id, 5, "success")


async def test_stop_sequences_reach_the_provider(openai_configured, user, tokens_for):
    headers = await bearer(tokens_for, user)
    base = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Count"}]}
    openai_configured.push(Step(text="one two"), Step(text="three"))
    assert (await asgi_request("POST", "/v1/chat/completions", headers=headers,
                               json_body={**base, "stop": "\n"})).status == 200
    assert openai_configured.calls[-1].body["stop"] == ["\n"]
    assert (await asgi_request("POST", "/v1/chat/completions", headers=headers,
                               json_body={**base, "stop": ["END", "###"]})).status == 200
    assert openai_configured.calls[-1].body["stop"] == ["END", "###"]
    bad = await asgi_request("POST", "/v1/chat/completions", headers=headers,
                             json_body={**base, "stop": ["a", "b", "c", "d", "e"]})
    assert bad.status == 400 and bad.json()["error"]["param"] == "stop"


# --- one thread hop before the turn -------------------------------------------------------------

TURN_ROUTES = [
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}),
    ("/v1/responses", {"model": "gpt-4o-mini", "input": "Hi"}),
    ("/v1/messages", {"model": "gpt-4o-mini", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}),
    ("/api/v1/chat/message", {"message": "Hi", "model": "gpt-4o-mini"}),
]


STATELESS_ROUTES = {"/v1/chat/completions", "/v1/messages"}  # /v1/responses stores its responses


@pytest.fixture
def served_signals():
    """``request_started`` as served (DEBUG off: no receivers, see asgi_handler); Django's test
    client connects its receivers again after each request it makes."""
    from django.core import signals
    from django.db import close_old_connections, reset_queries

    removed = [r for r in (close_old_connections, reset_queries) if signals.request_started.disconnect(r)]
    yield
    for receiver in removed:
        signals.request_started.connect(receiver)


@pytest.mark.parametrize(("route", "body"), TURN_ROUTES)
async def test_authentication_the_body_and_the_turn_take_one_hop(settings, openai_configured, user, route, body,
                                                                  served_signals, hops):
    """As served: the usage row written behind (USAGE_WRITE_BEHIND), not through a hop."""
    from providers.services import usage_rows

    settings.USAGE_WRITE_BEHIND = True
    _, raw = await sync_to_async(api_key_create)(user=user, name="hops")
    openai_configured.push(Step(text="warm-up"), Step(text="one hop"))
    headers = {"Authorization": f"Bearer {raw}"}
    assert (await asgi_request("POST", route, headers=headers, json_body=body)).status == 200  # the key remembered
    hops.clear()
    response = await asgi_request("POST", route, headers=headers, json_body=body)
    await sync_to_async(usage_rows.flush)()
    hops.remove("WriteBehind.flush")
    assert response.status == 200, response.body
    if route in STATELESS_ROUTES:  # nothing else on the request's thread, not even its end
        assert hops == ["turn_begin_after.<locals>.checked"]
    else:  # the assistant's save gives the connection back in its own hop: the end needs none
        assert hops == ["turn_begin_after.<locals>.checked", "_released_after"]


@pytest.mark.parametrize(("route", "body"), TURN_ROUTES)
async def test_a_bad_credential_is_401_whatever_the_body(openai_configured, user, route, body):
    _, raw = await sync_to_async(api_key_create)(user=user, name="order")
    bad_key = await asgi_request("POST", route, headers={"Authorization": "Bearer cpk_nope_nope"}, json_body={})
    assert bad_key.status == 401
    anonymous = await asgi_request("POST", route, json_body={"messages": "not a list"})
    assert anonymous.status == 401
    for idem in ({}, {"Idempotency-Key": "order-1"}):
        bad_body = await asgi_request("POST", route, headers={"Authorization": f"Bearer {raw}", **idem},
                                      json_body={**body, "no_such_field": 1})
        assert bad_body.status in (400, 422), bad_body.body
    assert openai_configured.calls == []


@pytest.mark.parametrize(("route", "body"), TURN_ROUTES)
async def test_an_idempotency_key_still_replays(openai_configured, user, route, body):
    _, raw = await sync_to_async(api_key_create)(user=user, name="replay")
    openai_configured.push(Step(text="once"))
    headers = {"Authorization": f"Bearer {raw}", "Idempotency-Key": f"replay-{route}"}
    first = await asgi_request("POST", route, headers=headers, json_body=body)
    again = await asgi_request("POST", route, headers=headers, json_body=body)
    assert first.status == again.status == 200 and len(openai_configured.calls) == 1
    assert again.body == first.body or again.json().get("id") == first.json().get("id")
