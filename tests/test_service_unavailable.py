"""Redis away, in process (issue 9, item 15): every API layer answers the JSON envelope, a 503
naming Redis where Redis is needed, through the real ASGI application.

"Away" is a real Redis client pointed at a port nothing listens on (connection refused), as
after ``redis-cli shutdown``. The drills (test_drills.py) do the same against a real server,
and stop PostgreSQL too.
"""

from __future__ import annotations

import pytest

from chatplatform.redis_clients import connection_kwargs
from chats.tests.test_sse import asgi_request
from providers.tests.fakeserver import Step
from tests.live import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_away(settings):
    """Production mode's Redis-backed cache and hub, with Redis not running."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = url
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": "cp",
        "OPTIONS": {"CONNECTION_POOL_KWARGS": connection_kwargs(connect_timeout=1, socket_timeout=1)}}}
    return url


def assert_redis_unavailable(response) -> None:
    assert response.status == 503, (response.status, response.body[:300])
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == "SERVICE_UNAVAILABLE" and body["status_code"] == 503
    assert body["details"] == {"component": "redis"}
    assert body["request_id"] == response.headers["x-request-id"]
    assert int(response.headers["retry-after"]) > 0


@pytest.fixture
def bearer(user, tokens_for) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens_for(user)['access_token']}"}


async def test_chat_message_answers_503_naming_redis(redis_away, openai_configured, bearer):
    openai_configured.push(Step(text="never sent"))
    response = await asgi_request("POST", "/api/v1/chat/message", json_body={"message": "Hello"},
                                  headers=bearer)
    assert_redis_unavailable(response)  # a DRF view
    assert openai_configured.calls == []  # refused before the provider was called


async def test_sse_stream_answers_503_naming_redis(redis_away, openai_configured):
    response = await asgi_request("POST", "/api/v1/chat/stream", json_body={"message": "Hello"})
    assert_redis_unavailable(response)  # a plain async view, before any byte of the stream


async def test_openai_compatible_route_answers_503_in_openai_shape(redis_away, openai_configured, bearer):
    response = await asgi_request("POST", "/v1/chat/completions", headers=bearer, json_body={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]})
    assert response.status == 503, response.body[:300]
    error = response.json()["error"]
    assert error["type"] == "api_error" and error["code"] == "service_unavailable"
    assert int(response.headers["retry-after"]) > 0


async def test_rate_limits_fail_open_so_database_routes_keep_working(redis_away, bearer):
    response = await asgi_request("GET", "/api/v1/chat/conversations", headers=bearer)
    assert response.status == 200, response.body[:300]
    assert "x-ratelimit-limit" not in response.headers  # nothing was counted, nothing is claimed


async def test_rate_limits_fail_closed_when_configured(redis_away, settings, bearer):
    settings.RATE_LIMIT_FAIL_OPEN = False
    response = await asgi_request("GET", "/api/v1/chat/conversations", headers=bearer)
    assert_redis_unavailable(response)  # from the rate-limit middleware itself


async def test_logins_fail_closed_while_redis_is_away(redis_away, user, password):
    # Login throttling guards passwords: without its counters, logins wait for Redis.
    response = await asgi_request("POST", "/api/v1/auth/login",
                                  json_body={"username": user.username, "password": password})
    assert_redis_unavailable(response)


async def test_health_stays_up_while_redis_is_away(redis_away):
    assert (await asgi_request("GET", "/health")).status == 200  # liveness needs no Redis


async def test_any_failure_in_an_outer_middleware_layer_answers_the_envelope(settings, bearer):
    settings.RATE_LIMIT_PER_MINUTE = "sixty"  # a broken limit: the limiter fails with a TypeError
    response = await asgi_request("GET", "/api/v1/chat/conversations", headers=bearer)
    assert response.status == 500
    assert response.headers["content-type"] == "application/json", response.body[:200]
    body = response.json()
    assert body["code"] == "INTERNAL_ERROR" and body["request_id"] == response.headers["x-request-id"]
