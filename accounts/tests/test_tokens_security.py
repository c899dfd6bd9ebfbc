"""Token lifecycle security: logout, password change, refresh reuse, forged/expired/odd JWTs."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.models import ApiKey, AuthSession, User
from accounts.tests.helpers import (
    ACCOUNT,
    CHANGE_PASSWORD,
    LOGOUT,
    ME,
    PROFILE,
    REFRESH,
    assert_envelope,
    b64url,
    b64url_json,
    bearer,
    jwt_header,
    jwt_payload,
)

pytestmark = pytest.mark.django_db


def _me(access: str):
    return APIClient().get(ME, **bearer(access))


def _refresh(raw: str):
    return APIClient().post(REFRESH, {"refresh_token": raw}, format="json")


# --- logout -----------------------------------------------------------------------------------


def test_access_token_dead_right_after_logout(user, login, client_for):
    tokens = login("alice")
    client = client_for(tokens["access_token"])
    assert client.get(ME).status_code == 200

    assert client.post(LOGOUT).status_code == 200

    assert_envelope(client.get(ME), 401)
    assert_envelope(_me(tokens["access_token"]), 401)


def test_logout_also_kills_the_sessions_refresh_token(user, login, client_for):
    tokens = login("alice")

    client_for(tokens["access_token"]).post(LOGOUT)

    assert_envelope(_refresh(tokens["refresh_token"]), 401)


def test_logout_with_refresh_token_in_body_blacklists_it(user, login, client_for):
    tokens = login("alice")

    response = client_for(tokens["access_token"]).post(LOGOUT, {"refresh_token": tokens["refresh_token"]},
                                                       format="json")

    assert response.status_code == 200
    jti = jwt_payload(tokens["refresh_token"])["jti"]
    assert BlacklistedToken.objects.filter(token__jti=jti).exists()
    assert_envelope(_refresh(tokens["refresh_token"]), 401)


def test_logout_ends_only_the_current_session(user, login, client_for):
    laptop = login("alice")
    phone = login("alice")

    client_for(laptop["access_token"]).post(LOGOUT)

    assert _me(laptop["access_token"]).status_code == 401
    assert _me(phone["access_token"]).status_code == 200
    assert _refresh(phone["refresh_token"]).status_code == 200


def test_logout_cannot_kill_another_users_refresh_token(make_user, login, client_for, password):
    make_user("alice")
    make_user("bob")
    alice = login("alice")
    bob = login("bob")

    client_for(alice["access_token"]).post(LOGOUT, {"refresh_token": bob["refresh_token"]}, format="json")

    assert _refresh(bob["refresh_token"]).status_code == 200


# --- password change --------------------------------------------------------------------------


def test_password_change_kills_every_token_and_returns_a_working_pair(user, login, password, client_for):
    current = login("alice")
    other_device = login("alice")

    response = client_for(current["access_token"]).post(
        CHANGE_PASSWORD, {"current_password": password, "new_password": "fresh-Passphrase-42"}, format="json")

    assert response.status_code == 200, response.content
    new = response.json()
    for old in (current, other_device):
        assert_envelope(_me(old["access_token"]), 401)
        assert_envelope(_refresh(old["refresh_token"]), 401)
    assert _me(new["access_token"]).status_code == 200
    rotated = _refresh(new["refresh_token"])
    assert rotated.status_code == 200
    assert _me(rotated.json()["access_token"]).status_code == 200


def test_password_change_kills_prior_sessions_in_database(user, login, password, client_for):
    tokens = login("alice")

    client_for(tokens["access_token"]).post(
        CHANGE_PASSWORD, {"current_password": password, "new_password": "fresh-Passphrase-42"}, format="json")

    live = AuthSession.objects.filter(user=user, revoked_at__isnull=True)
    assert live.count() == 1
    assert live.get().id != jwt_payload(tokens["access_token"])["sid"]


# --- refresh rotation and reuse ---------------------------------------------------------------


def test_refresh_token_reuse_is_rejected_and_revokes_the_session(user, login):
    first = login("alice")
    rotated = _refresh(first["refresh_token"])
    assert rotated.status_code == 200
    second = rotated.json()

    reuse = _refresh(first["refresh_token"])

    assert_envelope(reuse, 401, code="TOKEN_REUSED")
    # The legitimate holder's new pair dies too: the leak ended the whole session.
    assert_envelope(_me(second["access_token"]), 401)
    assert_envelope(_refresh(second["refresh_token"]), 401)
    sid = jwt_payload(first["access_token"])["sid"]
    assert AuthSession.objects.get(id=sid).revoked_at is not None


def test_refresh_reuse_does_not_touch_other_sessions(user, login):
    first = login("alice")
    other = login("alice")
    _refresh(first["refresh_token"])

    _refresh(first["refresh_token"])

    assert _me(other["access_token"]).status_code == 200


def test_refresh_for_inactive_user_is_401(user, login):
    tokens = login("alice")
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert_envelope(_refresh(tokens["refresh_token"]), 401)
    assert_envelope(_me(tokens["access_token"]), 401)


# --- malformed / hostile JWTs -----------------------------------------------------------------


def _sign(payload: dict, key: str, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


def _forged(access: str) -> str:
    return _sign(jwt_payload(access), "some-other-secret-key-that-is-long-enough-32b")


def _alg_none(access: str) -> str:
    header = b64url_json({"alg": "none", "typ": "JWT"})
    return f"{header}.{b64url_json(jwt_payload(access))}."


def _alg_none_with_signature(access: str) -> str:
    header = b64url_json({"alg": "none", "typ": "JWT"})
    return f"{header}.{b64url_json(jwt_payload(access))}.{access.split('.')[2]}"


def _expired(access: str) -> str:
    claims = jwt_payload(access)
    claims["iat"] = int(time.time()) - 7200
    claims["exp"] = int(time.time()) - 3600
    return _sign(claims, settings.SIMPLE_JWT["SIGNING_KEY"])


def _tampered_user(access: str) -> str:
    # Payload swapped, original signature kept.
    claims = jwt_payload(access)
    claims["user_id"] = "user_someoneelse00000000"
    head, _, sig = access.split(".")
    return f"{head}.{b64url_json(claims)}.{sig}"


def _hs_with_wrong_header_alg(access: str) -> str:
    claims = jwt_payload(access)
    signing_input = f"{b64url_json({'alg': 'HS512', 'typ': 'JWT'})}.{b64url_json(claims)}"
    sig = hmac.new(settings.SIMPLE_JWT["SIGNING_KEY"].encode(), signing_input.encode(), hashlib.sha512).digest()
    return f"{signing_input}.{b64url(sig)}"


def _without_sid(access: str) -> str:
    claims = jwt_payload(access)
    claims.pop("sid")
    return _sign(claims, settings.SIMPLE_JWT["SIGNING_KEY"])


def _refresh_as_access(tokens: dict) -> str:
    return tokens["refresh_token"]


HOSTILE = {
    "forged_signature": lambda t: _forged(t["access_token"]),
    "alg_none": lambda t: _alg_none(t["access_token"]),
    "alg_none_keeping_signature": lambda t: _alg_none_with_signature(t["access_token"]),
    "expired": lambda t: _expired(t["access_token"]),
    "tampered_payload": lambda t: _tampered_user(t["access_token"]),
    "hs512_header": lambda t: _hs_with_wrong_header_alg(t["access_token"]),
    "no_session_claim": lambda t: _without_sid(t["access_token"]),
    "refresh_token_as_access": _refresh_as_access,
    "garbage": lambda t: "abc.def.ghi",
    "not_a_jwt": lambda t: "hello",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("path", [ME, PROFILE])
def test_hostile_jwt_is_401_with_envelope(user, tokens_for, kind, path):
    tokens = tokens_for(user)
    assert APIClient().get(path, **bearer(tokens["access_token"])).status_code == 200  # sanity

    response = APIClient().get(path, **bearer(HOSTILE[kind](tokens)))

    body = assert_envelope(response, 401)
    assert "WWW-Authenticate" in response
    assert "alice" not in json.dumps(body)


def test_alg_none_token_is_really_unsigned(user, tokens_for):
    token = _alg_none(tokens_for(user)["access_token"])

    assert jwt_header(token)["alg"] == "none"
    assert token.endswith(".")


def test_expired_token_would_be_valid_otherwise(user, tokens_for):
    # Same construction, future expiry: accepted. Proves the 401 above is about expiry only.
    claims = jwt_payload(tokens_for(user)["access_token"])
    claims["exp"] = int(time.time()) + 600
    token = _sign(claims, settings.SIMPLE_JWT["SIGNING_KEY"])

    assert _me(token).status_code == 200


def test_invalid_token_message_is_plain(user, tokens_for):
    body = assert_envelope(_me(_forged(tokens_for(user)["access_token"])), 401)

    assert body["detail"] == "Invalid or expired token."


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer    "])
def test_bearer_without_credentials_is_401(header):
    assert_envelope(APIClient().get(ME, HTTP_AUTHORIZATION=header), 401)


def test_unknown_auth_scheme_is_treated_as_no_credentials():
    assert_envelope(APIClient().get(ME, HTTP_AUTHORIZATION="Basic YWxpY2U6cHc="), 401)


# --- account deletion -------------------------------------------------------------------------


def test_delete_account_wrong_password_is_400_and_deletes_nothing(auth_client, user):
    response = auth_client.delete(ACCOUNT, {"password": "definitely-wrong"}, format="json")

    body = assert_envelope(response, 400)
    assert "password" in body["details"]
    assert User.objects.filter(pk=user.pk).exists()
    assert auth_client.get(ME).status_code == 200


def test_delete_account_with_the_bearer_token_alone_as_seed_000_shows(auth_client, user):
    response = auth_client.delete(ACCOUNT)  # no body at all

    assert response.status_code == 200, response.content
    assert not User.objects.filter(pk=user.pk).exists()


def test_delete_account_with_an_empty_json_body(auth_client, user):
    assert auth_client.delete(ACCOUNT, {}, format="json").status_code == 200
    assert not User.objects.filter(pk=user.pk).exists()


@pytest.mark.parametrize("body", [None, "right", "wrong"])
@pytest.mark.parametrize("header", ["HTTP_X_API_KEY", "HTTP_AUTHORIZATION"])
def test_an_api_key_never_deletes_the_account(user, password, api_key_for, body, header):
    raw_key = api_key_for(user)["api_key"]
    client = APIClient()
    client.credentials(**{header: raw_key if header == "HTTP_X_API_KEY" else f"ApiKey {raw_key}"})
    data = None if body is None else {"password": password if body == "right" else "nope"}

    response = client.delete(ACCOUNT, data, format="json")

    assert assert_envelope(response, 403)["code"] == "SESSION_REQUIRED"
    assert User.objects.filter(pk=user.pk).exists()


def test_a_chatbot_key_never_deletes_the_account(user, password):
    from support.services import chatbot_api_key_create, chatbot_create

    bot = chatbot_create(owner=user, name="Bot")
    _, raw = chatbot_api_key_create(chatbot=bot)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = client.delete(ACCOUNT, {"password": password}, format="json")

    assert response.status_code == 403
    assert User.objects.filter(pk=user.pk).exists()


def test_delete_account_right_password_removes_user_and_kills_credentials(user, password, login, client_for,
                                                                          api_key_for):
    tokens = login("alice")
    raw_key = api_key_for(user)["api_key"]
    client = client_for(tokens["access_token"])

    response = client.delete(ACCOUNT, {"password": password}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["user_id"] == user.id
    assert not User.objects.filter(pk=user.pk).exists()
    assert not AuthSession.objects.filter(user_id=user.pk).exists()
    assert not ApiKey.objects.filter(user_id=user.pk).exists()
    assert_envelope(client.get(ME), 401)
    assert_envelope(_refresh(tokens["refresh_token"]), 401)
    assert_envelope(APIClient().get(ME, HTTP_X_API_KEY=raw_key), 401)
    login_again = APIClient().post("/api/v1/auth/login", {"username": "alice", "password": password},
                                   format="json")
    assert login_again.status_code == 401


def test_delete_account_form_encoded_password(auth_client, user, password):
    response = auth_client.delete(ACCOUNT, f"password={password}",
                                  content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200, response.content
    assert not User.objects.filter(pk=user.pk).exists()
