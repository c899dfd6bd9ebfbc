"""Limits, budgets, runtime configuration and metrics across two worker processes sharing Redis."""

from __future__ import annotations

import secrets
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from providers.tests.fakeserver import Step
from tests.live import LIVE_ADMIN_SECRET

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": f"Bearer {LIVE_ADMIN_SECRET}"}


def _register(client) -> dict[str, str]:
    name = f"limits_{secrets.token_hex(4)}"
    response = client.post("/api/v1/auth/register", json={
        "username": name, "email": f"{name}@example.com", "password": "correct-horse-battery-9"})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_config_limits_and_metrics_hold_across_workers(live):
    with live.server.http_client_on_worker() as (first, pid, _), \
            live.server.http_client_on_worker(other_than=pid) as (second, other_pid, _):
        assert pid != other_pid
        user = _register(first)
        before = second.get("/metrics").text
        try:
            changed = first.put("/api/v1/admin/system/config", json={"tokens_per_minute": 30}, headers=ADMIN)
            assert changed.status_code == 200 and changed.json()["tokens_per_minute"] == 30
            time.sleep(1.5)  # RUNTIME_CONFIG_RECHECK_SECONDS: no restart
            assert second.get("/api/v1/admin/system/config", headers=ADMIN).json()["tokens_per_minute"] == 30
            live.upstream.push(Step(text="Counted on the first worker", prompt_tokens=20, completion_tokens=15))
            assert first.post("/api/v1/chat/message", json={"message": "Hi"}, headers=user).status_code == 200
            refused = second.post("/api/v1/chat/message", json={"message": "Hi again"}, headers=user)
            assert refused.status_code == 429, refused.text  # the other worker sees the same counter
            assert int(refused.headers["Retry-After"]) >= 1
        finally:
            assert first.put("/api/v1/admin/system/config", json={"tokens_per_minute": 0},
                             headers=ADMIN).status_code == 200
        after = second.get("/metrics").text  # every worker's values, from either
        assert _metric(after, "llm_tokens_total", provider="openai") - _metric(before, "llm_tokens_total",
                                                                               provider="openai") == 35
        assert _metric(after, "limit_rejections_total", kind="tokens_per_minute") - _metric(
            before, "limit_rejections_total", kind="tokens_per_minute") == 1
