"""GET /api/v1/users/usage: one's own usage by period and model, limits and what remains."""

from __future__ import annotations

import pytest

from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db
URL = "/api/v1/users/usage"


def test_own_usage_by_period_and_model_with_remaining_budget(openai_configured, auth_client, settings):
    settings.DAILY_TOKEN_BUDGET = 1000
    openai_configured.push(Step(text="Counted", prompt_tokens=12, completion_tokens=5))
    assert auth_client.post("/api/v1/chat/message", {"message": "Hi", "model": "gpt-4o-mini"},
                            format="json").status_code == 200
    body = auth_client.get(URL).json()
    assert body["user_id"] == auth_client.user.pk
    today = body["periods"]["today"]
    assert (today["requests"], today["prompt_tokens"], today["completion_tokens"], today["total_tokens"]) == (1, 12, 5, 17)
    assert today["cost"] > 0 and body["periods"]["this_month"]["total_tokens"] == 17
    assert [(m["model"], m["provider"], m["total_tokens"]) for m in body["by_model"]] == [("gpt-4o-mini", "openai", 17)]
    assert body["limits"]["daily_token_budget"] == 1000 and body["limits"]["tokens_per_minute"] is None
    assert body["remaining"]["daily_tokens"] == 983 and body["remaining"]["monthly_tokens"] is None
    assert body["current"]["day"]["tokens"] == 17


def test_another_users_usage_is_staff_only(auth_client, api_client, make_user, tokens_for):
    other = make_user("someone")
    assert auth_client.get(URL, {"user_id": other.pk}).status_code == 403
    assert auth_client.get(URL, {"user_id": auth_client.user.pk}).status_code == 200
    staff = make_user("ops", is_staff=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(staff)['access_token']}")
    seen = api_client.get(URL, {"user_id": other.pk})
    assert seen.status_code == 200 and seen.json()["user_id"] == other.pk
    assert api_client.get(URL, {"user_id": "usr_nobody"}).status_code == 404


def test_bad_queries_and_anonymous(auth_client, api_client):
    assert api_client.get(URL).status_code == 401
    unknown = auth_client.get(URL, {"period": "week"})
    assert unknown.status_code == 400 and "period" in unknown.json()["details"]
    assert auth_client.get(URL, {"days": 0}).status_code == 422  # the project's validation status
