"""Each seed's documented auth examples, sent exactly as its client sends them."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from accounts.models import AuthSession, User
from accounts.tests.helpers import (
    API_KEYS,
    CHANGE_PASSWORD,
    GENERATE_KEY,
    LOGIN,
    LOGOUT,
    ME,
    PROFILE,
    REFRESH,
    REGISTER,
    assert_envelope,
    bearer,
    jwt_payload,
)

pytestmark = pytest.mark.django_db

SEED000_REGISTER = {
    "username": "john_doe",
    "email": "john@example.com",
    "password": "securepassword123",
    "full_name": "John Doe",
}
SEED003_USER_FIELDS = {"id", "username", "email", "full_name", "is_active", "is_admin", "created_at"}
USER_INFO_FIELDS = {"user_id", "username", "email", "full_name", "is_admin"}


def _parse_dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- register ---------------------------------------------------------------------------------


def test_seed000_register_response_shape(api_client):
    response = api_client.post(REGISTER, SEED000_REGISTER, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert body["access_token"].count(".") == 2
    assert body["refresh_token"].count(".") == 2
    assert body["access_token"] != body["refresh_token"]
    info = body["user_info"]
    assert set(info) >= USER_INFO_FIELDS
    assert info["username"] == "john_doe"
    assert info["email"] == "john@example.com"
    assert info["full_name"] == "John Doe"
    assert info["is_admin"] is False
    assert info["user_id"].startswith("user_")
    user = User.objects.get(username="john_doe")
    assert info["user_id"] == user.id
    assert user.check_password("securepassword123")
    assert user.password != "securepassword123"


def test_seed003_register_top_level_user_fields(api_client):
    # Seed 003 sends full_name as optional and reads the user's own fields at the top level.
    response = api_client.post(REGISTER, {"username": "string_user", "email": "user@example.com",
                                          "password": "an0ther-Passphrase"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= SEED003_USER_FIELDS
    user = User.objects.get(username="string_user")
    assert body["id"] == user.id
    assert body["id"] == body["user_info"]["user_id"]
    assert body["username"] == "string_user"
    assert body["email"] == "user@example.com"
    assert body["full_name"] == ""
    assert body["is_active"] is True
    assert body["is_admin"] is False
    _parse_dt(body["created_at"])
    assert "password" not in body


def test_seed004_register_with_auth_provider_local(api_client):
    response = api_client.post(REGISTER, {"email": "user@example.com", "username": "johndoe",
                                          "password": "SecurePassword123!", "auth_provider": "local"},
                               format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["auth_provider"] == "local"
    assert body["token_type"] == "bearer"
    assert User.objects.get(username="johndoe").auth_provider == "local"


def test_register_rejects_sso_auth_provider_with_password(api_client):
    response = api_client.post(REGISTER, {"email": "user@example.com", "username": "johndoe",
                                          "password": "SecurePassword123!", "auth_provider": "sso"},
                               format="json")

    body = assert_envelope(response, 422)
    assert "auth_provider" in body["details"]
    assert not User.objects.filter(username="johndoe").exists()


def test_register_tokens_authenticate_immediately(api_client):
    body = api_client.post(REGISTER, SEED000_REGISTER, format="json").json()

    me = APIClient().get(ME, **bearer(body["access_token"]))

    assert me.status_code == 200
    assert me.json()["username"] == "john_doe"
    claims = jwt_payload(body["access_token"])
    assert claims["user_id"] == body["id"]
    assert AuthSession.objects.filter(id=claims["sid"], user_id=body["id"], revoked_at=None).exists()


# --- login ------------------------------------------------------------------------------------


def test_seed000_login_by_username_json_same_as_registration(api_client, make_user):
    user = make_user("john_doe", email="john@example.com", full_name="John Doe", password="securepassword123")

    response = api_client.post(LOGIN, {"username": "john_doe", "password": "securepassword123"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert body["access_token"] and body["refresh_token"]
    assert body["user_info"] == {"user_id": user.id, "username": "john_doe", "email": "john@example.com",
                                 "full_name": "John Doe", "is_admin": False}
    assert set(body) >= SEED003_USER_FIELDS
    assert body["id"] == user.id
    user.refresh_from_db()
    assert user.last_login is not None


def test_seed004_login_with_email_in_username_field(api_client, make_user):
    user = make_user("someone", email="user@example.com", password="password123-long")

    response = api_client.post(LOGIN, {"username": "user@example.com", "password": "password123-long"},
                               format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user_info"]["user_id"] == user.id
    assert set(body) >= {"access_token", "refresh_token", "token_type", "expires_in"}
    assert APIClient().get(ME, **bearer(body["access_token"])).json()["id"] == user.id


def test_login_with_email_field(api_client, user, password):
    response = api_client.post(LOGIN, {"email": user.email, "password": password}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["user_info"]["user_id"] == user.id


def test_login_identifier_is_case_insensitive(api_client, user, password):
    by_name = api_client.post(LOGIN, {"username": "ALICE", "password": password}, format="json")
    by_mail = api_client.post(LOGIN, {"username": "Alice@Example.COM", "password": password}, format="json")

    assert by_name.status_code == 200 and by_name.json()["id"] == user.id
    assert by_mail.status_code == 200 and by_mail.json()["id"] == user.id


@pytest.mark.parametrize("identifier", ["alice", "alice@example.com"])
def test_login_form_urlencoded(api_client, user, password, identifier):
    response = api_client.post(LOGIN, urlencode({"username": identifier, "password": password}),
                               content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user_info"]["user_id"] == user.id
    assert APIClient().get(ME, **bearer(body["access_token"])).status_code == 200


def test_login_multipart_form(api_client, user, password):
    response = api_client.post(LOGIN, {"username": "alice", "password": password}, format="multipart")

    assert response.status_code == 200, response.content
    assert response.json()["id"] == user.id


@pytest.mark.parametrize("body", [
    {"username": "alice", "password": "wrong-password-1"},
    {"username": "nobody", "password": "wrong-password-1"},
    {"username": "nobody@example.com", "password": "whatever-123"},
])
def test_login_bad_credentials_is_401_without_revealing_which(api_client, user, body):
    response = api_client.post(LOGIN, body, format="json")

    envelope = assert_envelope(response, 401, code="INVALID_CREDENTIALS")
    assert envelope["detail"] == "Incorrect username or password."
    assert "access_token" not in envelope


def test_login_inactive_user_with_right_password_is_401(api_client, make_user, password):
    make_user("sleepy", is_active=False)

    response = api_client.post(LOGIN, {"username": "sleepy", "password": password}, format="json")

    assert_envelope(response, 401)
    assert not AuthSession.objects.filter(user__username="sleepy").exists()


def test_login_missing_identifier_is_422_naming_username(api_client):
    response = api_client.post(LOGIN, {"password": "x" * 10}, format="json")

    body = assert_envelope(response, 422)
    assert "username" in body["details"]


# --- refresh / logout / me --------------------------------------------------------------------


def test_refresh_with_refresh_token_returns_new_working_pair(api_client, user, login):
    first = login("alice")

    response = api_client.post(REFRESH, {"refresh_token": first["refresh_token"]}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert body["access_token"] != first["access_token"]
    assert body["refresh_token"] != first["refresh_token"]
    assert body["user_info"]["user_id"] == user.id
    # The same session continues.
    assert jwt_payload(body["access_token"])["sid"] == jwt_payload(first["access_token"])["sid"]
    assert APIClient().get(ME, **bearer(body["access_token"])).status_code == 200
    again = api_client.post(REFRESH, {"refresh_token": body["refresh_token"]}, format="json")
    assert again.status_code == 200


def test_refresh_accepts_simplejwt_style_refresh_key(api_client, user, login):
    first = login("alice")

    response = api_client.post(REFRESH, {"refresh": first["refresh_token"]}, format="json")

    assert response.status_code == 200, response.content


def test_refresh_without_token_is_422(api_client):
    body = assert_envelope(api_client.post(REFRESH, {}, format="json"), 422)
    assert "refresh_token" in body["details"]


def test_refresh_with_garbage_is_401(api_client):
    assert_envelope(api_client.post(REFRESH, {"refresh_token": "not.a.jwt"}, format="json"), 401)


def test_access_token_is_not_a_refresh_token(api_client, user, login):
    tokens = login("alice")

    response = api_client.post(REFRESH, {"refresh_token": tokens["access_token"]}, format="json")

    assert_envelope(response, 401)


def test_seed000_logout_response(user, login, client_for):
    tokens = login("alice")

    response = client_for(tokens["access_token"]).post(LOGOUT)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"] == "Successfully logged out"
    assert body["user_id"] == user.id
    _parse_dt(body["logged_out_at"])


def test_logout_requires_authentication(api_client):
    assert_envelope(api_client.post(LOGOUT), 401)


def test_seed003_me_fields(auth_client, user):
    response = auth_client.get(ME)

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= SEED003_USER_FIELDS | {"user_id", "last_login"}
    assert body["id"] == body["user_id"] == user.id
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.com"
    assert body["is_active"] is True
    assert body["is_admin"] is False
    assert "password" not in body


def test_me_reports_admin_for_staff(make_user, tokens_for, client_for):
    staff = make_user("root", is_staff=True)

    body = client_for(tokens_for(staff)["access_token"]).get(ME).json()

    assert body["is_admin"] is True


def test_me_without_credentials_is_401(api_client):
    response = api_client.get(ME)

    assert_envelope(response, 401)
    assert "WWW-Authenticate" in response


# --- change password --------------------------------------------------------------------------


def _change_password_ok(response, user, new_password):
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"]
    assert body["token_type"] == "bearer"
    user.refresh_from_db()
    assert user.check_password(new_password)
    assert APIClient().get(ME, **bearer(body["access_token"])).status_code == 200
    return body


def test_seed000_change_password_form_urlencoded(auth_client, user, password):
    new = "a-brand-new-passphrase-7"

    response = auth_client.post(CHANGE_PASSWORD, urlencode({"current_password": password, "new_password": new}),
                                content_type="application/x-www-form-urlencoded")

    _change_password_ok(response, user, new)


def test_change_password_multipart_form(auth_client, user, password):
    new = "a-brand-new-passphrase-7"

    response = auth_client.post(CHANGE_PASSWORD, {"current_password": password, "new_password": new},
                                format="multipart")

    _change_password_ok(response, user, new)


def test_change_password_json(auth_client, user, password, api_client):
    new = "a-brand-new-passphrase-7"

    response = auth_client.post(CHANGE_PASSWORD, {"current_password": password, "new_password": new},
                                format="json")

    _change_password_ok(response, user, new)
    assert api_client.post(LOGIN, {"username": "alice", "password": new}, format="json").status_code == 200
    assert api_client.post(LOGIN, {"username": "alice", "password": password}, format="json").status_code == 401


def test_change_password_wrong_current_is_400_and_keeps_password(auth_client, user, password):
    response = auth_client.post(CHANGE_PASSWORD, {"current_password": "not-it-at-all",
                                                  "new_password": "a-brand-new-passphrase-7"}, format="json")

    body = assert_envelope(response, 400)
    assert "current_password" in body["details"]
    user.refresh_from_db()
    assert user.check_password(password)
    assert auth_client.get(ME).status_code == 200


@pytest.mark.parametrize("new_password", ["short1", "password123", "12345678901", "alice123"])
def test_change_password_weak_new_password_is_422(auth_client, user, password, new_password):
    response = auth_client.post(CHANGE_PASSWORD, {"current_password": password, "new_password": new_password},
                                format="json")

    body = assert_envelope(response, 422)
    assert "new_password" in body["details"]
    user.refresh_from_db()
    assert user.check_password(password)


def test_change_password_same_as_current_is_422(auth_client, password):
    response = auth_client.post(CHANGE_PASSWORD, {"current_password": password, "new_password": password},
                                format="json")

    body = assert_envelope(response, 422)
    assert "new_password" in body["details"]


# --- API keys in use --------------------------------------------------------------------------


def _key_headers(style: str, raw: str) -> dict[str, str]:
    return {
        "apikey": {"HTTP_AUTHORIZATION": f"ApiKey {raw}"},
        "x-api-key": {"HTTP_X_API_KEY": raw},
        "bearer": {"HTTP_AUTHORIZATION": f"Bearer {raw}"},
    }[style]


@pytest.mark.parametrize("style", ["apikey", "x-api-key", "bearer"])
@pytest.mark.parametrize("path", [ME, PROFILE])
def test_generated_api_key_authenticates_like_the_jwt(auth_client, user, style, path):
    created = auth_client.post(GENERATE_KEY, {}, format="json")
    assert created.status_code == 201, created.content
    raw = created.json()["api_key"]
    assert raw.startswith("cpk_")

    via_key = APIClient().get(path, **_key_headers(style, raw))
    via_jwt = auth_client.get(path)

    assert via_key.status_code == 200, via_key.content
    assert via_key.json() == via_jwt.json()
    assert via_key.json()["id"] == user.id


def test_generate_api_key_response(auth_client, user):
    response = auth_client.post(GENERATE_KEY, {"name": "ci", "expires_in_days": 30}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "ci"
    assert body["api_key"].startswith(f"cpk_{body['prefix']}_")
    assert body["masked_key"].startswith(f"cpk_{body['prefix']}_")
    assert body["api_key"] not in body["masked_key"]
    assert body["is_active"] is True
    assert body["expires_at"] is not None
    assert body["message"]
    listed = auth_client.get(API_KEYS).json()
    assert [k["id"] for k in listed] == [body["id"]]


def test_generate_api_key_without_body(auth_client):
    # Seed 000 documents no body at all.
    response = auth_client.post(GENERATE_KEY)

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "default"


# --- seed SDK flows ---------------------------------------------------------------------------


def test_seed000_python_sdk_flow(make_user):
    make_user("john_doe", email="john@example.com", password="password123-ok")
    client = APIClient()  # like ``requests``: no session state between calls

    response = client.post("/api/v1/auth/login", {"username": "john_doe", "password": "password123-ok"},
                           format="json")
    token = response.json()["access_token"]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    me = client.get("/api/v1/auth/me", **headers)
    profile = client.get("/api/v1/users/profile", **headers)

    assert me.status_code == 200 and me.json()["username"] == "john_doe"
    assert profile.status_code == 200 and profile.json()["user_id"] == me.json()["user_id"]


def test_seed003_client_flow_register_login_me(api_client):
    reg = api_client.post(REGISTER, {"username": "cs_agent", "email": "agent@example.com",
                                     "password": "Str0ng-enough-pw", "full_name": "Agent"}, format="json")
    assert reg.status_code == 201

    login = api_client.post(LOGIN, {"username": "cs_agent", "password": "Str0ng-enough-pw"}, format="json")
    token = login.json()["access_token"]
    assert login.json()["token_type"] == "bearer"

    me = APIClient().get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.status_code == 200
    assert {k: me.json()[k] for k in ("id", "username", "email", "full_name", "is_active", "is_admin")} == {
        "id": reg.json()["id"], "username": "cs_agent", "email": "agent@example.com",
        "full_name": "Agent", "is_active": True, "is_admin": False,
    }


def test_seed004_curl_flow_login_by_email_then_bearer(make_user):
    make_user("johndoe", email="user@example.com", password="SecurePassword123!")
    client = APIClient()

    login = client.post(LOGIN, data='{"username":"user@example.com","password":"SecurePassword123!"}',
                        content_type="application/json")
    token = login.json()["access_token"]

    assert client.get(PROFILE, HTTP_AUTHORIZATION=f"Bearer {token}").json()["email"] == "user@example.com"
