"""The Anthropic adapter through the real ``anthropic`` SDK against a fake Anthropic API."""

from __future__ import annotations

import socket
import time

import pytest

from providers.adapters.anthropic import AnthropicProvider
from providers.adapters.base import (
    ChatMessage,
    ChatRequest,
    Finish,
    ProviderSettings,
    TextDelta,
    ThinkingDelta,
    Usage,
)
from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from providers.registry import adapter_class
from providers.tests.fake_anthropic import AnthropicStep, FakeAnthropic
from providers.tests.fakeserver import FakeServer, Step
from providers.tests.requests import chat_request

MODEL = "claude-sonnet-5"
TEXT = "The quick brown fox jumps over the lazy dog."
LEAK = "sk-should-not-leak"


@pytest.fixture(scope="module")
def server():
    with FakeServer(FakeAnthropic()) as srv:
        yield srv


@pytest.fixture
def fake(server) -> FakeAnthropic:
    server.app.reset()
    return server.app


def make_settings(url: str, **overrides) -> ProviderSettings:
    values = {"name": "claude", "kind": "anthropic", "api_key": "sk-ant-test-key", "base_url": url,
              "default_model": MODEL, "timeout": 5.0, "connect_timeout": 2.0}
    values.update(overrides)
    return ProviderSettings(**values)


@pytest.fixture
async def provider(server, fake):
    adapter = AnthropicProvider(make_settings(server.url))
    yield adapter
    await adapter.aclose()


def chat(text: str = "Hi there", **kwargs) -> ChatRequest:
    return chat_request(model=MODEL, messages=[ChatMessage("user", text)], **kwargs)


async def collect(adapter, request):
    return [event async for event in adapter.stream(request)]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- streaming --------------------------------------------------------------------------------


async def test_stream_yields_text_then_one_usage_then_finish(provider, fake):
    fake.push(Step("ok", text=TEXT, prompt_tokens=23, completion_tokens=9))
    events = await collect(provider, chat())

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == len(TEXT.split(" "))  # really streamed, one delta per chunk
    assert "".join(d.text for d in deltas) == TEXT
    usages = [e for e in events if isinstance(e, Usage)]
    assert usages == [Usage(prompt_tokens=23, completion_tokens=9, estimated=False)]
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"
    assert isinstance(events[-2], Usage)
    assert not any(isinstance(e, ThinkingDelta) for e in events)


async def test_request_parameters_reach_the_wire(provider, fake):
    request = chat_request(
        model=MODEL,
        system="You are terse.",
        messages=[ChatMessage("user", "Hello"), ChatMessage("assistant", "Hi!"), ChatMessage("user", "Tell me")],
        temperature=1.7, top_p=0.8, max_tokens=256, stop=["END"], user="user-42",
    )
    await collect(provider, request)

    [call] = fake.message_calls
    body = call.body
    assert body["model"] == MODEL
    assert body["stream"] is True
    assert body["system"] == "You are terse."
    assert body["messages"] == [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"},
                                {"role": "user", "content": "Tell me"}]
    assert body["max_tokens"] == 256
    assert body["temperature"] == 1.0  # Anthropic caps temperature at 1
    assert body["top_p"] == 0.8
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "user-42"}
    assert "thinking" not in body
    assert "sk-ant-test-key" in (call.headers.get("x-api-key", "") + call.headers.get("authorization", ""))
    assert call.headers.get("anthropic-version")


async def test_optional_parameters_are_omitted_and_max_tokens_defaults(provider, fake):
    await collect(provider, chat())
    body = fake.message_calls[0].body
    assert body["max_tokens"] == 1024
    for key in ("system", "temperature", "top_p", "stop_sequences", "thinking", "metadata"):
        assert key not in body


async def test_max_tokens_from_settings_extra(server, fake):
    adapter = AnthropicProvider(make_settings(server.url, extra={"max_tokens": 333}))
    try:
        await collect(adapter, chat())
        await collect(adapter, chat(max_tokens=50))
    finally:
        await adapter.aclose()
    assert [c.body["max_tokens"] for c in fake.message_calls] == [333, 50]


async def test_system_turns_in_messages_are_folded_into_system(provider, fake):
    request = ChatRequest(model=MODEL, system="Base rules.",
                          messages=[ChatMessage("system", "Extra rules."), ChatMessage("user", "Hi")])
    await collect(provider, request)
    body = fake.message_calls[0].body
    assert body["system"] == "Base rules.\n\nExtra rules."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


async def test_thinking_streams_thinking_deltas_and_follows_anthropic_rules(provider, fake):
    fake.push(Step("ok", text="The answer is 4.", thinking="Two plus two makes four."))
    events = await collect(provider, chat("2+2?", thinking=True, thinking_budget=2000, max_tokens=1000,
                                          temperature=0.3, top_p=0.5))

    thoughts = [e for e in events if isinstance(e, ThinkingDelta)]
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert "".join(t.text for t in thoughts) == "Two plus two makes four."
    assert "".join(t.text for t in texts) == "The answer is 4."
    assert events.index(thoughts[-1]) < events.index(texts[0])  # the thinking block comes first
    body = fake.message_calls[0].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert body["max_tokens"] == 3024  # raised above the budget
    assert "temperature" not in body
    assert body["top_p"] == 0.95


async def test_thinking_budget_defaults_to_the_minimum(provider, fake):
    fake.push(Step("ok", thinking="hmm"))
    await collect(provider, chat(thinking=True))
    body = fake.message_calls[0].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] > 1024


async def test_complete_collects_the_stream(provider, fake):
    fake.push(Step("ok", text=TEXT, thinking="Let me see.", prompt_tokens=5, completion_tokens=12))
    completion = await provider.complete(chat(thinking=True))
    assert completion.text == TEXT
    assert completion.thinking == "Let me see."
    assert completion.usage == Usage(5, 12)
    assert completion.finish_reason == "stop"
    assert completion.provider == "claude"
    assert completion.model == MODEL


@pytest.mark.parametrize(("stop_reason", "expected"), [
    ("end_turn", "stop"),
    ("stop_sequence", "stop"),
    ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"),
    ("tool_use", "tool_calls"),
    ("refusal", "content_filter"),
    ("pause_turn", "stop"),
])
async def test_stop_reasons_are_normalized(provider, fake, stop_reason, expected):
    fake.push(AnthropicStep("ok", stop_reason=stop_reason))
    completion = await provider.complete(chat(stop=["END"]))
    assert completion.finish_reason == expected


async def test_usage_is_estimated_when_the_stream_has_none(provider, fake):
    fake.push(Step("ok", text="x" * 40, include_usage=False))
    events = await collect(provider, chat("y" * 80))
    [usage] = [e for e in events if isinstance(e, Usage)]
    assert usage.estimated is True
    assert usage.prompt_tokens == 20
    assert usage.completion_tokens == 10


async def test_breaking_off_a_stream_leaves_the_adapter_usable(provider, fake):
    fake.push(Step("ok", text=TEXT, chunk_delay=0.01), Step("ok", text="again"))
    agen = provider.stream(chat())
    async for event in agen:
        if isinstance(event, TextDelta):
            break
    await agen.aclose()
    completion = await provider.complete(chat())
    assert completion.text == "again"


# -- failures ---------------------------------------------------------------------------------


async def test_rate_limit_carries_retry_after_and_status(provider, fake):
    fake.push(Step("status", status=429, headers={"retry-after": "7"}))
    with pytest.raises(ProviderRateLimited) as info:
        await collect(provider, chat())
    err = info.value
    assert err.retry_after == 7.0
    assert err.upstream_status == 429
    assert err.status_code == 429
    assert err.retryable is True
    assert err.headers["Retry-After"] == "7"
    assert LEAK not in str(err) and LEAK not in repr(err.details)
    assert len(fake.message_calls) == 1  # the SDK did not retry on its own


@pytest.mark.parametrize(("status", "error_class", "retryable"), [
    (500, ProviderUnavailable, True),
    (529, ProviderUnavailable, True),
    (401, ProviderAuthError, False),
    (403, ProviderAuthError, False),
    (504, ProviderTimeout, True),
])
async def test_http_errors_map_to_provider_errors(provider, fake, status, error_class, retryable):
    fake.push(Step("status", status=status))
    with pytest.raises(error_class) as info:
        await collect(provider, chat())
    assert info.value.upstream_status == status
    assert info.value.retryable is retryable
    assert LEAK not in str(info.value)
    assert len(fake.message_calls) == 1


async def test_invalid_request_is_not_retryable(provider, fake):
    # Anthropic rejects empty message content with 400 invalid_request_error.
    with pytest.raises(ProviderError) as info:
        await collect(provider, chat(""))
    err = info.value
    assert type(err) is ProviderError
    assert err.upstream_status == 400
    assert err.retryable is False


async def test_malformed_stream_raises_after_the_first_delta(provider, fake):
    fake.push(Step("malformed", text=TEXT, after=1))
    seen = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(chat()):
            seen.append(event)
    assert type(info.value) is ProviderError
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["The"]
    assert not any(isinstance(e, Usage | Finish) for e in seen)


async def test_disconnect_mid_stream_raises_after_yielding_deltas(provider, fake):
    fake.push(Step("disconnect", text=TEXT, after=2))
    seen = []
    with pytest.raises(ProviderUnavailable):
        async for event in provider.stream(chat()):
            seen.append(event)
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "The quick"
    assert not any(isinstance(e, Usage | Finish) for e in seen)


async def test_stream_ending_without_message_stop_raises(provider, fake):
    fake.push(Step("truncate", text=TEXT, after=2))
    seen = []
    with pytest.raises(ProviderUnavailable):
        async for event in provider.stream(chat()):
            seen.append(event)
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "The quick"
    assert not any(isinstance(e, Usage | Finish) for e in seen)


@pytest.mark.parametrize(("status", "error_class"), [(529, ProviderUnavailable), (429, ProviderRateLimited),
                                                      (500, ProviderUnavailable)])
async def test_error_event_inside_the_stream(provider, fake, status, error_class):
    fake.push(Step("error_event", text=TEXT, after=3, status=status))
    seen = []
    with pytest.raises(error_class) as info:
        async for event in provider.stream(chat()):
            seen.append(event)
    assert info.value.upstream_status == status
    assert LEAK not in str(info.value)
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "The quick brown"


async def test_hang_times_out_quickly(server, fake):
    fake.push(Step("hang", seconds=2))
    adapter = AnthropicProvider(make_settings(server.url, timeout=0.5, connect_timeout=0.5))
    started = time.perf_counter()
    try:
        with pytest.raises(ProviderTimeout):
            await collect(adapter, chat())
    finally:
        await adapter.aclose()
    assert time.perf_counter() - started < 3


async def test_stall_mid_stream_times_out(server, fake):
    fake.push(Step("ok", text=TEXT, chunk_delay=1.0))
    adapter = AnthropicProvider(make_settings(server.url, timeout=0.4, connect_timeout=0.4))
    started = time.perf_counter()
    try:
        with pytest.raises(ProviderTimeout):
            await collect(adapter, chat())
    finally:
        await adapter.aclose()
    assert time.perf_counter() - started < 3


async def test_connection_refused_is_unavailable():
    adapter = AnthropicProvider(make_settings(closed_port_url()))
    try:
        with pytest.raises(ProviderUnavailable):
            await collect(adapter, chat())
        with pytest.raises(ProviderUnavailable):
            await adapter.list_models()
    finally:
        await adapter.aclose()


@pytest.mark.parametrize("broken_profile", [False, True])
async def test_missing_credentials_is_an_auth_error(server, fake, monkeypatch, tmp_path, broken_profile):
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE", "ANTHROPIC_IDENTITY_TOKEN",
                "ANTHROPIC_IDENTITY_TOKEN_FILE", "ANTHROPIC_FEDERATION_RULE_ID", "ANTHROPIC_ORGANIZATION_ID",
                "ANTHROPIC_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no profile on disk
    if broken_profile:  # a config dir without a profile makes the SDK's constructor raise
        monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path / "nowhere"))
    adapter = AnthropicProvider(make_settings(server.url, api_key=""))
    try:
        with pytest.raises(ProviderAuthError):
            await collect(adapter, chat())
        with pytest.raises(ProviderAuthError):
            await adapter.list_models()
        assert (await adapter.health()).status == "unhealthy"
    finally:
        await adapter.aclose()
    assert fake.calls == []


# -- models, health, lifecycle ------------------------------------------------------------------


async def test_list_models(provider, fake):
    assert await provider.list_models() == ["claude-sonnet-5", "claude-opus-5", "claude-haiku-4-5"]
    [call] = fake.calls
    assert (call.method, call.path) == ("GET", "/v1/models")


async def test_list_models_follows_pagination(provider, fake):
    fake.models = [f"claude-test-{i}" for i in range(150)]
    assert await provider.list_models() == fake.models
    assert len(fake.calls) == 2
    assert "after_id=claude-test-99" in fake.calls[1].query


async def test_list_models_auth_error(provider, fake):
    fake.push(Step("status", status=401))
    with pytest.raises(ProviderAuthError):
        await provider.list_models()


async def test_health_healthy_against_the_fake(provider, fake):
    result = await provider.health()
    assert result.status == "healthy"
    assert result.latency_ms >= 0


async def test_health_unhealthy_against_a_closed_port():
    adapter = AnthropicProvider(make_settings(closed_port_url()))
    try:
        result = await adapter.health()
    finally:
        await adapter.aclose()
    assert result.status == "unhealthy"
    assert result.detail == "ProviderUnavailable"


async def test_no_embeddings(provider):
    assert provider.supports_embeddings is False
    with pytest.raises(ProviderError):
        await provider.embed(["hello"])


async def test_registry_and_settings_wiring(server):
    assert adapter_class("anthropic") is AnthropicProvider
    adapter = AnthropicProvider(make_settings(server.url, timeout=12.0, connect_timeout=3.0))
    try:
        assert adapter.kind == "anthropic"
        assert adapter._client.max_retries == 0
        assert adapter._client.timeout.read == 12.0
        assert adapter._client.timeout.connect == 3.0
        assert str(adapter._client.base_url).rstrip("/") == server.url
    finally:
        await adapter.aclose()
    assert adapter._client.is_closed()
