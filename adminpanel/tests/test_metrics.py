"""GET /metrics: Prometheus text that the official parser reads, with counters that move."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):  # every line must parse
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_by_route_and_status_move(api_client):
    before = scrape(api_client)
    for _ in range(3):
        assert api_client.get("/api/v1/health").status_code == 200
    api_client.get("/api/v1/conversations/nope")  # 401, counted under its route pattern
    after = scrape(api_client)
    labels = {"method": "GET", "endpoint": "/api/v1/health", "status": "200"}
    assert value(after, "chatbot_requests_total", **labels) - value(before, "chatbot_requests_total", **labels) == 3
    assert value(after, "chatbot_request_duration_seconds_count", method="GET", endpoint="/api/v1/health") >= 3
    assert not any("nope" in str(key) for key in after)  # ids never become labels


def test_provider_calls_tokens_cost_and_rejections(openai_configured, auth_client, settings):
    before = scrape(auth_client)
    openai_configured.push(Step(text="Counted", prompt_tokens=12, completion_tokens=5))
    assert auth_client.post("/api/v1/chat/message", {"message": "Hi", "model": "gpt-4o-mini"},
                            format="json").status_code == 200
    settings.TOKENS_PER_MINUTE = 1
    assert auth_client.post("/api/v1/chat/message", {"message": "Hello there, how are you?"},
                            format="json").status_code == 429
    after = scrape(auth_client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("llm_provider_calls_total", provider="openai", model="gpt-4o-mini", status="success") == 1
    assert moved("llm_tokens_total", provider="openai", model="gpt-4o-mini", kind="prompt") == 12
    assert moved("llm_tokens_total", provider="openai", model="gpt-4o-mini", kind="completion") == 5
    assert moved("llm_cost_usd_total", provider="openai", model="gpt-4o-mini") > 0
    assert moved("llm_provider_latency_seconds_count", provider="openai", model="gpt-4o-mini") == 1
    assert moved("limit_rejections_total", kind="tokens_per_minute") == 1
    assert value(after, "active_streams") == 0


def test_cache_helpers_and_gauges_are_exposed(api_client):
    from chatplatform.api import metrics

    before = scrape(api_client)
    metrics.cache_hit("exact")
    metrics.cache_miss("semantic")
    metrics.websocket_opened()
    after = scrape(api_client)
    metrics.websocket_closed()
    assert value(after, "response_cache_lookups_total", cache="exact", result="hit") - value(
        before, "response_cache_lookups_total", cache="exact", result="hit") == 1
    assert value(after, "websocket_connections") - value(before, "websocket_connections") == 1
