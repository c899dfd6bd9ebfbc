"""Shared helpers for the accounts test-suite (not a test module)."""

from __future__ import annotations

import base64
import json
from typing import Any

ENVELOPE_KEYS = {"detail", "message", "error", "code", "status_code", "request_id", "timestamp", "details"}

API = "/api/v1"
REGISTER = f"{API}/auth/register"
LOGIN = f"{API}/auth/login"
REFRESH = f"{API}/auth/refresh"
LOGOUT = f"{API}/auth/logout"
ME = f"{API}/auth/me"
CHANGE_PASSWORD = f"{API}/auth/change-password"
GENERATE_KEY = f"{API}/auth/generate-api-key"
API_KEYS = f"{API}/auth/api-keys"
PROFILE = f"{API}/users/profile"
PREFERENCES = f"{API}/users/preferences"
ACCOUNT = f"{API}/users/account"


def assert_envelope(response, status_code: int, *, code: str | None = None,
                    with_request_id: bool = True) -> dict[str, Any]:
    """Assert ``response`` is the one error envelope with ``status_code``; return the body."""
    assert response.status_code == status_code, (response.status_code, getattr(response, "content", b"")[:500])
    assert "json" in response["Content-Type"], response["Content-Type"]
    body = json.loads(response.content)
    missing = ENVELOPE_KEYS - set(body)
    assert not missing, f"envelope keys missing: {missing} in {body}"
    assert body["status_code"] == status_code
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["message"] == body["detail"]
    assert isinstance(body["details"], dict)
    assert body["timestamp"]
    if code is not None:
        assert body["code"] == code, body
    if with_request_id:
        assert body["request_id"], body
        assert body["request_id"] == response["X-Request-ID"]
    return body


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def jwt_payload(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT."""
    part = token.split(".")[1]
    part += "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(part))


def jwt_header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    part += "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(part))


def register(client, username: str = "john_doe", *, email: str | None = None,
             password: str = "securepassword123", **extra):
    body = {"username": username, "email": email or f"{username}@example.com", "password": password, **extra}
    return client.post(REGISTER, body, format="json")
