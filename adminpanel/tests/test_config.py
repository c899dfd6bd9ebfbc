"""PUT/GET /api/v1/admin/system/config (seed 000): validated, persisted, effective at once."""

from __future__ import annotations

import logging

import pytest

from accounts import runtime
from accounts.models import RuntimeSetting

pytestmark = pytest.mark.django_db
URL = "/api/v1/admin/system/config"


@pytest.fixture
def admin_client(api_client, settings):
    settings.ADMIN_SECRET_KEY = "admin-secret-for-tests"
    api_client.credentials(HTTP_AUTHORIZATION="Bearer admin-secret-for-tests")
    return api_client


def test_seed_example_is_persisted_and_effective(admin_client, auth_client, settings):
    settings.RATE_LIMIT_PER_MINUTE = 60
    response = admin_client.put(URL, {"log_level": "DEBUG", "rate_limit_per_minute": 120, "max_tokens": 4000},
                                format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["log_level"], body["rate_limit_per_minute"], body["max_tokens"]) == ("DEBUG", 120, 4000)
    assert RuntimeSetting.objects.get(key="rate_limit_per_minute").value == 120
    assert logging.getLogger().level == logging.DEBUG
    # The rate limiter of this very process uses the new limit on the next request.
    assert auth_client.get("/api/v1/models").headers["X-RateLimit-Limit"] == "120"
    assert admin_client.get(URL).json()["rate_limit_per_minute"] == 120
    runtime.runtime_clear()
    assert auth_client.get("/api/v1/models").headers["X-RateLimit-Limit"] == "60"
    assert logging.getLogger().level == logging.getLevelName(settings.LOG_LEVEL)


def test_unknown_and_invalid_keys_are_400_naming_them(admin_client):
    unknown = admin_client.put(URL, {"rate_limit_per_minute": 10, "colour": "blue"}, format="json")
    assert unknown.status_code == 400 and "colour" in unknown.json()["details"]
    assert "colour" in unknown.json()["message"]
    invalid = admin_client.put(URL, {"rate_limit_per_minute": 0, "log_level": "LOUD"}, format="json")
    assert invalid.status_code == 400 and set(invalid.json()["details"]) == {"rate_limit_per_minute", "log_level"}
    assert admin_client.put(URL, {"max_tokens": True}, format="json").status_code == 400
    assert admin_client.put(URL, {}, format="json").status_code == 400
    assert not RuntimeSetting.objects.exists()


def test_env_defaults_show_until_overridden(admin_client, settings):
    settings.TOKENS_PER_MINUTE = 777
    assert admin_client.get(URL).json()["tokens_per_minute"] == 777


def test_only_admins(api_client, auth_client, make_user, tokens_for):
    assert api_client.put(URL, {"max_tokens": 5}, format="json").status_code == 401
    assert api_client.get(URL).status_code == 401
    assert auth_client.put(URL, {"max_tokens": 5}, format="json").status_code == 403
    assert auth_client.get(URL).status_code == 403
    staff = make_user("ops", is_staff=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(staff)['access_token']}")
    assert api_client.put(URL, {"max_tokens": 5}, format="json").status_code == 200
    assert runtime.runtime_value("max_tokens") == 5


def test_another_worker_sees_a_change_through_the_shared_cache(settings):
    """A worker holds its copy in process; a write elsewhere bumps the shared version."""
    settings.RUNTIME_CONFIG_RECHECK_SECONDS = 0
    assert runtime.runtime_value("tokens_per_minute") == settings.TOKENS_PER_MINUTE
    RuntimeSetting.objects.create(key="tokens_per_minute", value=5)  # another worker's write ...
    runtime.runtime_reset_local()
    runtime._publish()  # ... published by it
    assert runtime.runtime_value("tokens_per_minute") == 5
