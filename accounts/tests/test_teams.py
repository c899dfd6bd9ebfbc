"""Teams: creating them, roles, members, invitations by username and by email."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Team, TeamInvitation, TeamMembership
from accounts.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

TEAMS = "/api/v1/teams"
INVITATIONS = "/api/v1/invitations"


@pytest.fixture
def as_user(tokens_for):
    def _client(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access_token']}")
        return client

    return _client


@pytest.fixture
def team(make_user, as_user):
    """A team owned by ``owner`` with ``admin`` and ``member``; returns a namespace of clients."""
    owner, admin, member = make_user("owner"), make_user("admin_user"), make_user("member_user")
    client = as_user(owner)
    team_id = client.post(TEAMS, {"name": "Support squad"}, format="json").json()["id"]
    for user, role in ((admin, "admin"), (member, "member")):
        TeamMembership.objects.create(team_id=team_id, user=user, role=role)

    class T:
        id = team_id
        users = {"owner": owner, "admin": admin, "member": member}
        clients = {"owner": client, "admin": as_user(admin), "member": as_user(member)}

    return T


def test_create_and_list_teams(auth_client, user):
    response = auth_client.post(TEAMS, {"name": "Research", "description": "R&D",
                                        "settings": {"monthly_budget_usd": 50, "tokens_per_minute": 10000}},
                                format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("team_") and body["role"] == "owner" and body["member_count"] == 1
    assert body["settings"] == {"monthly_budget_usd": 50, "tokens_per_minute": 10000}
    listing = auth_client.get(TEAMS)
    assert listing["X-Total-Count"] == "1"
    assert [t["id"] for t in listing.json()] == [body["id"]]


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": 123}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "ok", "owner_id": "user_x"}, "owner_id"),
    ({"name": "ok", "settings": {"monthly_budget_usd": "50"}}, "settings"),
    ({"name": "ok", "settings": {"unknown_limit": 1}}, "settings"),
    ({"name": "ok", "settings": {"tokens_per_minute": -1}}, "settings"),
    ({"name": "ok", "settings": {"tokens_per_minute": 1.5}}, "settings"),
    ({"name": "ok", "settings": [1]}, "settings"),
])
def test_bad_team_input_is_a_422_naming_the_field(auth_client, body, field):
    response = auth_client.post(TEAMS, body, format="json")
    assert field in assert_envelope(response, 422)["details"]
    assert not Team.objects.exists()


def test_settings_merge_key_by_key_and_null_clears(team):
    admin = team.clients["admin"]
    admin.patch(f"{TEAMS}/{team.id}", {"settings": {"monthly_budget_usd": 10, "requests_per_minute": 5}},
                format="json")
    body = admin.patch(f"{TEAMS}/{team.id}", {"name": "Renamed", "settings": {"monthly_budget_usd": None}},
                       format="json").json()
    assert body["name"] == "Renamed" and body["settings"] == {"requests_per_minute": 5}


def test_roles_decide_who_changes_the_team(team):
    member, admin, owner = (team.clients[r] for r in ("member", "admin", "owner"))
    assert_envelope(member.patch(f"{TEAMS}/{team.id}", {"name": "x"}, format="json"), 403, code="TEAM_ROLE_REQUIRED")
    assert admin.patch(f"{TEAMS}/{team.id}", {"name": "ok"}, format="json").status_code == 200
    assert_envelope(admin.delete(f"{TEAMS}/{team.id}"), 403)
    assert member.get(f"{TEAMS}/{team.id}").json()["role"] == "member"
    assert owner.delete(f"{TEAMS}/{team.id}").status_code == 204
    assert not Team.objects.exists() and not TeamMembership.objects.exists()


def test_member_roles_and_the_last_owner(team):
    owner, admin, member = (team.clients[r] for r in ("owner", "admin", "member"))
    ids = {r: u.id for r, u in team.users.items()}
    members = owner.get(f"{TEAMS}/{team.id}/members")
    assert members["X-Total-Count"] == "3"
    assert {m["username"]: m["role"] for m in members.json()} == {
        "owner": "owner", "admin_user": "admin", "member_user": "member"}

    assert_envelope(member.patch(f"{TEAMS}/{team.id}/members/{ids['member']}", {"role": "admin"},
                                 format="json"), 403)
    # Admins manage members and admins, never owners, and cannot make owners.
    assert admin.patch(f"{TEAMS}/{team.id}/members/{ids['member']}", {"role": "admin"},
                       format="json").json()["role"] == "admin"
    assert_envelope(admin.patch(f"{TEAMS}/{team.id}/members/{ids['member']}", {"role": "owner"},
                                format="json"), 403)
    assert_envelope(admin.patch(f"{TEAMS}/{team.id}/members/{ids['owner']}", {"role": "member"},
                                format="json"), 403)
    assert_envelope(admin.delete(f"{TEAMS}/{team.id}/members/{ids['owner']}"), 403)
    # The only owner can neither step down nor leave.
    assert_envelope(owner.patch(f"{TEAMS}/{team.id}/members/{ids['owner']}", {"role": "admin"},
                                format="json"), 409, code="LAST_OWNER")
    assert_envelope(owner.delete(f"{TEAMS}/{team.id}/members/{ids['owner']}"), 409, code="LAST_OWNER")
    # With a second owner, the first may step down.
    assert owner.patch(f"{TEAMS}/{team.id}/members/{ids['admin']}", {"role": "owner"},
                       format="json").status_code == 200
    assert owner.patch(f"{TEAMS}/{team.id}/members/{ids['owner']}", {"role": "member"},
                       format="json").json()["role"] == "member"
    body = assert_envelope(owner.patch(f"{TEAMS}/{team.id}/members/{ids['admin']}", {"role": "boss"},
                                       format="json"), 422)
    assert "role" in body["details"]
    assert_envelope(owner.get(f"{TEAMS}/{team.id}/members/user_nobody"), 404)


def test_anyone_may_leave_and_admins_remove_members(team):
    member, admin = team.clients["member"], team.clients["admin"]
    assert member.delete(f"{TEAMS}/{team.id}/members/{team.users['member'].id}").status_code == 204
    assert_envelope(member.get(f"{TEAMS}/{team.id}"), 404)  # no longer a member: the team is gone for them
    assert admin.delete(f"{TEAMS}/{team.id}/members/{team.users['admin'].id}").status_code == 204
    assert TeamMembership.objects.filter(team_id=team.id).count() == 1


def test_invite_by_username_accept(team, make_user, as_user):
    invitee = make_user("newcomer")
    admin = team.clients["admin"]
    response = admin.post(f"{TEAMS}/{team.id}/invitations", {"username": "NEWCOMER"}, format="json")
    assert response.status_code == 201, response.content
    invitation = response.json()
    assert invitation["invitee_username"] == "newcomer" and invitation["role"] == "member"
    assert invitation["status"] == "pending" and invitation["email"] == ""
    assert_envelope(admin.post(f"{TEAMS}/{team.id}/invitations", {"username": "newcomer"}, format="json"), 409,
                    code="INVITATION_PENDING")
    assert admin.get(f"{TEAMS}/{team.id}/invitations")["X-Total-Count"] == "1"

    client = as_user(invitee)
    mine = client.get(INVITATIONS).json()
    assert [i["id"] for i in mine] == [invitation["id"]] and mine[0]["team_name"] == "Support squad"
    joined = client.post(f"{INVITATIONS}/{invitation['id']}/accept")
    assert joined.status_code == 200 and joined.json()["role"] == "member" and joined.json()["member_count"] == 4
    assert_envelope(client.post(f"{INVITATIONS}/{invitation['id']}/accept"), 409, code="INVITATION_CLOSED")
    assert client.get(INVITATIONS).json() == []
    assert_envelope(admin.post(f"{TEAMS}/{team.id}/invitations", {"username": "newcomer"}, format="json"), 409,
                    code="ALREADY_MEMBER")


def test_invite_by_email_reaches_the_account_that_registers_it(team, api_client, as_user):
    admin = team.clients["admin"]
    invitation = admin.post(f"{TEAMS}/{team.id}/invitations", {"email": "later@example.com", "role": "admin"},
                            format="json").json()
    assert invitation["email"] == "later@example.com" and invitation["invitee_username"] is None
    registered = api_client.post("/api/v1/auth/register", {"username": "later", "email": "Later@Example.com",
                                                           "password": "a-long-enough-pw-1"}, format="json").json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {registered['access_token']}")
    assert [i["id"] for i in client.get(INVITATIONS).json()] == [invitation["id"]]
    assert client.post(f"{INVITATIONS}/{invitation['id']}/accept").json()["role"] == "admin"


def test_decline_and_revoke(team, make_user, as_user):
    invitee = make_user("maybe")
    admin = team.clients["admin"]
    first = admin.post(f"{TEAMS}/{team.id}/invitations", {"username": "maybe"}, format="json").json()
    client = as_user(invitee)
    assert client.post(f"{INVITATIONS}/{first['id']}/decline").json()["status"] == "declined"
    assert not TeamMembership.objects.filter(user=invitee).exists()
    second = admin.post(f"{TEAMS}/{team.id}/invitations", {"username": "maybe"}, format="json").json()
    assert admin.delete(f"{TEAMS}/{team.id}/invitations/{second['id']}").json()["status"] == "revoked"
    assert_envelope(client.post(f"{INVITATIONS}/{second['id']}/accept"), 409, code="INVITATION_CLOSED")
    assert_envelope(admin.delete(f"{TEAMS}/{team.id}/invitations/{second['id']}"), 404)


def test_an_expired_invitation_cannot_be_accepted(team, make_user, as_user):
    invitee = make_user("slow")
    invitation = team.clients["admin"].post(f"{TEAMS}/{team.id}/invitations", {"username": "slow"},
                                            format="json").json()
    TeamInvitation.objects.filter(pk=invitation["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    client = as_user(invitee)
    assert client.get(INVITATIONS).json() == []
    assert_envelope(client.post(f"{INVITATIONS}/{invitation['id']}/accept"), 409, code="INVITATION_EXPIRED")
    # An expired invitation does not block a new one.
    assert team.clients["admin"].post(f"{TEAMS}/{team.id}/invitations", {"username": "slow"},
                                      format="json").status_code == 201


def test_someone_elses_invitation_is_a_404(team, make_user, as_user):
    make_user("target")
    invitation = team.clients["admin"].post(f"{TEAMS}/{team.id}/invitations", {"username": "target"},
                                            format="json").json()
    stranger = as_user(make_user("stranger"))
    assert_envelope(stranger.post(f"{INVITATIONS}/{invitation['id']}/accept"), 404)
    assert_envelope(stranger.post(f"{INVITATIONS}/{invitation['id']}/decline"), 404)


@pytest.mark.parametrize("body, field", [
    ({}, "username"),
    ({"username": "a", "email": "a@example.com"}, "username"),
    ({"username": "ghost"}, "username"),
    ({"email": "not-an-email"}, "email"),
    ({"username": "member_user", "role": "king"}, "role"),
    ({"username": "member_user", "team_id": "team_x"}, "team_id"),
])
def test_bad_invitations_are_422s_naming_the_field(team, body, field):
    response = team.clients["admin"].post(f"{TEAMS}/{team.id}/invitations", body, format="json")
    assert field in assert_envelope(response, 422)["details"]


def test_only_owners_invite_owners(team, make_user):
    make_user("future_owner")
    assert_envelope(team.clients["admin"].post(f"{TEAMS}/{team.id}/invitations",
                                               {"username": "future_owner", "role": "owner"}, format="json"), 403)
    assert team.clients["owner"].post(f"{TEAMS}/{team.id}/invitations", {"username": "future_owner", "role": "owner"},
                                      format="json").status_code == 201


def test_api_keys_work_on_team_routes_and_anonymous_callers_get_401(team, api_key_for):
    key = api_key_for(team.users["member"])["api_key"]
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    assert client.get(f"{TEAMS}/{team.id}").status_code == 200
    assert_envelope(APIClient().get(TEAMS), 401)


def test_deleting_the_owners_account_hands_the_team_over(team, make_user, make_team, as_user):
    lonely = make_team(team.users["owner"], name="Solo")
    response = team.clients["owner"].delete("/api/v1/users/account")
    assert response.status_code == 200, response.content
    assert TeamMembership.objects.get(team_id=team.id, user=team.users["admin"]).role == "owner"
    assert not Team.objects.filter(pk=lonely.pk).exists()  # nobody left to own it


def test_the_django_admin_shows_teams_and_identities(team, make_user, client):
    operator = make_user("operator", is_staff=True, is_superuser=True)
    client.force_login(operator)
    for path in ("/admin/accounts/team/", f"/admin/accounts/team/{team.id}/change/", "/admin/accounts/team/add/",
                 "/admin/accounts/teaminvitation/", "/admin/accounts/ssoidentity/",
                 "/admin/providers/providerconfig/", "/admin/support/chatbot/"):
        assert client.get(path).status_code == 200, path
