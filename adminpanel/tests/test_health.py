"""Health endpoints (seeds 000 and 001)."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health", "/api/v1/health"])
def test_basic_health_seed_001_shape(path, settings):
    settings.OPENAI_API_KEY = "sk-test"
    settings.ANTHROPIC_API_KEY = ""
    response = Client().get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["version"] == settings.VERSION
    assert body["service"] == "chatplatform"
    assert body["environment"] in {"development", "production", "test"}
    assert body["timestamp"].endswith("Z")
    assert body["providers_configured"]["openai"] is True
    assert body["providers_configured"]["anthropic"] is False
    assert body["providers_configured"]["local"] is True


@pytest.mark.django_db
def test_basic_health_needs_no_credentials_and_ignores_bad_ones():
    response = Client().get("/health", HTTP_AUTHORIZATION="Bearer garbage")
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_detailed_health_reports_each_component():
    response = Client().get("/api/v1/health/detailed")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    for name in ("database", "cache", "channel_layer", "broker"):
        component = body["components"][name]
        assert component["status"] == "healthy", (name, component)
        assert component["latency_ms"] >= 0
        assert body["checks"][name] == "healthy"
    assert 0 <= body["checks"]["memory_usage"] <= 100
    assert 0 <= body["checks"]["cpu_usage"] <= 100
    info = body["system_info"]
    assert info["python_version"].count(".") == 2
    assert info["uptime_seconds"] >= 0
    assert info["memory_total_bytes"] > 0


@pytest.mark.django_db(transaction=True)
def test_detailed_health_503_when_required_component_down(settings):
    # Production mode with the cache pointing at a port where nothing listens.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
    response = Client().get("/api/v1/health/detailed")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["components"]["cache"]["status"] == "unhealthy"
    assert body["components"]["cache"]["required"] is True
    assert body["components"]["database"]["status"] == "healthy"
    # The error names the failure kind, never a connection string.
    assert "127.0.0.1:1" not in response.content.decode()
