"""Property-based API testing with schemathesis against our own OpenAPI schema, over real HTTP
(our ASGI app under uvicorn in a thread): no generated input may produce a server error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from accounts.services import api_key_create
from chats.tests.gateway import with_lifespan
from providers.tests.fakeserver import FakeServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ADMIN_SECRET = "schemathesis-admin-secret-0123456789"


@pytest.fixture
def live_url(settings, openai_configured):
    settings.RATE_LIMIT_ENABLED = False
    settings.ADMIN_SECRET_KEY = ADMIN_SECRET
    with FakeServer(with_lifespan) as server:
        yield server.url


def schemathesis_run(url: str, authorization: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--url", url,
         "-H", f"Authorization: {authorization}", "--checks", "not_a_server_error", "--max-examples", "5",
         "--workers", "1", "--seed", "20261123", "--no-color", "--request-timeout", "30"],
        capture_output=True, text=True, timeout=840,
    )


# Every operation of the schema gets its examples: the run grows with the API (about 90 operations).
@pytest.mark.timeout(900)
@pytest.mark.parametrize("who", ["user", "admin"])
def test_no_generated_request_causes_a_server_error(live_url, user, who):
    authorization = f"Bearer {ADMIN_SECRET}" if who == "admin" else f"Bearer {api_key_create(user=user)[1]}"
    result = schemathesis_run(live_url, authorization)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
