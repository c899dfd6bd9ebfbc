"""Request rate limits: headers on every response, 429 with Retry-After, per-caller buckets."""

from __future__ import annotations

import time

import pytest
from django.test import Client


@pytest.mark.django_db
def test_headers_on_every_api_response(auth_client, settings):
    settings.RATE_LIMIT_PER_MINUTE = 50
    first = auth_client.get("/api/v1/auth/me")
    second = auth_client.get("/api/v1/auth/me")
    assert first["X-RateLimit-Limit"] == "50"
    assert int(first["X-RateLimit-Remaining"]) == int(second["X-RateLimit-Remaining"]) + 1
    assert int(first["X-RateLimit-Reset"]) > 1_700_000_000  # a Unix timestamp
    # Errors carry them too.
    assert "X-RateLimit-Limit" in auth_client.get("/api/v1/nope")


@pytest.mark.django_db
def test_per_user_minute_limit_gives_429_with_retry_after(auth_client, settings):
    settings.RATE_LIMIT_PER_MINUTE = 3
    statuses = [auth_client.get("/api/v1/auth/me").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = auth_client.get("/api/v1/auth/me")
    body = refused.json()
    assert body["code"] == "RATE_LIMITED" and body["status_code"] == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["X-RateLimit-Remaining"] == "0"


@pytest.mark.django_db
def test_buckets_are_per_caller(make_user, tokens_for, settings):
    settings.RATE_LIMIT_PER_MINUTE = 2
    clients = []
    for name in ("u1", "u2"):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {tokens_for(make_user(name))['access_token']}")
        clients.append(client)
    assert [clients[0].get("/api/v1/auth/me").status_code for _ in range(3)] == [200, 200, 429]
    assert clients[1].get("/api/v1/auth/me").status_code == 200


@pytest.mark.django_db
def test_anonymous_callers_limited_per_address_and_hour_limit(settings):
    settings.ANONYMOUS_RATE_LIMIT_PER_MINUTE = 2
    client = Client(REMOTE_ADDR="203.0.113.9")
    assert [client.get("/api/v1/models").status_code for _ in range(3)] == [200, 200, 429]
    assert Client(REMOTE_ADDR="203.0.113.10").get("/api/v1/models").status_code == 200
    settings.ANONYMOUS_RATE_LIMIT_PER_MINUTE = 100
    settings.RATE_LIMIT_PER_HOUR = 1  # the hour window bites even when the minute one does not
    hourly = Client(REMOTE_ADDR="203.0.113.11")
    to_next_hour = 3600 - time.time() % 3600
    if to_next_hour < 15:  # all 101 requests must count in one hour window
        time.sleep(to_next_hour + 0.1)
    statuses = [hourly.get("/api/v1/models").status_code for _ in range(101)]
    retry_after = int(hourly.get("/api/v1/models")["Retry-After"])
    # The hour window's end (in an hour's last minute that is also the minute window's).
    assert statuses[-1] == 429 and abs(retry_after - (3600 - int(time.time()) % 3600)) <= 1


@pytest.mark.django_db
def test_health_and_docs_are_not_limited(settings):
    settings.ANONYMOUS_RATE_LIMIT_PER_MINUTE = 1
    client = Client()
    assert all(client.get("/health").status_code == 200 for _ in range(5))
