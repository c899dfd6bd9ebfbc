"""Our ASGI application as a real server would run it (for tests that use official SDKs over HTTP)."""

from __future__ import annotations


async def with_lifespan(scope, receive, send):
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
