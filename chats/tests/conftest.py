"""Fixtures of the chats tests."""

from __future__ import annotations

import pytest

from providers.tests.fakeserver import FakeServer


async def _with_lifespan(scope, receive, send):
    """Our ASGI app, plus the lifespan handshake uvicorn starts with (Channels' router has none)."""
    from chatplatform.asgi import application

    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await application(scope, receive, send)


@pytest.fixture(scope="session")
def gateway_url():
    """Our ASGI app served by a real uvicorn on 127.0.0.1 (for the official SDKs)."""
    with FakeServer(_with_lifespan) as server:
        yield server.url
