"""Token limits and budgets, checked in the turn: every surface gets them (here the OpenAI SDK over
real HTTP, streamed and not). Reservations are settled with the real usage the upstream reports."""

from __future__ import annotations

import openai
import pytest

from accounts.services import api_key_create
from providers import budgets
from providers.models import UsageRecord
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Hi"}]


def _ask(client, **kw):
    return client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, **kw)


def test_tokens_per_minute_429_with_retry_after(settings, openai_configured, openai_client, user):
    settings.TOKENS_PER_MINUTE = 30
    openai_configured.push(Step(text="One", prompt_tokens=20, completion_tokens=15))
    assert _ask(openai_client).parse().usage.total_tokens == 35  # the estimate was under 30: allowed
    assert budgets.usage_now(f"user:{user.pk}")["minute"]["tokens"] == 35  # settled to the real usage
    with pytest.raises(openai.RateLimitError) as refused:
        _ask(openai_client)
    response = refused.value.response
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    error = response.json()["error"]  # OpenAI's error shape on /v1
    assert error["type"] == "rate_limit_error" and "30 tokens per minute" in error["message"]
    assert len(openai_configured.calls) == 1  # the refused turn never reached the upstream
    assert budgets.usage_now(f"user:{user.pk}")["minute"]["tokens"] == 35  # and held nothing


def test_daily_token_budget_402_and_streamed_requests_count(settings, openai_configured, openai_client, user):
    settings.DAILY_TOKEN_BUDGET = 50
    openai_configured.push(Step(text="Streamed", prompt_tokens=30, completion_tokens=12))
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Streamed"
    day = budgets.usage_now(f"user:{user.pk}")["day"]
    assert (day["tokens"], day["token_limit"], day["tokens_remaining"]) == (42, 50, 8)
    with pytest.raises(openai.APIStatusError) as refused:
        _ask(openai_client, max_tokens=20)  # 42 + the prompt + 20 would pass 50
    assert refused.value.status_code == 402
    assert "daily token budget" in refused.value.response.json()["error"]["message"]
    assert len(openai_configured.calls) == 1 and UsageRecord.objects.count() == 1


def test_cost_budget_402_once_spent(settings, openai_configured, openai_client, user):
    settings.DAILY_COST_BUDGET = 0.000001
    openai_configured.push(Step(text="Priced", prompt_tokens=1000, completion_tokens=1000))
    _ask(openai_client)
    spent = UsageRecord.objects.get().cost
    assert spent > 0 and budgets.usage_now(f"user:{user.pk}")["day"]["cost"] == pytest.approx(float(spent))
    with pytest.raises(openai.APIStatusError) as refused:
        _ask(openai_client)
    assert refused.value.status_code == 402 and "cost budget" in refused.value.response.json()["error"]["message"]


def test_each_key_and_the_user_count_separately(settings, openai_configured, gateway_url, user, api_key):
    """A user's budget covers all their keys; each key has its own too."""
    settings.DAILY_TOKEN_BUDGET = 25
    other_key, other_raw = api_key_create(user=user, name="second")
    first = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=api_key[1], max_retries=0, timeout=20)
    second = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=other_raw, max_retries=0, timeout=20)
    openai_configured.push(Step(text="a", prompt_tokens=10, completion_tokens=10))
    _ask(first)
    assert budgets.usage_now(f"apikey:{api_key[0].pk}")["day"]["tokens"] == 20
    assert budgets.usage_now(f"apikey:{other_key.pk}")["day"]["tokens"] == 0
    with pytest.raises(openai.APIStatusError) as refused:  # the user's budget, through another key
        _ask(second, max_tokens=10)
    assert refused.value.status_code == 402 and "for this user" in refused.value.response.json()["error"]["message"]


def test_no_limits_no_counters(openai_configured, openai_client, user):
    openai_configured.push(Step(text="free"))
    _ask(openai_client)
    assert budgets.usage_now(f"user:{user.pk}")["day"]["tokens"] == 0


def test_seed_routes_answer_with_the_envelope_and_save_nothing(settings, openai_configured, auth_client):
    """Seed 000's /chat/message: the refusal is the project's envelope, before anything is saved."""
    from chats.models import Message

    settings.TOKENS_PER_MINUTE = 1  # any prompt is over
    response = auth_client.post("/api/v1/chat/message", {"message": "Hello there"}, format="json")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["status_code"] == 429 and body["code"] == "token_rate_limited" and body["details"]["limit"] == 1
    settings.TOKENS_PER_MINUTE, settings.MONTHLY_TOKEN_BUDGET = 0, 1
    response = auth_client.post("/api/v1/chat/message", {"message": "Hello there"}, format="json")
    assert response.status_code == 402 and response.json()["details"] == {
        "scope": "user", "period": "month", "budget": "1", "kind": "token"}
    assert not Message.objects.exists() and not openai_configured.calls
