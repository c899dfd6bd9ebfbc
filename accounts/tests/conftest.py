"""Fixtures for the accounts tests (the suite-wide ones live in the root conftest.py)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def client_for():
    """An APIClient sending ``Authorization: Bearer <access>``."""

    def _client(access_token: str, **defaults) -> APIClient:
        client = APIClient(**defaults)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
        return client

    return _client


@pytest.fixture
def login(api_client, password):
    """POST /auth/login and return the JSON body (asserting 200)."""

    def _login(identifier: str, pw: str | None = None, **client_kwargs) -> dict:
        response = api_client.post("/api/v1/auth/login", {"username": identifier, "password": pw or password},
                                   format="json", **client_kwargs)
        assert response.status_code == 200, response.content
        return response.json()

    return _login


@pytest.fixture
def api_key_for(tokens_for):
    """Generate an API key for ``user`` through the API; returns the creation response body."""

    def _key(user, **body) -> dict:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access_token']}")
        response = client.post("/api/v1/auth/generate-api-key", body, format="json")
        assert response.status_code == 201, response.content
        return response.json()

    return _key


@pytest.fixture
def frozen_ratelimit_clock(monkeypatch):
    """Pin the clock django-ratelimit sees, so a fixed window cannot roll over mid-test.

    Only ``django_ratelimit.core``'s view of ``time`` changes; JWT expiry and the rest are untouched.
    """
    import time
    from types import SimpleNamespace

    import django_ratelimit.core as ratelimit_core

    now = int(time.time())
    monkeypatch.setattr(ratelimit_core, "time", SimpleNamespace(time=lambda: now))
    return now
