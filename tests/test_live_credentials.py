"""Remembered credentials across two workers: a revocation on one is refused by the other at once."""

from __future__ import annotations

import secrets

import pytest

pytestmark = pytest.mark.slow


def test_a_key_revoked_on_one_worker_is_refused_by_the_other(live):
    with live.server.http_client_on_worker() as (first, pid, _), \
            live.server.http_client_on_worker(other_than=pid) as (second, _, _):
        name = f"creds_{secrets.token_hex(4)}"
        registered = first.post("/api/v1/auth/register", json={
            "username": name, "email": f"{name}@example.com", "password": "correct-horse-battery-9"})
        assert registered.status_code == 201, registered.text
        access = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        created = first.post("/api/v1/auth/generate-api-key", json={}, headers=access).json()
        key = {"Authorization": f"Bearer {created['api_key']}"}
        for client in (first, second, first, second):  # both workers remember the key and the session
            assert client.get("/api/v1/auth/me", headers=key).status_code == 200
            assert client.get("/api/v1/auth/me", headers=access).status_code == 200

        assert first.delete(f"/api/v1/auth/api-keys/{created['id']}", headers=access).status_code == 200
        assert second.get("/api/v1/auth/me", headers=key).status_code == 401  # no wait: the next request

        assert second.post("/api/v1/auth/logout", json={}, headers=access).status_code == 200
        assert first.get("/api/v1/auth/me", headers=access).status_code == 401
