"""A team's own providers: managed by its admins, listed to its members, used by a member's chat
request that names one (the team's key reaches the wire), invisible and unusable to everyone else;
the operator's configuration is unchanged."""

from __future__ import annotations

import pytest

from accounts.models import TeamMembership
from providers.models import ProviderConfig

pytestmark = pytest.mark.django_db

CHAT = "/api/v1/chat/message"


@pytest.fixture
def crew(make_user, make_team, client_of_user):
    owner, admin, member, outsider = (make_user(n) for n in ("t_owner", "t_admin", "t_member", "t_outsider"))
    team = make_team(owner, name="Crew", admins=[admin], members=[member])
    return {"team": team, "base": f"/api/v1/teams/{team.id}/providers",
            **{name: client_of_user(user) for name, user in
               (("owner", owner), ("admin", admin), ("member", member), ("outsider", outsider))}}


@pytest.fixture
def client_of_user(tokens_for):
    from rest_framework.test import APIClient

    def _client(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access_token']}")
        return client

    return _client


@pytest.fixture
def team_provider(crew, openai_configured, backup_upstream, settings):
    settings.ALLOW_PRIVATE_OUTBOUND = True  # the fake upstream is on 127.0.0.1
    settings.RATE_LIMIT_ENABLED = False
    response = crew["admin"].post(crew["base"], {
        "name": "crew-openai", "kind": "openai", "api_key": "sk-team-secret-7777",
        "base_url": backup_upstream.url + "/v1", "default_model": "gpt-4o-mini"}, format="json")
    assert response.status_code == 201, response.content
    backup_upstream.reset()
    return response.json()


def test_admins_add_providers_members_see_them_masked(crew, team_provider, backup_upstream):
    assert team_provider["api_key"].endswith("7777") and "secret" not in team_provider["api_key"]
    listing = crew["member"].get(crew["base"])
    assert listing.status_code == 200 and listing["X-Total-Count"] == "1"
    assert [p["name"] for p in listing.json()] == ["crew-openai"]
    assert crew["member"].get(f"{crew['base']}/crew-openai").json()["team_id"] == crew["team"].id
    row = ProviderConfig.objects.get(name="crew-openai")
    assert row.api_key == "sk-team-secret-7777" and "7777" not in row.api_key_encrypted


def test_the_key_is_checked_with_a_real_call_before_saving(crew, openai_configured, backup_upstream, settings):
    settings.ALLOW_PRIVATE_OUTBOUND = True
    backup_upstream.reset()
    ok = crew["admin"].post(crew["base"], {"name": "checked", "kind": "openai", "api_key": "sk-good-1111",
                                           "base_url": backup_upstream.url + "/v1"}, format="json")
    assert ok.status_code == 201
    assert backup_upstream.calls[-1].path.endswith("/models")
    assert backup_upstream.calls[-1].headers["authorization"] == "Bearer sk-good-1111"


def test_a_members_request_naming_it_uses_the_teams_key(crew, team_provider, openai_configured, backup_upstream):
    response = crew["member"].post(CHAT, {"message": "Hello team", "provider": "crew-openai"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["provider_used"] == "crew-openai"
    assert backup_upstream.calls[-1].headers["authorization"] == "Bearer sk-team-secret-7777"
    assert not openai_configured.calls  # the operator's provider was not used


def test_the_default_provider_preference_routes_every_chat_through_it(crew, team_provider, backup_upstream):
    assert crew["member"].put("/api/v1/users/preferences", {"default_provider": "crew-openai"},
                              format="json").status_code == 200
    response = crew["member"].post(CHAT, {"message": "Hello"}, format="json")
    assert response.status_code == 200 and response.json()["provider_used"] == "crew-openai"
    assert backup_upstream.calls


def test_nobody_else_can_use_or_see_it(crew, team_provider, backup_upstream):
    response = crew["outsider"].post(CHAT, {"message": "Let me in", "provider": "crew-openai"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "PROVIDER_NOT_CONFIGURED"
    assert crew["outsider"].get(crew["base"]).status_code == 404
    assert not backup_upstream.calls
    # The operator's routes do not show it, and cannot take its name.
    names = [p["name"] for p in crew["outsider"].get("/api/v1/providers").json()]
    assert "crew-openai" not in names
    assert crew["outsider"].get("/api/v1/providers/crew-openai").status_code == 404


def test_a_member_who_left_can_no_longer_use_it(crew, team_provider, backup_upstream):
    TeamMembership.objects.filter(team=crew["team"], role="member").delete()
    response = crew["member"].post(CHAT, {"message": "Still here?", "provider": "crew-openai"}, format="json")
    assert response.status_code == 400 and not backup_upstream.calls


def test_a_disabled_team_provider_is_not_used(crew, team_provider, backup_upstream):
    assert crew["admin"].patch(f"{crew['base']}/crew-openai", {"enabled": False}, format="json").json()["enabled"] is False
    response = crew["member"].post(CHAT, {"message": "Hello", "provider": "crew-openai"}, format="json")
    assert response.status_code == 400 and not backup_upstream.calls


def test_members_cannot_change_it_admins_can(crew, team_provider):
    for response in (crew["member"].post(crew["base"], {"name": "x", "kind": "openai", "api_key": "k",
                                                        "validate_key": False}, format="json"),
                     crew["member"].patch(f"{crew['base']}/crew-openai", {"default_model": "gpt-4o"}, format="json"),
                     crew["member"].delete(f"{crew['base']}/crew-openai")):
        assert response.status_code == 403, response.content
    changed = crew["admin"].patch(f"{crew['base']}/crew-openai", {"temperature": 0.2, "max_tokens": 300},
                                  format="json").json()
    assert changed["temperature"] == 0.2 and changed["max_tokens"] == 300 and changed["api_key"].endswith("7777")
    assert crew["owner"].delete(f"{crew['base']}/crew-openai").status_code == 204
    assert not ProviderConfig.objects.filter(name="crew-openai").exists()


@pytest.mark.parametrize("body, status, field", [
    ({"name": "openai", "kind": "openai", "api_key": "k"}, 409, "name"),
    ({"name": "crew-openai", "kind": "openai", "api_key": "k"}, 409, "name"),
    ({"name": "mine", "kind": "local"}, 422, "kind"),
    ({"name": "mine", "kind": "openai"}, 422, "api_key"),
    ({"name": "mine", "kind": "openai", "api_key": "k", "fallbacks": {}}, 422, "fallbacks"),
    ({"name": "mine", "kind": "openai", "api_key": "k", "is_default": True}, 422, "is_default"),
    ({"name": "mine", "kind": "openai", "api_key": "k", "default_model": "claude-sonnet-4.5"}, 422, "default_model"),
    ({"name": "Not A Slug", "kind": "openai", "api_key": "k"}, 422, "name"),
])
def test_bad_team_providers_are_refused(crew, team_provider, body, status, field):
    response = crew["admin"].post(crew["base"], {"validate_key": False, **body}, format="json")
    assert response.status_code == status, response.content
    assert field in response.json()["details"]


def test_a_private_base_url_is_refused_without_the_operators_permission(crew, openai_configured, settings):
    settings.ALLOW_PRIVATE_OUTBOUND = False
    for url in ("http://127.0.0.1:11434/v1", "http://169.254.169.254/latest", "http://10.0.0.5/v1"):
        response = crew["admin"].post(crew["base"], {"name": "sneaky", "kind": "openai", "api_key": "k",
                                                     "base_url": url, "validate_key": False}, format="json")
        assert response.status_code == 422 and "base_url" in response.json()["details"], url


def test_the_operator_cannot_overwrite_a_team_provider(crew, team_provider, settings):
    settings.ADMIN_SECRET_KEY = "operator-secret-0123456789"
    from rest_framework.test import APIClient

    operator = APIClient()
    operator.credentials(HTTP_AUTHORIZATION="Bearer operator-secret-0123456789")
    response = operator.put("/api/v1/providers/crew-openai", {"kind": "openai", "api_key": "sk-op",
                                                              "validate_key": False}, format="json")
    assert response.status_code == 409
    response = operator.post("/api/v1/providers", {"name": "crew-openai", "kind": "openai", "api_key": "sk-op",
                                                   "validate_key": False}, format="json")
    assert response.status_code == 409
    assert operator.delete("/api/v1/providers/crew-openai").status_code == 404
    assert ProviderConfig.objects.get(name="crew-openai").api_key == "sk-team-secret-7777"


def test_deleting_the_team_deletes_its_providers(crew, team_provider):
    assert crew["owner"].delete(f"/api/v1/teams/{crew['team'].id}").status_code == 204
    assert not ProviderConfig.objects.filter(name="crew-openai").exists()
