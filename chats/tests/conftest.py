"""Fixtures of the chats tests."""

from __future__ import annotations

import pytest

from chats.tests.gateway import with_lifespan
from providers.tests.fakeserver import FakeServer


@pytest.fixture(scope="session")
def gateway_url():
    """Our ASGI app served by a real uvicorn on 127.0.0.1 (for the official SDKs)."""
    with FakeServer(with_lifespan) as server:
        yield server.url
