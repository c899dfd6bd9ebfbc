"""Chatbots shared with a team: members see them, the team's admins (and the owner) manage them;
nobody else sees them. (Their keys act as the chatbot, as before: support/tests/test_chatbots.py.)"""

from __future__ import annotations

import pytest

from accounts.models import TeamMembership
from support import services
from support.models import Chatbot

pytestmark = pytest.mark.django_db

ENVELOPE_KEYS = {"detail", "message", "error", "code", "status_code", "request_id", "timestamp", "details"}


@pytest.fixture
def crew(make_user, make_team):
    owner, admin, member, outsider = (make_user(n) for n in ("bot_owner", "team_admin", "team_member", "outsider"))
    team = make_team(owner, name="Crew", admins=[admin], members=[member])
    return {"team": team, "owner": owner, "admin": admin, "member": member, "outsider": outsider}


def test_sharing_a_chatbot_with_the_team(crew, client_of):
    owner = client_of(crew["owner"])
    created = owner.post("/api/v1/chatbots", {"name": "Shared", "team_id": crew["team"].id}, format="json")
    assert created.status_code == 201, created.content
    bot_id = created.json()["id"]
    assert created.json()["team_id"] == crew["team"].id

    member = client_of(crew["member"])
    assert [b["id"] for b in member.get("/chatbots").json()] == [bot_id]
    assert member.get(f"/chatbots/{bot_id}").json()["name"] == "Shared"
    listing = member.get(f"/api/v1/teams/{crew['team'].id}/chatbots")
    assert listing["X-Total-Count"] == "1" and listing.json()[0]["id"] == bot_id
    assert member.get(f"/chatbots/{bot_id}/api-keys").status_code == 200

    outsider = client_of(crew["outsider"])
    assert outsider.get("/chatbots").json() == []
    assert outsider.get(f"/chatbots/{bot_id}").status_code == 404
    assert outsider.get(f"/api/v1/teams/{crew['team'].id}/chatbots").status_code == 404


def test_members_use_admins_manage(crew, client_of):
    bot = services.chatbot_create(owner=crew["owner"], name="Shared", team=crew["team"])
    member, admin = client_of(crew["member"]), client_of(crew["admin"])
    for response in (member.patch(f"/chatbots/{bot.id}", {"name": "x"}, format="json"),
                     member.post(f"/chatbots/{bot.id}/api-keys", {"name": "k"}, format="json"),
                     member.delete(f"/chatbots/{bot.id}")):
        assert response.status_code == 403, response.content
        assert set(response.json()) >= ENVELOPE_KEYS and response.json()["code"] == "TEAM_ROLE_REQUIRED"
    assert admin.patch(f"/chatbots/{bot.id}", {"name": "Renamed"}, format="json").json()["name"] == "Renamed"
    key = admin.post(f"/chatbots/{bot.id}/api-keys", {"name": "site"}, format="json")
    assert key.status_code == 201
    assert admin.delete(f"/chatbots/{bot.id}/api-keys/{key.json()['id']}").status_code == 200
    assert admin.delete(f"/chatbots/{bot.id}").status_code == 204


def test_sharing_needs_the_teams_admin_role(crew, client_of, make_user, make_team):
    member = client_of(crew["member"])
    response = member.post("/api/v1/chatbots", {"name": "Mine", "team_id": crew["team"].id}, format="json")
    assert response.status_code == 403
    other_team = make_team(make_user("stranger"), name="Not yours")
    response = member.post("/api/v1/chatbots", {"name": "Mine", "team_id": other_team.id}, format="json")
    assert response.status_code == 422 and "team_id" in response.json()["details"]
    assert not Chatbot.objects.exists()


def test_put_without_team_id_keeps_the_sharing_and_null_stops_it(crew, client_of):
    bot = services.chatbot_create(owner=crew["owner"], name="Shared", team=crew["team"])
    owner = client_of(crew["owner"])
    assert owner.put(f"/chatbots/{bot.id}", {"name": "Seed 002 client"}, format="json").json()["team_id"] == \
        crew["team"].id
    assert owner.patch(f"/chatbots/{bot.id}", {"team_id": None}, format="json").json()["team_id"] is None
    assert client_of(crew["member"]).get(f"/chatbots/{bot.id}").status_code == 404


def test_leaving_the_team_or_deleting_it_ends_the_sharing(crew, client_of):
    bot = services.chatbot_create(owner=crew["owner"], name="Shared", team=crew["team"])
    TeamMembership.objects.filter(user=crew["member"]).delete()
    assert client_of(crew["member"]).get(f"/chatbots/{bot.id}").status_code == 404
    assert client_of(crew["owner"]).delete(f"/api/v1/teams/{crew['team'].id}").status_code == 204
    bot.refresh_from_db()
    assert bot.team_id is None and bot.owner_id == crew["owner"].id
