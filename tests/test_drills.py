"""Outage drills against the real services (issue 9, item 15): Redis stopped and started again,
PostgreSQL restarted, stopped and started, under a running two-worker server.

These stop services, so they are a marked set of their own (``-m drill``), run by ``.ci/run`` as a
separate step: the main suite never sees its database go away. Redis is the stack's private
redis-server; PostgreSQL is the machine's service (``service postgresql ...``, as root). Every
drill leaves the services running, whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import time

import httpx
import pytest

from providers.tests.fakeserver import Step
from tests.live import recv_json, skip_unless_required, wait_until, ws_connect

pytestmark = [pytest.mark.drill, pytest.mark.slow]

OUTAGE_ANSWER_SECONDS = 8  # a request during an outage is answered (503) within this


async def register(client: httpx.AsyncClient) -> str:
    name = f"drill_{secrets.token_hex(4)}"
    response = await client.post("/api/v1/auth/register", json={
        "username": name, "email": f"{name}@example.com", "password": "correct-horse-battery-9"})
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


async def chat_message(base_url: str, token: str, text: str = "hello") -> httpx.Response:
    """``POST /api/v1/chat/message`` on a fresh TCP connection (so on whichever worker accepts it)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await client.post("/api/v1/chat/message", json={"message": text},
                                 headers={"Authorization": f"Bearer {token}"})


def assert_unavailable(response: httpx.Response, component: str) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["code"] == "SERVICE_UNAVAILABLE" and body["status_code"] == 503, body
    assert body["details"]["component"] == component, body
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert int(response.headers["Retry-After"]) > 0


async def timed(coro) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await coro
    return response, time.monotonic() - started


# --- Redis ------------------------------------------------------------------------------------


async def test_redis_stopped_then_started(live):
    base = live.server.url
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = await register(client)
    auth = {"Authorization": f"Bearer {token}"}
    assert (await chat_message(base, token)).status_code == 200
    ws, _ = await ws_connect(live.server)  # open across the whole outage
    # A reply streaming across the outage: 40 words, one every 0.5 s.
    words = [f"w{i}" for i in range(40)]
    live.upstream.push(Step(text=" ".join(words), chunk_delay=0.5))
    streaming_ws, _ = await ws_connect(live.server)
    await streaming_ws.send(json.dumps({"type": "chat", "id": "across", "data": {"message": "go", "stream": True}}))
    frames = [await recv_json(streaming_ws, timeout=15) for _ in range(3)]
    try:
        live.redis.stop()
        try:
            # A chat needs Redis (its reply streams through the hub): 503 naming it, as JSON.
            response, seconds = await timed(chat_message(base, token))
            assert_unavailable(response, "redis")
            assert seconds < OUTAGE_ANSWER_SECONDS, seconds
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                # A plain async view (SSE) says the same before any byte of a stream.
                assert_unavailable(await client.post("/api/v1/chat/stream", json={"message": "hi"}), "redis")
                # Routes that only need the database keep working: rate limiting fails open.
                listed = await client.get("/api/v1/chat/conversations", headers=auth)
                assert listed.status_code == 200, listed.text
                assert "X-RateLimit-Limit" not in listed.headers  # no counters, so no claims about them
                health = await client.get("/api/v1/health/detailed")
                assert health.status_code == 503 and health.json()["components"]["cache"]["status"] == "unhealthy"
            # The idle socket is still open and answers frames that need no Redis.
            await ws.send(json.dumps({"type": "ping", "id": "during"}))
            assert (await recv_json(ws, timeout=10))["type"] == "pong"
            await asyncio.sleep(6)  # longer than a blocking read: the socket must survive it
        finally:
            live.redis.start()
        # Back at once: the first request after Redis returns succeeds, on every worker.
        for n in range(6):
            response = await chat_message(base, token, f"back {n}")
            assert response.status_code == 200, (n, response.status_code, response.text[:500])
        # The reply that was streaming went on: nothing lost, nothing repeated.
        while (frame := await recv_json(streaming_ws, timeout=60))["type"] == "stream":
            frames.append(frame)
        assert frame["type"] == "complete", frame
        assert "".join(f["data"]["chunk"] for f in frames) == " ".join(words) == frame["data"]["response"]
        # The socket that lived through the outage chats again.
        live.upstream.push(Step(text="after the outage"))
        await ws.send(json.dumps({"type": "chat", "id": "after", "data": {"message": "hi", "stream": True}}))
        while (frame := await recv_json(ws, timeout=30))["type"] == "stream":
            pass
        assert frame["type"] == "complete", frame
        assert frame["data"]["response"] == "after the outage"
    finally:
        await ws.close()
        await streaming_ws.close()


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_service(action: str) -> None:
    subprocess.run(["service", "postgresql", action], check=True, timeout=120, stdout=subprocess.DEVNULL)
    if action != "stop":
        wait_until(lambda: subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0,
                   timeout=60, interval=0.5, what="PostgreSQL to accept connections")


def _pg_drill_reason() -> str | None:
    if os.geteuid() != 0 or shutil.which("service") is None or shutil.which("pg_isready") is None:
        return "the PostgreSQL drill restarts the machine's service: needs root, `service` and pg_isready"
    return None


async def test_postgresql_restarted_stopped_and_started(live):
    reason = _pg_drill_reason()
    if reason:
        skip_unless_required(reason)
    base = live.server.url
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = await register(client)
    # Warm both workers' pools, so there are pooled connections for the restart to break.
    for n in range(6):
        assert (await chat_message(base, token, f"warm {n}")).status_code == 200
    try:
        _pg_service("restart")
        # Every pooled connection is now dead; none may reach a request.
        for n in range(10):
            response = await chat_message(base, token, f"after restart {n}")
            assert response.status_code == 200, (n, response.status_code, response.text[:500])

        _pg_service("stop")
        response, seconds = await timed(chat_message(base, token))
        assert_unavailable(response, "database")
        assert seconds < OUTAGE_ANSWER_SECONDS, seconds
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            listed = await client.get("/api/v1/chat/conversations", headers={"Authorization": f"Bearer {token}"})
        assert_unavailable(listed, "database")
    finally:
        _pg_service("start")
    # Recovers by itself (no server restart): answered within the pool's reconnect backoff.
    deadline = time.monotonic() + 30
    while (response := await chat_message(base, token, "back")).status_code != 200:
        assert time.monotonic() < deadline, (response.status_code, response.text[:500])
        await asyncio.sleep(0.5)
    for n in range(10):
        response = await chat_message(base, token, f"steady {n}")
        assert response.status_code == 200, (n, response.status_code, response.text[:500])
