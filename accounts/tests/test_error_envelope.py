"""The one error envelope on every status the auth/user routes produce."""

from __future__ import annotations

from datetime import datetime

import pytest
from rest_framework.test import APIClient

from accounts.tests.helpers import (
    API_KEYS,
    ENVELOPE_KEYS,
    LOGIN,
    ME,
    PREFERENCES,
    PROFILE,
    REGISTER,
    assert_envelope,
    bearer,
)

pytestmark = pytest.mark.django_db


def test_400_malformed_json(api_client):
    response = api_client.post(LOGIN, data='{"username": "alice", "password":', content_type="application/json")

    body = assert_envelope(response, 400, code="INVALID_REQUEST")
    assert body["error"] == "bad_request"


def test_400_malformed_json_on_authenticated_route(auth_client):
    response = auth_client.put(PREFERENCES, data="{not json", content_type="application/json")

    assert_envelope(response, 400, code="INVALID_REQUEST")


def test_401_missing_credentials(api_client):
    response = api_client.get(PROFILE)

    body = assert_envelope(response, 401, code="UNAUTHORIZED")
    assert body["error"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_401_bad_token(api_client):
    body = assert_envelope(api_client.get(ME, **bearer("x.y.z")), 401)

    assert body["details"] == {}


@pytest.mark.urls("accounts.tests.admin_probe_urls")
def test_403_forbidden(auth_client, settings):
    settings.ADMIN_SECRET_KEY = "s3cret-admin-key-for-tests"

    response = auth_client.get("/api/v1/_test/admin-probe")

    body = assert_envelope(response, 403, code="FORBIDDEN")
    assert body["error"] == "forbidden"


def test_404_unknown_api_path(api_client):
    response = api_client.get("/api/v1/no/such/route")

    body = assert_envelope(response, 404, code="NOT_FOUND")
    assert body["error"] == "not_found"


def test_404_unknown_object(auth_client):
    assert_envelope(auth_client.delete(f"{API_KEYS}/key_missing"), 404, code="NOT_FOUND")


@pytest.mark.parametrize("method,path", [
    ("get", LOGIN),
    ("get", REGISTER),
    ("delete", ME),
    ("post", PREFERENCES),
])
def test_405_method_not_allowed(auth_client, method, path):
    response = getattr(auth_client, method)(path)

    body = assert_envelope(response, 405, code="METHOD_NOT_ALLOWED")
    assert body["error"] == "method_not_allowed"
    assert "Allow" in response


def test_422_validation_lists_fields(api_client):
    response = api_client.post(REGISTER, {"username": "a", "email": "bad"}, format="json")

    body = assert_envelope(response, 422, code="VALIDATION_ERROR")
    assert body["error"] == "validation_error"
    assert set(body["details"]) == {"username", "email", "password"}
    for messages in body["details"].values():
        assert isinstance(messages, list) and all(isinstance(m, str) and m for m in messages)


def test_409_conflict(api_client, user):
    response = api_client.post(REGISTER, {"username": "alice", "email": "x@example.com",
                                          "password": "another-Passphrase-1"}, format="json")

    assert_envelope(response, 409, code="CONFLICT")


def test_429_login_throttled(api_client, settings, user, frozen_ratelimit_clock):
    settings.LOGIN_RATE_PER_IP = "2/m"
    for _ in range(2):
        api_client.post(LOGIN, {"username": "alice", "password": "nope-nope-1"}, format="json")

    response = api_client.post(LOGIN, {"username": "alice", "password": "nope-nope-1"}, format="json")

    assert_envelope(response, 429, code="RATE_LIMITED")
    assert int(response["Retry-After"]) >= 1


def test_request_id_is_echoed_into_header_and_body(api_client):
    response = api_client.get(ME, HTTP_X_REQUEST_ID="client-req-123")

    body = assert_envelope(response, 401)
    assert response["X-Request-ID"] == "client-req-123"
    assert body["request_id"] == "client-req-123"


def test_invalid_request_id_is_replaced(api_client):
    response = api_client.get(ME, HTTP_X_REQUEST_ID="<script>alert(1)</script>")

    body = assert_envelope(response, 401)
    assert response["X-Request-ID"] != "<script>alert(1)</script>"
    assert body["request_id"] == response["X-Request-ID"]


def test_generated_request_ids_differ(api_client):
    first = api_client.get(ME)
    second = api_client.get(ME)

    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert first.json()["request_id"] == first["X-Request-ID"]


def test_timestamp_is_iso_utc(api_client):
    body = assert_envelope(api_client.get(ME), 401)

    assert body["timestamp"].endswith("Z")
    datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))


def test_success_responses_carry_request_headers(auth_client):
    response = auth_client.get(ME)

    assert response.status_code == 200
    assert response["X-Request-ID"]
    float(response["X-Process-Time"])
    assert not (ENVELOPE_KEYS <= set(response.json()))


def test_errors_never_html(api_client):
    for response in (api_client.get("/api/v1/auth/nothing-here"), api_client.get("/api/v1/auth/me/"),
                     APIClient().post(LOGIN, data="<xml/>", content_type="application/xml")):
        assert response.status_code >= 400
        assert "json" in response["Content-Type"]
        assert ENVELOPE_KEYS <= set(response.json())
