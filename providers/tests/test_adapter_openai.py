"""The openai adapter through the real SDK against a fake Chat Completions server."""

from __future__ import annotations

import time

import openai
import pytest

from providers.adapters.base import ChatMessage, ChatRequest, Finish, ProviderSettings, TextDelta, ThinkingDelta, Usage
from providers.adapters.openai import OpenAIProvider
from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from providers.tests.fake_openai import MODELS, FakeOpenAI, fake_embedding
from providers.tests.fakeserver import Step, _free_port, serving, split_text
from providers.tests.requests import chat_request

TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def fake():
    with serving(FakeOpenAI()) as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _reset(fake):
    fake.reset()


def make_provider(fake: FakeOpenAI, **overrides) -> OpenAIProvider:
    values = {"name": "oai", "kind": "openai", "api_key": "sk-test-1234", "base_url": fake.url + "/v1",
              "timeout": 5.0, "connect_timeout": 2.0}
    values.update(overrides)
    return OpenAIProvider(ProviderSettings(**values))


@pytest.fixture
async def provider(fake):
    adapter = make_provider(fake)
    yield adapter
    await adapter.aclose()


def req(**kwargs) -> ChatRequest:
    values = {"model": "gpt-4o-mini", "messages": [ChatMessage("user", "Hi there")]}
    values.update(kwargs)
    return chat_request(**values)


async def collect(provider: OpenAIProvider, request: ChatRequest) -> list:
    return [event async for event in provider.stream(request)]


async def test_stream_yields_deltas_usage_and_finish(fake, provider):
    fake.push(Step(text=TEXT, prompt_tokens=21, completion_tokens=9))
    events = await collect(provider, req())
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == len(split_text(TEXT)) > 1
    assert "".join(d.text for d in deltas) == TEXT
    assert [e for e in events if isinstance(e, Usage)] == [Usage(21, 9)]
    assert events[-2:] == [Usage(21, 9), Finish("stop")]
    assert fake.calls[0].path == "/v1/chat/completions"
    body = fake.calls[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_consecutive_streams_reuse_one_connection(fake, provider):
    await collect(provider, req())
    await collect(provider, req())

    assert len(fake.calls) == 2
    assert fake.calls[0].client == fake.calls[1].client  # same TCP connection: the body was read to its end


async def test_complete_collects_the_stream(fake, provider):
    fake.push(Step(text=TEXT, prompt_tokens=5, completion_tokens=3))
    completion = await provider.complete(req())
    assert completion.text == TEXT
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 3)
    assert not completion.usage.estimated
    assert completion.finish_reason == "stop"
    assert completion.provider == "oai"
    assert completion.model == "gpt-4o-mini"


async def test_request_parameters_reach_the_wire(fake, provider):
    fake.push(Step())
    await provider.complete(req(
        model="gpt-4o", system="You are terse.", temperature=0.3, top_p=0.9, max_tokens=64,
        stop=["END"], user="user-42", web_grounding=True,
        messages=[ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello"), ChatMessage("user", "Bye")],
    ))
    call = fake.calls[0]
    body = call.body
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["max_tokens"] == 64
    assert "max_completion_tokens" not in body
    assert body["stop"] == ["END"]
    assert body["user"] == "user-42"
    assert "reasoning_effort" not in body
    assert "web_search_options" not in body  # web grounding is silently not supported here
    assert call.headers["authorization"] == "Bearer sk-test-1234"


async def test_unset_parameters_are_not_sent(fake, provider):
    fake.push(Step())
    await provider.complete(req())
    body = fake.calls[0].body
    assert body["messages"] == [{"role": "user", "content": "Hi there"}]
    for key in ("temperature", "top_p", "max_tokens", "stop", "user", "reasoning_effort"):
        assert key not in body


@pytest.mark.parametrize("model", ["o3-mini", "gpt-5-mini"])
async def test_thinking_sets_reasoning_effort_for_reasoning_models(fake, provider, model):
    fake.push(Step())
    await provider.complete(req(model=model, thinking=True, max_tokens=100))
    body = fake.calls[0].body
    assert body["reasoning_effort"] == "medium"
    assert body["max_completion_tokens"] == 100
    assert "max_tokens" not in body


@pytest.mark.parametrize("model", ["gpt-4o", "llama3.2", "olmo-2"])
async def test_thinking_is_not_sent_to_other_models(fake, provider, model):
    fake.push(Step())
    await provider.complete(req(model=model, thinking=True))
    assert "reasoning_effort" not in fake.calls[0].body


async def test_reasoning_content_becomes_thinking_deltas(fake, provider):
    fake.push(Step(text="42.", thinking="Let me think about this."))
    events = await collect(provider, req(model="deepseek-r1", thinking=True))
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert "".join(e.text for e in thinking) == "Let me think about this."
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(i < first_text for i, e in enumerate(events) if isinstance(e, ThinkingDelta))
    completion_events = [e for e in events if isinstance(e, TextDelta)]
    assert "".join(e.text for e in completion_events) == "42."
    fake.push(Step(text="42.", thinking="Hmm."))
    completion = await provider.complete(req(model="deepseek-r1", thinking=True))
    assert (completion.text, completion.thinking) == ("42.", "Hmm.")


@pytest.mark.parametrize(("kind", "reason"), [("ok", "stop"), ("length", "length"),
                                              ("content_filter", "content_filter")])
async def test_finish_reasons_map(fake, provider, kind, reason):
    fake.push(Step(kind))
    events = await collect(provider, req())
    assert events[-1] == Finish(reason)


async def test_usage_is_estimated_when_the_server_sends_none(fake, provider):
    fake.push(Step(text="abcdefgh", include_usage=False))
    events = await collect(provider, req(system="12345678", messages=[ChatMessage("user", "1234")]))
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage == [Usage(3, 2, estimated=True)]


async def test_no_api_key_uses_a_placeholder(fake, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    adapter = make_provider(fake, api_key="")
    try:
        fake.push(Step(text="ok"))
        completion = await adapter.complete(req(model="llama3.2"))
    finally:
        await adapter.aclose()
    assert completion.text == "ok"
    assert fake.calls[0].headers["authorization"] == "Bearer not-needed"


async def test_rate_limit_carries_retry_after(fake, provider):
    fake.push(Step("status", status=429, headers={"retry-after": "7"}))
    with pytest.raises(ProviderRateLimited) as info:
        await collect(provider, req())
    assert info.value.retry_after == 7
    assert info.value.upstream_status == 429
    assert info.value.headers["Retry-After"] == "7"
    assert len(fake.calls) == 1  # max_retries=0: the SDK did not retry


@pytest.mark.parametrize(("status", "error"), [(500, ProviderUnavailable), (503, ProviderUnavailable),
                                               (401, ProviderAuthError), (504, ProviderTimeout)])
async def test_status_errors_map(fake, provider, status, error):
    fake.push(Step("status", status=status))
    with pytest.raises(error) as info:
        await collect(provider, req())
    assert info.value.upstream_status == status
    assert len(fake.calls) == 1


async def test_bad_request_is_not_retryable_and_hides_upstream_text(fake, provider):
    fake.push(Step("status", status=400))
    with pytest.raises(ProviderError) as info:
        await collect(provider, req())
    err = info.value
    assert type(err) is ProviderError
    assert not err.retryable
    assert err.upstream_status == 400
    assert "sk-should-not-leak" not in str(err)
    assert "sk-should-not-leak" not in repr(err.details)
    assert err.__cause__ is None


async def test_malformed_stream_chunk_raises_after_first_deltas(fake, provider):
    fake.push(Step("malformed", text=TEXT, after=2))
    seen = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(req()):
            seen.append(event)
    assert type(info.value) is ProviderError
    assert [e.text for e in seen] == split_text(TEXT)[:2]


async def test_disconnect_mid_stream_raises_after_first_deltas(fake, provider):
    fake.push(Step("disconnect", text=TEXT, after=3))
    seen = []
    with pytest.raises(ProviderUnavailable):
        async for event in provider.stream(req()):
            seen.append(event)
    assert "".join(e.text for e in seen) == "".join(split_text(TEXT)[:3])
    assert not any(isinstance(e, (Usage, Finish)) for e in seen)


async def test_hang_times_out_quickly(fake):
    adapter = make_provider(fake, timeout=0.5)
    fake.push(Step("hang", seconds=5))
    started = time.perf_counter()
    try:
        with pytest.raises(ProviderTimeout):
            await collect(adapter, req())
    finally:
        await adapter.aclose()
    assert time.perf_counter() - started < 3


async def test_stall_mid_stream_times_out(fake):
    adapter = make_provider(fake, timeout=0.5)
    fake.push(Step(text="one two three", chunk_delay=2))
    seen = []
    try:
        with pytest.raises(ProviderTimeout):
            async for event in adapter.stream(req()):
                seen.append(event)
    finally:
        await adapter.aclose()
    assert seen == [TextDelta("one")]


async def test_connection_refused_is_unavailable():
    adapter = OpenAIProvider(ProviderSettings(name="dead", kind="openai", api_key="k",
                                              base_url=f"http://127.0.0.1:{_free_port()}/v1"))
    try:
        with pytest.raises(ProviderUnavailable):
            await collect(adapter, req())
    finally:
        await adapter.aclose()


async def test_list_models_and_health(fake, provider):
    assert await provider.list_models() == MODELS
    health = await provider.health()
    assert health.status == "healthy"
    assert [c.path for c in fake.calls] == ["/v1/models", "/v1/models"]


async def test_health_unhealthy_on_closed_port():
    adapter = OpenAIProvider(ProviderSettings(name="dead", kind="openai", api_key="k",
                                              base_url=f"http://127.0.0.1:{_free_port()}/v1"))
    try:
        health = await adapter.health()
    finally:
        await adapter.aclose()
    assert health.status == "unhealthy"
    assert health.detail == "ProviderUnavailable"


async def test_health_unhealthy_on_auth_failure(fake, provider):
    fake.push(Step("status", status=401))
    health = await provider.health()
    assert (health.status, health.detail) == ("unhealthy", "ProviderAuthError")


async def test_embed_returns_vectors_in_input_order(fake, provider):
    texts = ["alpha", "beta", "gamma"]
    vectors = await provider.embed(texts)
    assert vectors == [fake_embedding(t) for t in texts]
    assert vectors[0] != vectors[1]
    body = fake.calls[0].body
    assert fake.calls[0].path == "/v1/embeddings"
    assert body["model"] == "text-embedding-3-small"
    assert body["input"] == texts


async def test_embed_model_and_errors(fake, provider):
    assert provider.supports_embeddings
    await provider.embed(["x"], model="text-embedding-3-large")
    assert fake.calls[0].body["model"] == "text-embedding-3-large"
    fake.push(Step("status", status=429, headers={"retry-after-ms": "1500"}))
    with pytest.raises(ProviderRateLimited) as info:
        await provider.embed(["x"])
    assert info.value.retry_after == 1.5
    fake.push(Step("malformed"))
    with pytest.raises(ProviderError):
        await provider.embed(["x"])


async def test_list_models_malformed(fake, provider):
    fake.push(Step("malformed"))
    with pytest.raises(ProviderError) as info:
        await provider.list_models()
    assert type(info.value) is ProviderError


async def test_fake_non_streaming_answer_parses_in_the_sdk(fake):
    # The fake's JSON (non-streaming) shape, as other suites may use it directly.
    client = openai.AsyncOpenAI(api_key="k", base_url=fake.url + "/v1", max_retries=0)
    try:
        fake.push(Step("length", text=TEXT, thinking="hm", prompt_tokens=4, completion_tokens=2))
        result = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    finally:
        await client.close()
    assert result.choices[0].message.content == TEXT
    assert result.choices[0].finish_reason == "length"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 2)
    assert fake.calls[0].body.get("stream") is None


async def test_base_url_without_v1_also_works(fake):
    adapter = make_provider(fake, base_url=fake.url)
    try:
        fake.push(Step(text="ok"))
        assert (await adapter.complete(req())).text == "ok"
    finally:
        await adapter.aclose()
    assert fake.calls[0].path == "/chat/completions"


async def test_redirects_are_not_followed(fake, provider):
    # An endpoint answering with a redirect must not make us call wherever it points (SSRF).
    fake.push(Step("status", status=307, headers={"location": fake.url + "/v1/elsewhere"}))
    with pytest.raises(ProviderError):
        await collect(provider, req())
    assert [c.path for c in fake.calls] == ["/v1/chat/completions"]
