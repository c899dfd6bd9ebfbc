"""Team isolation swept across every team route (accounts, providers and support): someone outside
the team gets the same 404 as for a team that does not exist, and changes nothing; a member whose
role is too low gets 403 on writes; the lowest role allowed gets through."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import ROLE_RANK, Team, TeamInvitation, TeamMembership
from providers.models import ProviderConfig
from support import services

pytestmark = pytest.mark.django_db

ENVELOPE_KEYS = {"detail", "message", "error", "code", "status_code", "request_id", "timestamp", "details"}
T = "/api/v1/teams/{team}"

# (method, path, body, the lowest role allowed)
ROUTES = [
    ("get", T, None, "member"),
    ("patch", T, {"name": "Renamed"}, "admin"),
    ("put", T, {"description": "New"}, "admin"),
    ("delete", T, None, "owner"),
    ("get", T + "/members", None, "member"),
    ("get", T + "/members/{other}", None, "member"),
    ("patch", T + "/members/{other}", {"role": "admin"}, "admin"),
    ("put", T + "/members/{other}", {"role": "admin"}, "admin"),
    ("delete", T + "/members/{other}", None, "admin"),
    ("get", T + "/invitations", None, "admin"),
    ("post", T + "/invitations", {"username": "newbie"}, "admin"),
    ("delete", T + "/invitations/{invitation}", None, "admin"),
    ("get", T + "/chatbots", None, "member"),
    ("get", T + "/providers", None, "member"),
    ("post", T + "/providers", {"name": "crew-two", "kind": "openai", "api_key": "sk-x", "validate_key": False},
     "admin"),
    ("get", T + "/providers/crew-llm", None, "member"),
    ("patch", T + "/providers/crew-llm", {"default_model": "gpt-4o"}, "admin"),
    ("put", T + "/providers/crew-llm", {"enabled": False}, "admin"),
    ("delete", T + "/providers/crew-llm", None, "admin"),
]
ROUTE_IDS = [f"{m.upper()} {p.replace(T, '/teams/{id}')}" for m, p, _, _ in ROUTES]


@pytest.fixture
def world(make_user, make_team, tokens_for, settings):
    settings.RATE_LIMIT_ENABLED = False
    users = {name: make_user(name) for name in ("owner", "admin", "member", "other", "outsider", "newbie")}
    users["staff"] = make_user("staff_user", is_staff=True)
    team = make_team(users["owner"], name="Crew", admins=[users["admin"]], members=[users["member"], users["other"]])
    invitation = TeamInvitation.objects.create(team=team, email="someone@example.com", invited_by=users["owner"],
                                               expires_at="2999-01-01T00:00:00Z")
    provider = ProviderConfig(name="crew-llm", kind="openai", team=team, base_url="")
    provider.api_key = "sk-team-1234"
    provider.save()
    bot = services.chatbot_create(owner=users["owner"], name="Crew bot", team=team)
    clients = {}
    for name, user in users.items():
        clients[name] = APIClient()
        clients[name].credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access_token']}")
    return {"team": team, "users": users, "clients": clients, "invitation": invitation, "bot": bot}


def _call(client, method, path, body, world, team_id=None):
    url = path.format(team=team_id or world["team"].id, other=world["users"]["other"].id,
                      invitation=world["invitation"].id)
    return getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)


def _snapshot(world) -> tuple:
    team = Team.objects.filter(pk=world["team"].pk).values_list("name", "description").first()
    return (team, sorted(TeamMembership.objects.values_list("user_id", "role")),
            sorted(TeamInvitation.objects.values_list("id", "status")),
            sorted(ProviderConfig.objects.values_list("name", "enabled", "default_model")))


def _stable(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("request_id", "timestamp")}


@pytest.mark.parametrize("method, path, body, role", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("who", ["outsider", "staff"])
def test_outsiders_get_404_on_every_team_route_and_change_nothing(world, method, path, body, role, who):
    before = _snapshot(world)
    response = _call(world["clients"][who], method, path, body, world)
    assert response.status_code == 404, (who, method, path, response.content)
    assert set(response.json()) >= ENVELOPE_KEYS
    # Indistinguishable from a team that does not exist.
    missing = _call(world["clients"][who], method, path, body, world, team_id="team_doesnotexist0000000")
    assert missing.status_code == 404 and _stable(missing.json()) == _stable(response.json())
    assert _snapshot(world) == before


ROLE_CASES = [(r, route) for route in ROUTES for r in ("member", "admin") if ROLE_RANK[r] < ROLE_RANK[route[3]]]


@pytest.mark.parametrize("who, route", ROLE_CASES,
                         ids=[f"{who}-{ROUTE_IDS[ROUTES.index(route)]}" for who, route in ROLE_CASES])
def test_members_without_the_role_get_403_and_change_nothing(world, who, route):
    method, path, body, _ = route
    before = _snapshot(world)
    response = _call(world["clients"][who], method, path, body, world)
    assert response.status_code == 403, (who, method, path, response.content)
    assert set(response.json()) >= ENVELOPE_KEYS
    assert _snapshot(world) == before


@pytest.mark.parametrize("method, path, body, role", ROUTES, ids=ROUTE_IDS)
def test_the_lowest_role_allowed_gets_through(world, method, path, body, role):
    response = _call(world["clients"][role], method, path, body, world)
    assert 200 <= response.status_code < 300, (role, method, path, response.content)


@pytest.mark.parametrize("method, path, body, role", ROUTES, ids=ROUTE_IDS)
def test_a_chatbot_key_is_no_key_to_team_routes(world, method, path, body, role):
    _, raw = services.chatbot_api_key_create(chatbot=world["bot"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    before = _snapshot(world)
    assert _call(client, method, path, body, world).status_code == 403
    assert _snapshot(world) == before
