"""Profile, preferences, registration validation and mass assignment."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.helpers import PREFERENCES, PROFILE, REGISTER, assert_envelope, bearer, register

pytestmark = pytest.mark.django_db


# --- profile ----------------------------------------------------------------------------------


def test_seed000_profile_shape(auth_client, user):
    response = auth_client.get(PROFILE)

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"user_id", "username", "email", "full_name", "created_at", "last_login",
                         "is_active", "preferences", "is_admin"}
    assert body["user_id"] == user.id
    assert body["preferences"] == {"theme": "system", "language": "en", "notifications": True}


def test_seed000_profile_update(auth_client, user):
    response = auth_client.put(PROFILE, {"full_name": "John Doe Jr.", "email": "john.jr@example.com"},
                               format="json")

    assert response.status_code == 200, response.content
    assert response.json()["full_name"] == "John Doe Jr."
    assert response.json()["email"] == "john.jr@example.com"
    user.refresh_from_db()
    assert (user.full_name, user.email) == ("John Doe Jr.", "john.jr@example.com")


def test_profile_patch_partial(auth_client, user):
    response = auth_client.patch(PROFILE, {"full_name": "Only Name"}, format="json")

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.full_name == "Only Name"
    assert user.email == "alice@example.com"


def test_profile_mass_assignment_is_ignored(auth_client, user, make_user):
    make_user("bob")
    original_id = user.id

    response = auth_client.put(PROFILE, {
        "full_name": "Alice A.",
        "is_staff": True, "is_superuser": True, "is_admin": True, "is_active": False,
        "id": "user_hijacked0000000000", "user_id": "user_hijacked0000000000",
        "auth_provider": "sso", "username": "bob", "password": "newpass-123456",
        "created_at": "2000-01-01T00:00:00Z", "preferences": {"theme": "dark"},
    }, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["full_name"] == "Alice A."
    assert body["id"] == original_id and body["username"] == "alice"
    assert body["is_admin"] is False and body["is_active"] is True
    user = User.objects.get(pk=original_id)
    assert user.full_name == "Alice A."
    assert user.is_staff is False and user.is_superuser is False and user.is_active is True
    assert user.auth_provider == "local"
    assert user.username == "alice"
    assert user.check_password("correct-horse-battery-9")
    assert user.preferences == {}
    assert not User.objects.filter(pk="user_hijacked0000000000").exists()
    assert User.objects.filter(username="bob").count() == 1


def test_profile_email_taken_by_other_user_case_insensitive_is_409(auth_client, user, make_user):
    make_user("bob", email="bob@example.com")

    response = auth_client.put(PROFILE, {"email": "BOB@Example.com"}, format="json")

    body = assert_envelope(response, 409, code="CONFLICT")
    assert "email" in body["details"]
    user.refresh_from_db()
    assert user.email == "alice@example.com"


def test_profile_own_email_in_other_case_is_allowed(auth_client, user):
    response = auth_client.put(PROFILE, {"email": "ALICE@example.com"}, format="json")

    assert response.status_code == 200


def test_profile_invalid_email_is_422(auth_client):
    body = assert_envelope(auth_client.put(PROFILE, {"email": "not-an-email"}, format="json"), 422)

    assert "email" in body["details"]


# --- registration validation ------------------------------------------------------------------


def test_register_ignores_privilege_fields(api_client):
    response = register(api_client, "sneaky", is_staff=True, is_superuser=True, is_admin=True,
                        is_active=False, id="user_chosen000000000000", auth_provider="local")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["is_admin"] is False and body["user_info"]["is_admin"] is False
    user = User.objects.get(username="sneaky")
    assert user.is_staff is False and user.is_superuser is False and user.is_active is True
    assert user.id != "user_chosen000000000000"


@pytest.mark.parametrize("username,email", [
    ("Alice", "new@example.com"),
    ("ALICE", "new@example.com"),
    ("newname", "ALICE@EXAMPLE.COM"),
    ("newname", "alice@example.com"),
])
def test_register_duplicate_is_409_case_insensitively(api_client, user, username, email):
    response = register(api_client, username, email=email)

    body = assert_envelope(response, 409, code="CONFLICT")
    field = "username" if username.lower() == "alice" else "email"
    assert field in body["details"]
    assert User.objects.count() == 1


@pytest.mark.parametrize("password,reason", [
    ("short7!", "too short"),
    ("password", "common"),
    ("1234567890123", "numeric"),
    ("john_doe_1", "similar to username"),
])
def test_register_weak_password_is_422_naming_the_field(api_client, password, reason):
    response = register(api_client, "john_doe", password=password)

    body = assert_envelope(response, 422)
    assert "password" in body["details"], reason
    assert body["details"]["password"]
    assert not User.objects.filter(username="john_doe").exists()


def test_register_missing_fields_lists_each_in_details(api_client):
    response = api_client.post(REGISTER, {"username": "john_doe"}, format="json")

    body = assert_envelope(response, 422, code="VALIDATION_ERROR")
    assert {"email", "password"} <= set(body["details"])
    assert "username" not in body["details"]


@pytest.mark.parametrize("username", ["ab", "has space", "semi;colon", "x" * 151, "user@name"])
def test_register_bad_username_is_422(api_client, username):
    body = assert_envelope(register(api_client, username, email="ok@example.com"), 422)

    assert "username" in body["details"]
    assert not User.objects.exists()


def test_register_bad_email_is_422(api_client):
    body = assert_envelope(register(api_client, "john_doe", email="nope"), 422)

    assert "email" in body["details"]


# --- preferences ------------------------------------------------------------------------------


def test_preferences_defaults(auth_client):
    response = auth_client.get(PREFERENCES)

    assert response.status_code == 200
    assert response.json() == {"theme": "system", "language": "en", "notifications": True}


def test_seed000_preferences_update_persists(auth_client, user):
    body = {"theme": "light", "language": "en", "notifications": False, "max_tokens": 200,
            "default_model": "gpt-4"}

    response = auth_client.put(PREFERENCES, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == body
    assert auth_client.get(PREFERENCES).json() == body
    assert auth_client.get(PROFILE).json()["preferences"]["theme"] == "light"
    user.refresh_from_db()
    assert user.preferences["max_tokens"] == 200


def test_preferences_update_merges(auth_client):
    auth_client.put(PREFERENCES, {"theme": "dark", "max_tokens": 100}, format="json")

    response = auth_client.put(PREFERENCES, {"language": "fr"}, format="json")

    assert response.json()["theme"] == "dark"
    assert response.json()["max_tokens"] == 100
    assert response.json()["language"] == "fr"


@pytest.mark.parametrize("field,value", [
    ("theme", "neon"),
    ("language", "English!!"),
    ("notifications", "maybe"),
    ("max_tokens", 0),
    ("max_tokens", "lots"),
    ("temperature", 3.5),
])
def test_preferences_bad_value_is_422_naming_the_field(auth_client, user, field, value):
    response = auth_client.put(PREFERENCES, {field: value}, format="json")

    body = assert_envelope(response, 422)
    assert field in body["details"]
    user.refresh_from_db()
    assert user.preferences == {}


def test_preferences_unknown_key_is_422(auth_client, user):
    response = auth_client.put(PREFERENCES, {"theme": "dark", "is_staff": True}, format="json")

    body = assert_envelope(response, 422)
    assert "is_staff" in body["details"]
    user.refresh_from_db()
    assert user.preferences == {}
    assert user.is_staff is False


def test_preferences_require_auth():
    assert_envelope(APIClient().get(PREFERENCES), 401)
    assert_envelope(APIClient().put(PREFERENCES, {"theme": "dark"}, format="json"), 401)


def test_preferences_are_per_user(auth_client, make_user, tokens_for):
    bob = make_user("bob")
    auth_client.put(PREFERENCES, {"theme": "dark"}, format="json")

    bobs = APIClient().get(PREFERENCES, **bearer(tokens_for(bob)["access_token"])).json()

    assert bobs["theme"] == "system"
