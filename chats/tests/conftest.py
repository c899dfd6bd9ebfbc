"""Fixtures of the chats tests."""

from __future__ import annotations

import anthropic
import openai
import pytest

from accounts.services import api_key_create
from chats.tests.gateway import with_lifespan
from providers.tests.fakeserver import FakeServer


@pytest.fixture(scope="session")
def gateway_url():
    """Our ASGI app served by a real uvicorn on 127.0.0.1 (for the official SDKs)."""
    with FakeServer(with_lifespan) as server:
        yield server.url


@pytest.fixture
def api_key(user):
    """(ApiKey, raw key) of ``user``."""
    key, raw = api_key_create(user=user, name="sdk")
    return key, raw


@pytest.fixture
def openai_client(gateway_url, api_key):
    """The official ``openai`` SDK pointed at our ``/v1``."""
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=api_key[1], max_retries=0, timeout=20)


@pytest.fixture
def anthropic_client(gateway_url, api_key):
    """The official ``anthropic`` SDK pointed at our server (it appends ``/v1/messages`` itself)."""
    return anthropic.Anthropic(base_url=gateway_url, api_key=api_key[1], max_retries=0, timeout=20)
