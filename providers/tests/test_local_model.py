"""The ``local`` adapter end to end with the real llama.cpp model (gemma-3-270m Q4_K_M).

Generation is short and greedy (temperature 0, except where the defaults are the subject), so the
file runs in seconds on 2 cores.
The bundled model is prompted to answer briefly, so tests that need a generation to go on for a
while ask for ``LONG``, whose answer is over a hundred tokens (checked below).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from providers.adapters import local
from providers.adapters.base import ChatMessage, ChatRequest, Finish, ProviderSettings, TextDelta, Usage
from providers.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from providers.tests.requests import chat_request

pytestmark = pytest.mark.slow

PROMPT = "Write a short story about a cat."
LONG = "Write a googol in digits."  # a 1 and a hundred zeros, one token each: over 100 tokens
IDLE_WITHIN = 2.0  # seconds for the worker to be free after a consumer goes away


def settings(**kwargs) -> ProviderSettings:
    extra = kwargs.pop("extra", {})
    return ProviderSettings(name="local", kind="local", default_model=local.LOCAL_MODEL_ID, extra=extra, **kwargs)


def request(text: str = PROMPT, *, max_tokens: int = 12, **kwargs) -> ChatRequest:
    return chat_request(model=local.LOCAL_MODEL_ID, messages=[ChatMessage("user", text)], max_tokens=max_tokens,
                        temperature=0, **kwargs)


@pytest.fixture(scope="module")
def model():
    started = time.perf_counter()
    loaded = local.get_model(settings())
    print(f"\nlocal model ready in {time.perf_counter() - started:.2f}s (llama load {loaded.load_seconds:.2f}s)")
    return loaded


@pytest.fixture
def provider(model):
    return local.LocalProvider(settings())


async def collect(stream):
    return [event async for event in stream]


async def wait_idle(limit: float = IDLE_WITHIN) -> float:
    started = time.perf_counter()
    while local.generation_in_progress() or local.pending_generations():
        if time.perf_counter() - started > limit:
            raise AssertionError(f"generation still running {limit}s after the consumer left")
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_health_and_models_do_not_load_the_model():
    before = local.loaded_model()
    health = await local.LocalProvider(settings()).health()
    assert health.status == "healthy"
    assert local.loaded_model() is before
    missing = await local.LocalProvider(settings(extra={"model_path": "/nonexistent/model.gguf"})).health()
    assert missing.status == "unhealthy"
    assert await local.LocalProvider(settings()).list_models() == ["gemma-3-270m"]


async def test_streams_deltas_then_exact_usage_then_finish(provider, model):
    events = await collect(provider.stream(request(max_tokens=16, system="You are a helpful assistant.")))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1
    assert text_of(events).strip()
    assert [type(e) for e in events[-2:]] == [Usage, Finish]
    assert sum(isinstance(e, Usage) for e in events) == 1
    usage, finish = events[-2], events[-1]
    assert usage.estimated is False
    # The bundled base model has no chat template: the prompt is a plain transcript with the
    # system prompt first, counted with the model's own tokenizer (BOS included).
    prompt = local._transcript(request(max_tokens=16, system="You are a helpful assistant."))
    assert prompt.startswith("You are a helpful assistant.\n") and prompt.endswith("Assistant:")
    assert usage.prompt_tokens == len(model.llama.tokenize(prompt.encode(), add_bos=True, special=True))
    assert 0 < usage.completion_tokens <= 16
    assert len(deltas) <= usage.completion_tokens
    if finish.reason == "length":
        assert usage.completion_tokens == 16
    assert finish.reason in ("stop", "length")


async def test_max_tokens_gives_length(provider):
    # Also the premise of the tests below that stop a long generation: LONG does not end early.
    events = await collect(provider.stream(request(LONG, max_tokens=100)))
    usage, finish = events[-2], events[-1]
    assert finish == Finish("length")
    assert usage.completion_tokens == 100
    assert usage.prompt_tokens > 0


async def test_stop_sequence_ends_with_stop(provider):
    first = text_of(await collect(provider.stream(request(max_tokens=16))))
    assert len(first) > 8
    stop = first[5:8]
    expected = first[: first.index(stop)]
    events = await collect(provider.stream(request(max_tokens=16, stop=[stop])))
    assert text_of(events) == expected
    assert events[-1] == Finish("stop")


async def test_complete_collects_the_stream(provider):
    completion = await provider.complete(request(max_tokens=6))
    assert completion.text.strip()
    assert completion.usage.completion_tokens == 6
    assert completion.finish_reason == "length"
    assert completion.provider == "local"


async def test_closing_the_stream_stops_generation_promptly(provider):
    started = time.perf_counter()
    async with contextlib.aclosing(provider.stream(request(LONG, max_tokens=400))) as stream:
        async for event in stream:
            assert isinstance(event, TextDelta)
            break
    waited = await wait_idle()
    # 400 tokens take many seconds; stopping must take about one token's time.
    assert time.perf_counter() - started < 5
    assert waited < IDLE_WITHIN
    events = await collect(provider.stream(request(max_tokens=4)))
    assert events[-1] == Finish("length")


async def test_breaking_out_without_aclose_also_stops(provider):
    async for _event in provider.stream(request(LONG, max_tokens=400)):
        break  # the dropped generator is finalised by the event loop
    await wait_idle()
    assert (await provider.complete(request(max_tokens=3))).usage.completion_tokens == 3


async def test_cancelling_the_consuming_task_stops_generation(provider):
    got_delta = asyncio.Event()

    async def consume():
        async for event in provider.stream(request(LONG, max_tokens=400)):
            if isinstance(event, TextDelta):
                got_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_delta.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle()
    assert (await provider.complete(request(max_tokens=3))).finish_reason == "length"


async def test_concurrent_requests_are_queued_in_order_and_both_complete(provider):
    stamps: dict[str, list[float]] = {"a": [], "b": []}

    async def run(name):
        events = []
        async for event in provider.stream(request(max_tokens=6)):
            stamps[name].append(time.perf_counter())
            events.append(event)
        return events

    first, second = await asyncio.gather(run("a"), run("b"))
    for events in (first, second):
        assert events[-1] == Finish("length")
        assert events[-2].completion_tokens == 6
        assert text_of(events)
    # One generation at a time, first come first served: all of a's events precede b's.
    assert max(stamps["a"]) < min(stamps["b"])
    assert text_of(first) == text_of(second)  # greedy: same prompt, same reply


async def test_queue_wait_counts_against_the_timeout(provider, monkeypatch):
    # The worker is held busy until released (a generation, however long, could end before the
    # impatient request gives up), and every job that gets to run is recorded.
    ran = []
    get_model = local.get_model
    monkeypatch.setattr(local, "get_model", lambda s: ran.append(s) or get_model(s))
    release = threading.Event()
    busy = local._generation_executor().submit(release.wait, 30)
    try:
        impatient = local.LocalProvider(settings(timeout=0.3))
        started = time.perf_counter()
        with pytest.raises(ProviderTimeout):
            await collect(impatient.stream(request(max_tokens=4)))
        assert time.perf_counter() - started < 1.5
        assert local.pending_generations() == 1  # still queued behind the busy worker
    finally:
        release.set()
    busy.result(timeout=5)
    await wait_idle()
    assert ran == []  # the timed-out job was skipped, not run


async def test_capital_of_france_with_the_default_sampling(provider, model):
    # No sampling parameters: the adapter's defaults for a base model apply, as in a chat. They
    # sample, so the answer must hold for every seed tried, not for a lucky one.
    chat = ChatRequest(model=local.LOCAL_MODEL_ID, messages=[ChatMessage("user", "What is the capital of France?")])
    replies = []
    for seed in range(5):
        model.llama.set_seed(seed)
        events = await collect(provider.stream(chat))
        assert events[-1] == Finish("stop")  # it stopped at the next turn, not at a length limit
        replies.append(text_of(events))
    assert all("Paris" in reply for reply in replies), replies
    for reply in replies:
        assert "\n" not in reply and len(reply) < 80
        assert "User:" not in reply and "Assistant:" not in reply
        for question, answer in local.TRANSCRIPT_EXAMPLES:  # the few-shot block stays in the prompt
            assert question not in reply and answer not in reply


async def test_the_system_prompt_still_applies(provider):
    chat = chat_request(model=local.LOCAL_MODEL_ID, messages=[ChatMessage("user", "What is your name?")],
                        system="You are a helpful assistant named Max.", temperature=0)
    assert "Max" in (await provider.complete(chat)).text


async def test_prompt_longer_than_the_context_is_a_client_error(provider):
    with pytest.raises(ProviderError) as info:
        await collect(provider.stream(request("hello " * 5000, max_tokens=4)))
    assert info.value.code == "CONTEXT_LENGTH_EXCEEDED"
    assert info.value.status_code == 400
    assert info.value.retryable is False
    await wait_idle()


async def test_missing_model_file_is_unavailable():
    broken = local.LocalProvider(settings(extra={"model_path": "/nonexistent/model.gguf"}))
    with pytest.raises(ProviderUnavailable):
        await collect(broken.stream(request(max_tokens=4)))


def test_model_is_loaded_once_under_concurrent_first_use(model):
    # A context size not used elsewhere is a model not loaded yet in this process.
    fresh = settings(extra={"n_ctx": 512})
    results, errors = [], []
    barrier = threading.Barrier(4)

    def load():
        try:
            barrier.wait()
            results.append(local.get_model(fresh))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({id(r) for r in results}) == 1
    assert results[0] is not model
    assert results[0].llama.n_ctx() == 512


def test_count_tokens_uses_the_model_tokenizer(provider, model):
    text = "Hello there, how are you today?"
    expected = len(model.llama.tokenize(text.encode(), add_bos=False, special=False))
    assert provider.count_tokens(text) == expected == local.count_tokens(text)
    assert expected > 0
    assert local.count_tokens("") == 0


def test_weights_stay_in_plain_cpu_buffers_unless_repacking_is_asked_for(model):
    # Repacking into llama.cpp's extra buffer types (AMX on Sapphire Rapids) crashed the first
    # decode of this model: every generation test above is the regression test on such a CPU.
    assert model.llama.model_params.use_extra_bufts is False
    path = str(local.resolve_model_path())
    repacking = local._llama_class()(model_path=path, vocab_only=True, repack_weights=True, verbose=False)
    try:
        assert repacking.model_params.use_extra_bufts is True
    finally:
        repacking.close()
    assert local._model_options(settings(extra={"repack_weights": True}))["repack_weights"] is True
