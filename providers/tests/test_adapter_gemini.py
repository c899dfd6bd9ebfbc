"""The gemini adapter through the real ``google-genai`` SDK against a fake Gemini API server."""

from __future__ import annotations

import socket
import time

import pytest

from providers.adapters.base import ChatMessage, ChatRequest, Finish, ProviderSettings, TextDelta, ThinkingDelta, Usage
from providers.adapters.gemini import GeminiProvider
from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from providers.tests.fake_gemini import FakeGemini, GeminiStep, fake_embedding
from providers.tests.fakeserver import Step, _free_port, serving, split_text
from providers.tests.requests import chat_request

TEXT = "The quick brown fox jumps over the lazy dog."
THOUGHT = "The user greets me, so I greet back."
API_KEY = "AIza-test-key-1234"
STREAM_PATH = "/v1/models/gemini-2.5-flash:streamGenerateContent"


@pytest.fixture(scope="module")
def fake():
    with serving(FakeGemini()) as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _reset(fake):
    fake.reset()


def make_provider(fake: FakeGemini, **overrides) -> GeminiProvider:
    values = {"name": "gem", "kind": "gemini", "api_key": API_KEY, "base_url": fake.url,
              "timeout": 5.0, "connect_timeout": 2.0}
    values.update(overrides)
    return GeminiProvider(ProviderSettings(**values))


@pytest.fixture
async def provider(fake):
    adapter = make_provider(fake)
    yield adapter
    await adapter.aclose()


def req(**kwargs) -> ChatRequest:
    values = {"model": "gemini-2.5-flash", "messages": [ChatMessage("user", "Hi there")]}
    values.update(kwargs)
    return chat_request(**values)


async def collect(provider: GeminiProvider, request: ChatRequest) -> list:
    return [event async for event in provider.stream(request)]


def snake(mapping: dict, camel: str):
    """A field the SDK may send in camelCase or snake_case (the API accepts both)."""
    if camel in mapping:
        return mapping[camel]
    return mapping.get("".join("_" + c.lower() if c.isupper() else c for c in camel))


# -- streaming ---------------------------------------------------------------------------------

async def test_stream_yields_deltas_usage_and_finish(fake, provider):
    fake.push(Step(text=TEXT, prompt_tokens=21, completion_tokens=9))
    events = await collect(provider, req())
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == len(split_text(TEXT)) > 1
    assert "".join(d.text for d in deltas) == TEXT
    # The fake sends running usage on every chunk; only the last one's numbers count, once.
    assert [e for e in events if isinstance(e, Usage)] == [Usage(21, 9)]
    assert events[-2:] == [Usage(21, 9), Finish("stop")]
    call = fake.calls[0]
    assert call.method == "POST"
    assert call.path == STREAM_PATH
    assert call.query == "alt=sse"


async def test_api_key_header_and_no_real_google_endpoint(fake, provider):
    fake.push(Step(text=TEXT))
    await collect(provider, req())
    assert len(fake.calls) == 1  # the request reached the fake (not generativelanguage.googleapis.com)
    headers = fake.calls[0].headers
    assert headers["x-goog-api-key"] == API_KEY
    assert headers["host"] == fake.url.removeprefix("http://")
    assert API_KEY not in fake.calls[0].query  # the key is a header, never in the URL
    # HttpOptions.timeout is in milliseconds; the SDK forwards it (rounded up to seconds).
    assert headers["x-server-timeout"] == "5"


async def test_roles_system_instruction_and_generation_config_reach_the_wire(fake, provider):
    fake.push(Step(text=TEXT))
    await collect(provider, req(
        system="You are terse.",
        messages=[ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello."), ChatMessage("user", "Bye")],
        temperature=0.25, top_p=0.8, max_tokens=123, stop=["END", "STOP"],
    ))
    body = fake.calls[0].body
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello."}]},
        {"role": "user", "parts": [{"text": "Bye"}]},
    ]
    assert body["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    gen = body["generationConfig"]
    assert gen["temperature"] == 0.25
    assert gen["topP"] == 0.8
    assert gen["maxOutputTokens"] == 123
    assert gen["stopSequences"] == ["END", "STOP"]
    assert "thinkingConfig" not in gen and "thinking_config" not in gen
    assert "tools" not in body


async def test_unset_parameters_are_not_sent(fake, provider):
    fake.push(Step(text=TEXT))
    await collect(provider, req())
    body = fake.calls[0].body
    assert "systemInstruction" not in body
    gen = body.get("generationConfig", {})
    for key in ("temperature", "topP", "maxOutputTokens", "stopSequences"):
        assert key not in gen


async def test_thinking_parts_become_thinking_deltas_and_count_as_completion(fake, provider):
    fake.push(Step(text=TEXT, thinking=THOUGHT, prompt_tokens=10, completion_tokens=9))
    events = await collect(provider, req(thinking=True))
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    text = [e for e in events if isinstance(e, TextDelta)]
    assert "".join(e.text for e in thinking) == THOUGHT
    assert "".join(e.text for e in text) == TEXT
    assert events.index(thinking[-1]) < events.index(text[0])
    thoughts_tokens = len(split_text(THOUGHT))
    assert [e for e in events if isinstance(e, Usage)] == [Usage(10, 9 + thoughts_tokens)]
    thinking_config = snake(fake.calls[0].body["generationConfig"], "thinkingConfig")
    assert snake(thinking_config, "includeThoughts") is True
    assert snake(thinking_config, "thinkingBudget") == -1  # dynamic


async def test_explicit_thinking_budget_reaches_the_wire(fake, provider):
    fake.push(Step(text=TEXT, thinking=THOUGHT))
    await collect(provider, req(thinking=True, thinking_budget=2048))
    thinking_config = snake(fake.calls[0].body["generationConfig"], "thinkingConfig")
    assert snake(thinking_config, "thinkingBudget") == 2048


async def test_web_grounding_sends_google_search_tool(fake, provider):
    fake.push(Step(text=TEXT))
    await collect(provider, req(web_grounding=True))
    assert fake.calls[0].body["tools"] == [{"googleSearch": {}}]


@pytest.mark.parametrize(("upstream", "expected"), [
    ("STOP", "stop"),
    ("MAX_TOKENS", "length"),
    ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"),
    ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"),
    ("OTHER", "stop"),
])
async def test_finish_reasons_map(fake, provider, upstream, expected):
    fake.push(GeminiStep(text=TEXT, finish_reason=upstream))
    events = await collect(provider, req())
    assert events[-1] == Finish(expected)


async def test_blocked_prompt_finishes_with_content_filter(fake, provider):
    fake.push(GeminiStep(block_reason="SAFETY", prompt_tokens=8))
    events = await collect(provider, req())
    assert not [e for e in events if isinstance(e, TextDelta)]
    assert events[-2:] == [Usage(8, 0), Finish("content_filter")]


async def test_missing_usage_is_estimated(fake, provider):
    fake.push(Step(text="abcdefgh" * 3, include_usage=False))
    events = await collect(provider, req(system="1234", messages=[ChatMessage("user", "12345678")]))
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage == [Usage(3, 6, estimated=True)]


async def test_slow_chunks_arrive_incrementally(fake, provider):
    fake.push(Step(text=TEXT, chunk_delay=0.05))
    started = time.perf_counter()
    first_at = None
    async for event in provider.stream(req()):
        if isinstance(event, TextDelta) and first_at is None:
            first_at = time.perf_counter() - started
    total = time.perf_counter() - started
    assert first_at is not None
    assert total - first_at >= 0.05 * (len(split_text(TEXT)) - 2)


# -- complete (generateContent) ----------------------------------------------------------------

async def test_complete_uses_generate_content(fake, provider):
    fake.push(Step(text=TEXT, thinking=THOUGHT, prompt_tokens=5, completion_tokens=3))
    completion = await provider.complete(req(thinking=True, system="Be kind."))
    assert completion.text == TEXT
    assert completion.thinking == THOUGHT
    assert completion.usage == Usage(5, 3 + len(split_text(THOUGHT)))
    assert completion.finish_reason == "stop"
    assert completion.provider == "gem"
    assert completion.model == "gemini-2.5-flash"
    call = fake.calls[0]
    assert call.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert call.body["systemInstruction"]["parts"] == [{"text": "Be kind."}]


async def test_complete_maps_length(fake, provider):
    fake.push(GeminiStep(text=TEXT, finish_reason="MAX_TOKENS"))
    completion = await provider.complete(req(max_tokens=5))
    assert completion.finish_reason == "length"
    assert fake.calls[0].body["generationConfig"]["maxOutputTokens"] == 5


async def test_complete_maps_errors(fake, provider):
    fake.push(Step("status", status=503))
    with pytest.raises(ProviderUnavailable) as info:
        await provider.complete(req())
    assert info.value.upstream_status == 503


async def test_complete_malformed_body(fake, provider):
    fake.push(Step("malformed"))
    with pytest.raises(ProviderError) as info:
        await provider.complete(req())
    assert type(info.value) is ProviderError
    assert "not json" not in str(info.value)


# -- errors ------------------------------------------------------------------------------------

async def test_rate_limit_carries_retry_after_header(fake, provider):
    fake.push(Step("status", status=429, headers={"retry-after": "7"}))
    with pytest.raises(ProviderRateLimited) as info:
        await collect(provider, req())
    assert info.value.retry_after == 7.0
    assert info.value.upstream_status == 429
    assert info.value.status_code == 429
    assert info.value.headers["Retry-After"] == "7"
    assert len(fake.calls) == 1  # the SDK did not retry on its own


async def test_rate_limit_retry_info_detail_when_no_header(fake, provider):
    fake.retry_delay = "12s"
    fake.push(Step("status", status=429))
    with pytest.raises(ProviderRateLimited) as info:
        await collect(provider, req())
    assert info.value.retry_after == 12.0


@pytest.mark.parametrize(("status", "error_class"), [
    (500, ProviderUnavailable),
    (503, ProviderUnavailable),
    (401, ProviderAuthError),
    (403, ProviderAuthError),
    (504, ProviderTimeout),
])
async def test_status_errors_map(fake, provider, status, error_class):
    fake.push(Step("status", status=status))
    with pytest.raises(error_class) as info:
        await collect(provider, req())
    assert info.value.upstream_status == status
    assert len(fake.calls) == 1


async def test_bad_request_is_not_retryable_and_hides_upstream_text(fake, provider):
    fake.push(Step("status", status=400))
    with pytest.raises(ProviderError) as info:
        await collect(provider, req())
    assert type(info.value) is ProviderError
    assert info.value.retryable is False
    assert info.value.upstream_status == 400
    assert "sk-should-not-leak" not in str(info.value)
    assert "sk-should-not-leak" not in repr(info.value.details)


async def test_error_event_inside_the_stream(fake, provider):
    fake.push(Step("stream_error", text=TEXT, status=429, after=2))
    received = []
    with pytest.raises(ProviderRateLimited) as info:
        async for event in provider.stream(req()):
            received.append(event)
    assert "".join(e.text for e in received) == "".join(split_text(TEXT)[:2])
    assert info.value.upstream_status == 429


async def test_malformed_stream_chunk(fake, provider):
    fake.push(Step("malformed", text=TEXT, after=2))
    received = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(req()):
            received.append(event)
    assert type(info.value) is ProviderError
    assert "not json" not in str(info.value)
    assert len([e for e in received if isinstance(e, TextDelta)]) == 2


async def test_disconnect_mid_stream_raises_after_first_deltas(fake, provider):
    fake.push(Step("disconnect", text=TEXT, after=2))
    received = []
    with pytest.raises(ProviderUnavailable):
        async for event in provider.stream(req()):
            received.append(event)
    assert [e.text for e in received] == split_text(TEXT)[:2]
    assert not [e for e in received if isinstance(e, (Usage, Finish))]
    assert len(fake.calls) == 1  # no silent reconnect (automatic continuation is off)


async def test_hang_times_out_quickly(fake):
    adapter = make_provider(fake, timeout=0.5)
    fake.push(Step("hang", seconds=3))
    started = time.perf_counter()
    try:
        with pytest.raises(ProviderTimeout):
            await collect(adapter, req())
    finally:
        await adapter.aclose()
    assert time.perf_counter() - started < 2.0


async def test_hang_times_out_for_complete(fake):
    adapter = make_provider(fake, timeout=0.5)
    fake.push(Step("hang", seconds=3))
    started = time.perf_counter()
    try:
        with pytest.raises(ProviderTimeout):
            await adapter.complete(req())
    finally:
        await adapter.aclose()
    assert time.perf_counter() - started < 2.0


async def test_stall_between_chunks_times_out(fake):
    adapter = make_provider(fake, timeout=0.5)
    fake.push(Step(text=TEXT, chunk_delay=1.5))
    received = []
    try:
        with pytest.raises(ProviderTimeout):
            async for event in adapter.stream(req()):
                received.append(event)
    finally:
        await adapter.aclose()
    assert [e.text for e in received] == split_text(TEXT)[:1]


@pytest.fixture
def unaccepting_port():
    """A port whose listen backlog is full: new connections hang in the handshake."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for sock in [*fillers, server]:
        sock.close()


async def test_connect_timeout_is_separate_from_read_timeout(unaccepting_port):
    # The SDK only knows one per-request timeout (5 s here); connecting must give up after 0.3 s.
    adapter = GeminiProvider(ProviderSettings(name="gem", kind="gemini", api_key=API_KEY, timeout=5.0,
                                              connect_timeout=0.3, base_url=f"http://127.0.0.1:{unaccepting_port}"))
    started = time.perf_counter()
    try:
        with pytest.raises(ProviderTimeout):
            await collect(adapter, req())
    finally:
        await adapter.aclose()
    assert time.perf_counter() - started < 2.0


async def test_connection_refused_is_unavailable():
    adapter = GeminiProvider(ProviderSettings(name="gem", kind="gemini", api_key=API_KEY,
                                              base_url=f"http://127.0.0.1:{_free_port()}", timeout=2.0))
    try:
        with pytest.raises(ProviderUnavailable):
            await collect(adapter, req())
    finally:
        await adapter.aclose()


async def test_missing_api_key_is_an_auth_error_without_network(fake):
    adapter = make_provider(fake, api_key="")
    try:
        with pytest.raises(ProviderAuthError):
            await collect(adapter, req())
        health = await adapter.health()
    finally:
        await adapter.aclose()
    assert health.status == "unhealthy"
    assert fake.calls == []


async def test_api_version_override(fake):
    adapter = make_provider(fake, extra={"api_version": "v1beta"})
    fake.push(Step(text=TEXT))
    try:
        await collect(adapter, req())
    finally:
        await adapter.aclose()
    assert fake.calls[0].path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


# -- embeddings, models, health ----------------------------------------------------------------

async def test_embed_default_model(fake, provider):
    texts = ["first text", "second text", "first text"]
    vectors = await provider.embed(texts)
    assert vectors == [fake_embedding(t) for t in texts]
    assert vectors[0] != vectors[1]
    call = fake.calls[0]
    assert call.path == "/v1/models/text-embedding-004:batchEmbedContents"
    assert [r["content"]["parts"][0]["text"] for r in call.body["requests"]] == texts
    assert {r["model"] for r in call.body["requests"]} == {"models/text-embedding-004"}


async def test_embed_other_model_and_errors(fake, provider):
    await provider.embed(["x"], model="gemini-embedding-001")
    assert fake.calls[0].path == "/v1/models/gemini-embedding-001:batchEmbedContents"
    fake.push(Step("status", status=429, headers={"retry-after": "2"}))
    with pytest.raises(ProviderRateLimited) as info:
        await provider.embed(["x"])
    assert info.value.retry_after == 2.0


async def test_embed_empty_list_makes_no_call(fake, provider):
    assert await provider.embed([]) == []
    assert fake.calls == []


async def test_list_models_strips_prefix_and_follows_pages(fake, provider):
    fake.max_page_size = 2
    models = await provider.list_models()
    assert models == ["gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-004"]
    assert [c.path for c in fake.calls] == ["/v1/models", "/v1/models"]
    assert "pageToken=2" in fake.calls[1].query
    assert fake.calls[0].headers["x-goog-api-key"] == API_KEY


async def test_list_models_error(fake, provider):
    fake.push(Step("status", status=401))
    with pytest.raises(ProviderAuthError):
        await provider.list_models()


async def test_health_healthy_against_fake(fake, provider):
    result = await provider.health()
    assert result.status == "healthy"
    assert fake.calls[0].path == "/v1/models"


async def test_health_unhealthy_against_closed_port():
    adapter = GeminiProvider(ProviderSettings(name="gem", kind="gemini", api_key=API_KEY,
                                              base_url=f"http://127.0.0.1:{_free_port()}", timeout=2.0))
    try:
        result = await adapter.health()
    finally:
        await adapter.aclose()
    assert result.status == "unhealthy"
    assert result.detail == "ProviderUnavailable"


async def test_unhealthy_on_auth_error(fake, provider):
    fake.push(Step("status", status=403))
    result = await provider.health()
    assert result.status == "unhealthy"
    assert result.detail == "ProviderAuthError"


async def test_aclose_closes_the_connection_pool(fake):
    adapter = make_provider(fake)
    fake.push(Step(text=TEXT), Step(text=TEXT))
    await collect(adapter, req())
    await collect(adapter, req())
    assert len(fake.calls) == 2
    await adapter.aclose()
    assert adapter._http.is_closed
