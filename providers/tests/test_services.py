"""The provider service layer through the real OpenAI SDK against fake upstreams: routing,
parameter checks, trimming, retries, fallback, the circuit breaker, cancellation and usage."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from chatplatform.api.exceptions import AppError
from providers import services
from providers.adapters.base import ChatMessage
from providers.errors import ProviderError, ProviderNotConfigured, ProviderRateLimited
from providers.models import Model, UsageRecord
from providers.reliability import breaker
from providers.tests.fakeserver import Step
from providers.tests.requests import chat_call

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = "Paris is the capital of France."


def call(**kwargs) -> services.ChatCall:
    values = {"messages": [ChatMessage("user", "What is the capital of France?")]}
    values.update(kwargs)
    return chat_call(**values)


async def usage_rows() -> list[UsageRecord]:
    return await sync_to_async(lambda: list(UsageRecord.objects.order_by("created_at")))()


async def test_default_route_completes_and_records_usage_and_cost(openai_configured):
    openai_configured.push(Step(text=TEXT, prompt_tokens=1000, completion_tokens=2000))
    result = await services.chat_complete(call(request_id="req_x"))
    assert result.text == TEXT
    assert (result.provider, result.model) == ("openai", "gpt-4o-mini")
    assert result.usage.total_tokens == 3000 and not result.usage.estimated
    # gpt-4o-mini: $0.00015 / 1K input, $0.0006 / 1K output.
    assert result.cost == Decimal("0.00015") + Decimal("0.0012")
    [row] = await usage_rows()
    assert (row.provider, row.model, row.status, row.request_id) == ("openai", "gpt-4o-mini", "success", "req_x")
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (1000, 2000, 3000)
    assert row.cost == result.cost and row.streamed


async def test_catalogue_id_is_sent_as_the_upstream_name(openai_configured):
    openai_configured.push(Step(text=TEXT))
    await services.chat_complete(call(model="gpt-4", system="Be brief.", temperature=0.3, max_tokens=50))
    body = openai_configured.calls[0].body
    assert body["model"] == "gpt-4"
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["temperature"] == 0.3 and body["max_tokens"] == 50


async def test_retry_after_429_then_success(openai_configured):
    openai_configured.push(Step("status", status=429, headers={"retry-after": "0"}), Step(text=TEXT))
    result = await services.chat_complete(call())
    assert result.text == TEXT
    assert len(openai_configured.calls) == 2


async def test_retries_exhausted_fall_back_to_next_provider(with_backup, openai_configured):
    openai_configured.push(*[Step("status", status=500)] * 3)
    with_backup.push(Step(text="From the backup."))
    result = await services.chat_complete(call())
    assert result.text == "From the backup."
    assert (result.provider, result.model) == ("backup", "gpt-4o")
    assert len(openai_configured.calls) == 3  # first try + PROVIDER_MAX_RETRIES (2)
    assert with_backup.calls[0].headers["authorization"] == "Bearer sk-backup-9999"


async def test_long_retry_after_is_not_slept_and_passes_through(openai_configured):
    openai_configured.push(Step("status", status=429, headers={"retry-after": "120"}))
    started = time.perf_counter()
    with pytest.raises(ProviderRateLimited) as caught:
        await services.chat_complete(call(fallback=False))
    assert time.perf_counter() - started < 2
    assert caught.value.status_code == 429
    assert caught.value.headers["Retry-After"] == "120"
    assert len(openai_configured.calls) == 1
    [row] = await usage_rows()
    assert (row.status, row.error_code) == ("error", "RATE_LIMITED")


async def test_no_retry_after_the_first_token(with_backup, openai_configured):
    openai_configured.push(Step("disconnect", text="one two three four five", after=2))
    stream = await services.achat_stream(call())
    received = []
    with pytest.raises(ProviderError):
        async for event in stream:
            received.append(event.text)
    assert "".join(received) == "one two"
    assert stream.result.text == "one two" and stream.result.status == "error"
    assert len(openai_configured.calls) == 1 and not with_backup.calls
    [row] = await usage_rows()
    assert row.status == "error" and row.completion_tokens > 0


async def test_non_retryable_refusal_is_not_retried_or_fallen_back(with_backup, openai_configured):
    openai_configured.push(Step("status", status=400))
    with pytest.raises(ProviderError) as caught:
        await services.chat_complete(call())
    assert caught.value.status_code == 502
    assert len(openai_configured.calls) == 1 and not with_backup.calls


async def test_circuit_breaker_skips_a_failing_provider(with_backup, openai_configured, settings):
    settings.PROVIDER_BREAKER_THRESHOLD = 3
    settings.PROVIDER_BREAKER_COOLDOWN_SECONDS = 0.5
    openai_configured.push(*[Step("status", status=503)] * 3)
    with_backup.push(Step(text="backup 1"), Step(text="backup 2"), Step(text="backup 3"))
    assert (await services.chat_complete(call())).provider == "backup"
    assert breaker.status("openai") == "open"
    calls_before = len(openai_configured.calls)
    assert (await services.chat_complete(call())).provider == "backup"
    assert len(openai_configured.calls) == calls_before  # skipped while open
    time.sleep(0.6)
    openai_configured.push(Step(text="recovered"))
    result = await services.chat_complete(call())
    assert (result.provider, result.text) == ("openai", "recovered")  # half-open trial succeeded
    assert breaker.status("openai") == "closed"




async def test_breaking_out_of_the_stream_records_cancelled(openai_configured):
    openai_configured.push(Step(text="a b c d e f g h", chunk_delay=0.05))
    stream = await services.achat_stream(call())
    events = stream.__aiter__()
    first = await events.__anext__()
    assert first.text == "a"
    await events.aclose()
    assert stream.result.status == "cancelled"
    assert stream.result.text == "a"
    [row] = await usage_rows()
    assert row.status == "cancelled"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"model": "claude-sonnet-4.5", "temperature": 1.5}, "temperature"),
        ({"model": "gpt-4", "max_tokens": 100000}, "max_tokens"),
        ({"model": "no-such-model"}, "model"),
        ({"provider": "nope"}, "provider"),
    ],
)
async def test_bad_parameters_are_refused_naming_the_field(openai_configured, kwargs, field):
    with pytest.raises(AppError) as caught:
        await services.achat_stream(call(**kwargs))
    assert field in caught.value.details
    assert not openai_configured.calls


async def test_a_named_model_whose_provider_is_not_configured_is_refused(openai_configured):
    with pytest.raises(ProviderNotConfigured) as caught:
        await services.achat_stream(call(model="claude-sonnet-4.5"))
    assert caught.value.status_code == 400 and "model" in caught.value.details
    assert not openai_configured.calls


async def test_a_configured_chain_answers_for_an_unconfigured_model(openai_configured, settings):
    settings.MODEL_FALLBACKS = {"claude-sonnet-4.5": ["gpt-4o"]}
    openai_configured.push(Step(text=TEXT))
    result = await services.chat_complete(call(model="claude-sonnet-4.5"))
    assert (result.provider, result.model) == ("openai", "gpt-4o")  # the answer names the model that answered
    assert openai_configured.calls[0].body["model"] == "gpt-4o"


async def test_history_is_trimmed_oldest_first_keeping_system(openai_configured):
    await sync_to_async(Model.objects.create)(
        id="tiny", provider="openai", upstream_name="tiny-model", name="Tiny", context_length=200,
        max_output_tokens=50)
    openai_configured.push(Step(text=TEXT))
    history = [ChatMessage("user" if i % 2 == 0 else "assistant", f"message {i} " + "x" * 160) for i in range(6)]
    history.append(ChatMessage("user", "latest question"))
    await services.chat_complete(call(model="tiny", messages=history, system="System rules.", max_tokens=50))
    sent = openai_configured.calls[0].body["messages"]
    assert sent[0] == {"role": "system", "content": "System rules."}
    assert sent[-1]["content"] == "latest question"
    assert len(sent) < len(history) + 1
    assert all("message 0 " not in m["content"] for m in sent)


async def test_message_too_long_for_context_is_422(openai_configured):
    await sync_to_async(Model.objects.create)(
        id="tiny2", provider="openai", upstream_name="tiny-model", name="Tiny", context_length=100,
        max_output_tokens=50)
    with pytest.raises(AppError) as caught:
        await services.chat_complete(call(model="tiny2", messages=[ChatMessage("user", "y" * 2000)], max_tokens=50))
    assert caught.value.status_code == 422


async def test_default_reply_budget_leaves_room_for_the_prompt(openai_configured):
    # gpt-4's output limit equals its context (8192): unasked, the reply gets a quarter of it.
    openai_configured.push(Step(text=TEXT))
    result = await services.chat_complete(call(model="gpt-4"))
    assert result.text == TEXT
    assert openai_configured.calls[0].body["max_tokens"] == 2048
