"""Outage drills against the real services (issue 9, item 15): Redis stopped and started again,
PostgreSQL restarted, stopped and started, under a running two-worker server. Fault drills (issue
14): a provider that hangs, stops sending, answers 5xx/429 or drops the connection mid-stream, and
a Celery worker killed mid-task; those stop no shared service (``-k "provider or celery"``).

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
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from providers.tests.fake_anthropic import FakeAnthropic
from providers.tests.fake_openai import FakeOpenAI
from providers.tests.fakeserver import Step, serving
from tests.live import ROOT, LiveServer, _libpq, recv_json, skip_unless_required, sse_events, wait_until, ws_connect

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


# --- Provider faults: hangs, 5xx/429, drops mid-stream (issue 14) ---------------------------------
#
# A second server on the live stack's database, with a Redis database of its own, whose provider
# calls time out after PROVIDER_TIMEOUT seconds with one retry; gpt-4o-mini falls back to Claude (a
# fake Anthropic upstream), a request naming no model has no fallback. Every drill then checks the
# documented outcome (a clear error, the user's message kept, the reply saved with status
# ``error``) and that the same worker serves the next request normally.

PROVIDER_TIMEOUT = 2.0
PROVIDER_MAX_RETRIES = 1
ATTEMPTS = PROVIDER_MAX_RETRIES + 1
HANG_SECONDS = 12  # far longer than the timeout: an answer within it is our server's doing
SLACK_SECONDS = 3.0  # backoff (at most 0.25 s before the one retry) and the turn's own work
BREAKER_THRESHOLD = 2 * ATTEMPTS  # two failed requests in a row open a worker's breaker
BREAKER_COOLDOWN = 8.0  # room for the checks made while it is open, on a busy machine too
VISIBILITY_SECONDS = 5  # CELERY_VISIBILITY_TIMEOUT: a dead worker's task goes to another after this


@dataclass
class Faults:
    server: LiveServer
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    redis_url: str
    database_url: str
    log_dir: Path


@pytest.fixture(scope="module")
def fault_stack(live_stack, tmp_path_factory) -> Iterator[Faults]:
    log_dir = tmp_path_factory.mktemp("faults")
    redis_url = live_stack.redis.url.rsplit("/", 1)[0] + "/2"
    with serving(FakeAnthropic()) as anthropic:
        env = {**live_stack.server.env, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url,
               "PROVIDER_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT), "PROVIDER_MAX_RETRIES": str(PROVIDER_MAX_RETRIES),
               "ANTHROPIC_API_KEY": "sk-ant-live-test-0000", "ANTHROPIC_BASE_URL": anthropic.url,
               "MODEL_FALLBACKS": "gpt-4o-mini=claude-sonnet-4.5", "DEFAULT_FALLBACKS": "none",
               "PROVIDER_BREAKER_THRESHOLD": str(BREAKER_THRESHOLD),
               "PROVIDER_BREAKER_COOLDOWN_SECONDS": str(BREAKER_COOLDOWN),
               "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_SECONDS)}
        server = LiveServer(env=env, log=log_dir / "server.log")
        server.start(workers=2)
        try:
            yield Faults(server=server, openai=live_stack.upstream, anthropic=anthropic, redis_url=redis_url,
                         database_url=live_stack.database.url, log_dir=log_dir)
        finally:
            server.stop()


@pytest.fixture
def faults(fault_stack: Faults, live) -> Faults:
    """The fault server, both upstreams' scripts and logs cleared, and every worker's circuit
    breaker closed: the failures an earlier drill left on a worker (its breaker is per process)
    must not open it in this one. A success on each worker resets its count."""
    with fault_stack.server.http_client_on_worker() as (client, first, _):
        _closes_the_breaker(client, fault_stack)
    with fault_stack.server.http_client_on_worker(other_than=first) as (client, _, _):
        _closes_the_breaker(client, fault_stack)
    fault_stack.openai.reset()
    fault_stack.anthropic.reset()
    return fault_stack


def _closes_the_breaker(client: httpx.Client, faults: Faults) -> None:
    faults.openai.push(Step(text="Ready."))
    response = client.post("/api/v1/chat/completion", json={"message": "Ready?"})  # no model: no fallback
    assert response.status_code == 200, response.text


def signup(client: httpx.Client) -> dict[str, str]:
    name = f"fault_{secrets.token_hex(4)}"
    response = client.post("/api/v1/auth/register", json={
        "username": name, "email": f"{name}@example.com", "password": "correct-horse-battery-9"})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def chat_calls(upstream) -> int:
    return sum(1 for call in upstream.calls if call.path.endswith(("/chat/completions", "/messages")))


def stored(client: httpx.Client, auth: dict[str, str], conversation_id: str) -> list[tuple[str, str, str]]:
    """(role, status, content) of the conversation's messages, as its owner reads them."""
    response = client.get(f"/api/v1/chat/conversations/{conversation_id}", headers=auth)
    assert response.status_code == 200, response.text
    return [(m["role"], m["status"], m["content"]) for m in response.json()["messages"]]


def assert_provider_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["code"] == code and body["status_code"] == status, body
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "sk-should-not-leak" not in response.text  # the upstream's own error text stays out
    return body


def assert_serves_next(client: httpx.Client, faults: Faults, auth: dict[str, str], conversation_id: str,
                       before: list[tuple[str, str, str]]) -> None:
    """The same worker answers the next message of the conversation normally; nothing was lost."""
    faults.openai.push(Step(text="Back to normal."))
    response = client.post("/api/v1/chat/message", json={"message": "Still there?",
                                                         "conversation_id": conversation_id}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["response"] == "Back to normal."
    assert stored(client, auth, conversation_id) == [*before, ("user", "complete", "Still there?"),
                                                     ("assistant", "complete", "Back to normal.")]


def test_provider_that_hangs_is_a_504_within_the_timeout_and_the_server_goes_on(faults):
    faults.openai.push(*[Step("hang", seconds=HANG_SECONDS)] * ATTEMPTS)
    with faults.server.http_client_on_worker() as (client, _, _):
        auth = signup(client)
        started = time.monotonic()
        response = client.post("/api/v1/chat/message", json={"message": "Are you there?"}, headers=auth)
        seconds = time.monotonic() - started
        body = assert_provider_error(response, 504, "TIMEOUT")
        # Each attempt waits PROVIDER_TIMEOUT_SECONDS, and there are PROVIDER_MAX_RETRIES + 1 of them.
        assert ATTEMPTS * PROVIDER_TIMEOUT <= seconds < ATTEMPTS * PROVIDER_TIMEOUT + SLACK_SECONDS, seconds
        assert chat_calls(faults.openai) == ATTEMPTS
        conversation = body["details"]["conversation_id"]
        kept = [("user", "complete", "Are you there?"), ("assistant", "error", "")]
        assert stored(client, auth, conversation) == kept
        assert_serves_next(client, faults, auth, conversation, kept)


@pytest.mark.parametrize(("upstream_status", "status", "code"), [
    (500, 502, "PROVIDER_ERROR"), (503, 502, "PROVIDER_ERROR"), (429, 429, "RATE_LIMITED")])
def test_provider_answering_errors_is_retried_a_bounded_number_of_times(faults, upstream_status, status, code):
    headers = {"retry-after": "1"} if upstream_status == 429 else {}
    faults.openai.push(*[Step("status", status=upstream_status, headers=headers)] * ATTEMPTS)
    with faults.server.http_client_on_worker() as (client, _, _):
        auth = signup(client)
        started = time.monotonic()
        response = client.post("/api/v1/chat/message", json={"message": "Hello?"}, headers=auth)
        seconds = time.monotonic() - started
        body = assert_provider_error(response, status, code)
        assert chat_calls(faults.openai) == ATTEMPTS  # the first try and PROVIDER_MAX_RETRIES retries
        assert seconds < SLACK_SECONDS + (1 if upstream_status == 429 else 0), seconds
        if upstream_status == 429:
            assert int(response.headers["Retry-After"]) >= 1  # passed on to the caller
            assert seconds >= 1  # the retry waited the provider's Retry-After
        conversation = body["details"]["conversation_id"]
        kept = [("user", "complete", "Hello?"), ("assistant", "error", "")]
        assert stored(client, auth, conversation) == kept
        assert_serves_next(client, faults, auth, conversation, kept)
    assert chat_calls(faults.anthropic) == 0  # no chain for a request that names no model


def test_provider_answering_500_falls_back_along_the_configured_chain(faults):
    faults.openai.push(*[Step("status", status=500)] * ATTEMPTS)
    faults.anthropic.push(Step(text="Claude here."))
    with faults.server.http_client_on_worker() as (client, _, _):
        auth = signup(client)
        response = client.post("/api/v1/chat/message", json={"message": "Hello?", "model": "gpt-4o-mini"},
                               headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["response"], body["model_used"], body["provider_used"]) == (
            "Claude here.", "claude-sonnet-4.5", "anthropic")
        assert chat_calls(faults.openai) == ATTEMPTS and chat_calls(faults.anthropic) == 1
        kept = [("user", "complete", "Hello?"), ("assistant", "complete", "Claude here.")]
        assert stored(client, auth, body["conversation_id"]) == kept
        assert_serves_next(client, faults, auth, body["conversation_id"], kept)


def test_provider_down_for_a_while_opens_the_breaker_and_the_server_recovers_by_itself(faults):
    faults.openai.push(*[Step("status", status=500)] * BREAKER_THRESHOLD)
    with faults.server.http_client_on_worker() as (client, _, _):
        auth = signup(client)
        for n in range(BREAKER_THRESHOLD // ATTEMPTS):
            opening = time.monotonic()  # the breaker opens after this (during the last request)...
            response = client.post("/api/v1/chat/message", json={"message": f"Down {n}?"}, headers=auth)
            assert_provider_error(response, 502, "PROVIDER_ERROR")
        opened = time.monotonic()  # ... and before this
        assert chat_calls(faults.openai) == BREAKER_THRESHOLD
        # Open: this worker answers at once, without calling the provider...
        started = time.monotonic()
        response = client.post("/api/v1/chat/message", json={"message": "Still down?"}, headers=auth)
        assert_provider_error(response, 502, "PROVIDER_ERROR")
        assert time.monotonic() - started < 1.5
        assert chat_calls(faults.openai) == BREAKER_THRESHOLD
        # ... and a model with a fallback chain is answered by its fallback.
        faults.anthropic.push(Step(text="Claude here."))
        response = client.post("/api/v1/chat/message", json={"message": "Anyone?", "model": "gpt-4o-mini"},
                               headers=auth)
        assert response.status_code == 200 and response.json()["provider_used"] == "anthropic", response.text
        assert chat_calls(faults.openai) == BREAKER_THRESHOLD
        assert time.monotonic() < opening + BREAKER_COOLDOWN  # those were answered while it was open
        # After the cooldown one trial call goes through; the provider is back, so is the service.
        time.sleep(max(0.0, opened + BREAKER_COOLDOWN + 0.3 - time.monotonic()))
        faults.openai.push(Step(text="Back to normal."), Step(text="And again."))
        conversation = response.json()["conversation_id"]
        for text in ("Back to normal.", "And again."):
            response = client.post("/api/v1/chat/message", json={"message": "Back?"}, headers=auth)
            assert response.status_code == 200 and response.json()["response"] == text, response.text
        assert chat_calls(faults.openai) == BREAKER_THRESHOLD + 2
        assert stored(client, auth, conversation) == [("user", "complete", "Anyone?"),
                                                      ("assistant", "complete", "Claude here.")]


def test_provider_faults_reach_an_openai_sdk_client_of_the_gateway_as_openai_errors_in_time(faults):
    """The official OpenAI SDK against our /v1, as any gateway client: a hung provider is a 504
    within the bound (not the SDK's own 10 minute timeout), a drop mid-stream raises from the
    stream after the text so far, and the next call works."""
    import openai

    with httpx.Client(base_url=faults.server.url, timeout=30) as client:
        auth = signup(client)
    sdk = openai.OpenAI(base_url=f"{faults.server.url}/v1", api_key=auth["Authorization"].split()[1],
                        max_retries=0)
    messages = [{"role": "user", "content": "Count for me"}]
    faults.openai.push(*[Step("hang", seconds=HANG_SECONDS)] * ATTEMPTS)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=messages)
    assert ATTEMPTS * PROVIDER_TIMEOUT <= time.monotonic() - started < ATTEMPTS * PROVIDER_TIMEOUT + SLACK_SECONDS
    assert caught.value.status_code == 504, caught.value
    assert caught.value.body["code"] == "timeout" and caught.value.body["param"] is None, caught.value.body

    faults.openai.push(Step("disconnect", text="one two three four", after=2))
    text = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in sdk.chat.completions.create(model="gpt-4o", messages=messages, stream=True):
            text += [choice.delta.content or "" for choice in chunk.choices]
    assert "".join(text) == "one two"
    assert chat_calls(faults.openai) == ATTEMPTS + 1

    faults.openai.push(Step(text="Back to normal."))
    answer = sdk.chat.completions.create(model="gpt-4o", messages=messages)
    assert answer.choices[0].message.content == "Back to normal."


@dataclass
class StreamFault:
    """What the upstream does to a streamed reply, and what the client must see."""

    steps: list[Step]
    status: int
    code: str
    partial: str  # the text the client got (and the saved reply holds) before the error
    attempts: int  # upstream calls: retried only before the first token
    seconds: float  # the error arrives within this (plus SLACK_SECONDS)


# Hanging before the first byte (retried, then 504 TIMEOUT); going silent mid-stream with the
# socket open (the read timeout ends it: 504 TIMEOUT); dropping the connection mid-stream (502
# PROVIDER_ERROR). Once text went out nothing is retried; the stream ends with an error event
# carrying the partial text, which is saved with status "error".
STREAM_FAULTS = {
    "hang": StreamFault([Step("hang", seconds=HANG_SECONDS)] * ATTEMPTS, 504, "TIMEOUT", "", ATTEMPTS,
                        ATTEMPTS * PROVIDER_TIMEOUT),
    "stall": StreamFault([Step("stall", text="one two three four", after=2, seconds=HANG_SECONDS)], 504, "TIMEOUT",
                         "one two", 1, PROVIDER_TIMEOUT),
    "drop": StreamFault([Step("disconnect", text="one two three four", after=2)], 502, "PROVIDER_ERROR", "one two",
                        1, 0),
}


@pytest.mark.parametrize("name", sorted(STREAM_FAULTS))
def test_provider_failing_a_stream_ends_the_sse_stream_with_an_error_event(faults, name):
    fault = STREAM_FAULTS[name]
    faults.openai.push(*fault.steps)
    with faults.server.http_client_on_worker() as (client, _, _):
        auth = signup(client)
        started = time.monotonic()
        with client.stream("POST", "/api/v1/chat/completions", headers=auth, json={
                "messages": [{"role": "user", "content": "Count for me"}], "stream": True}) as response:
            assert response.status_code == 200, response.read()
            events = list(sse_events(response.iter_lines()))
        seconds = time.monotonic() - started
        assert fault.seconds <= seconds < fault.seconds + SLACK_SECONDS, seconds
        chunks = [e["data"]["chunk"] for e in events if "chunk" in e["data"]]
        assert "".join(chunks) == fault.partial
        last = events[-1]
        assert last.get("event") == "error", events
        assert (last["data"]["code"], last["data"]["status_code"], last["data"]["response"]) == (
            fault.code, fault.status, fault.partial)
        assert chat_calls(faults.openai) == fault.attempts
        kept = [("user", "complete", "Count for me"), ("assistant", "error", fault.partial)]
        assert stored(client, auth, last["data"]["chat_id"]) == kept
        assert_serves_next(client, faults, auth, last["data"]["chat_id"], kept)


@pytest.mark.parametrize("name", sorted(STREAM_FAULTS))
async def test_provider_failing_a_stream_ends_the_websocket_reply_with_an_error_frame(faults, name):
    fault = STREAM_FAULTS[name]
    with httpx.Client(base_url=faults.server.url, timeout=30) as client:
        auth = signup(client)
    token = auth["Authorization"].split()[1]
    conversation = f"conv_{name}_{secrets.token_hex(4)}"
    faults.openai.push(*fault.steps)
    ws, _ = await ws_connect(faults.server, f"/ws/chat/{conversation}?token={token}")
    try:
        started = time.monotonic()
        await ws.send(json.dumps({"type": "message", "content": "Count for me", "stream": True}))
        frames = []
        while (frame := await recv_json(ws, timeout=fault.seconds + 10))["type"] == "stream":
            frames.append(frame)
        seconds = time.monotonic() - started
        assert fault.seconds <= seconds < fault.seconds + SLACK_SECONDS, seconds
        assert "".join(f["delta"] for f in frames) == fault.partial
        assert frame["type"] == "error", frame
        assert (frame["code"], frame["data"]["status_code"]) == (fault.code, fault.status), frame
        assert frame["data"]["details"]["partial_response"] == fault.partial, frame
        assert chat_calls(faults.openai) == fault.attempts
        # The socket stays open and its next message is answered normally.
        faults.openai.push(Step(text="Back to normal."))
        await ws.send(json.dumps({"type": "message", "content": "Still there?"}))
        frame = await recv_json(ws, timeout=30)
        assert frame["type"] == "message" and frame["response"] == "Back to normal.", frame
    finally:
        await ws.close()
    with httpx.Client(base_url=faults.server.url, timeout=30) as client:
        assert stored(client, auth, conversation) == [
            ("user", "complete", "Count for me"), ("assistant", "error", fault.partial),
            ("user", "complete", "Still there?"), ("assistant", "complete", "Back to normal.")]


# --- A Celery worker killed mid-task (issue 14) ------------------------------------------------------
#
# Real workers (`celery -A chatplatform worker`, prefork, one pool process) on the fault server's
# broker ingest a document uploaded through the API, and are killed with SIGKILL in the middle of
# it: first the pool process (the worker's parent sees it die and requeues the task at once), then
# the whole worker (the task stays unacknowledged in Redis, and the next worker to start gets it
# once CELERY_VISIBILITY_TIMEOUT has passed). Each time the document ends up ``ready`` with all its
# chunks, once.

WORKER_READY_SECONDS = 90.0
INGEST_SECONDS = 90.0  # a fresh pool process loads MiniLM first (10-20 s on a busy machine)


class Worker:
    def __init__(self, env: dict[str, str], log: Path, name: str) -> None:
        self.log = log
        # A fresh pool process per task: each ingestion starts by loading MiniLM (seconds), which is
        # when the drill kills it, so the kill lands mid-task however fast the machine embeds.
        command = [sys.executable, "-m", "celery", "-A", "chatplatform", "worker", "--pool=prefork",
                   "--concurrency=1", "--max-tasks-per-child=1", "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
                   "--without-heartbeat", "--loglevel=INFO"]
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        wait_until(lambda: self.alive() and " ready." in self.text(), timeout=WORKER_READY_SECONDS,
                   interval=0.25, what=f"worker {name} to start")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited ({self.process.returncode}):\n{self.text()[-3000:]}")
        return True

    def pool_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def kill(self) -> None:
        """SIGKILL to the worker and its pool: no warm shutdown, nothing acknowledged or requeued."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers(faults) -> Iterator[list[Worker]]:
    """Workers started by the test (appended to the list), all stopped at its end."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def long_document() -> str:
    """Text of some dozens of chunks (a fresh pool process loads MiniLM before embedding them: the
    drill kills it meanwhile)."""
    return "\n\n".join(f"Section {i}. " + " ".join(f"term{i}x{j} detail{j}" for j in range(40)) for i in range(12))


def document(client: httpx.Client, auth: dict[str, str], document_id: str) -> dict:
    response = client.get(f"/api/v1/documents/{document_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_status(client, auth, document_id: str, status: str, *, timeout: float, worker: Worker) -> dict:
    found: dict = {}

    def reached() -> bool:
        found.update(document(client, auth, document_id))
        assert found["status"] in ("pending", "processing", status), (found, worker.text()[-3000:])
        return found["status"] == status

    try:
        wait_until(reached, timeout=timeout, interval=0.1, what=f"document {document_id} to be {status}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: {found}\nworker log:\n{worker.text()[-3000:]}") from None
    return found


def stored_chunks(faults: Faults, document_id: str) -> int:
    with psycopg.connect(_libpq(faults.database_url)) as conn:
        return conn.execute("SELECT count(*) FROM knowledge_chunk WHERE document_id = %s",
                            (document_id,)).fetchone()[0]


def upload(client: httpx.Client, auth: dict[str, str], title: str) -> str:
    response = client.post("/api/v1/documents", headers=auth, json={
        "title": title, "content": long_document(), "mime_type": "text/plain"})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    return response.json()["id"]


def test_celery_worker_killed_mid_task_the_task_runs_again_to_completion(faults, workers):
    env = faults.server.env
    with httpx.Client(base_url=faults.server.url, timeout=30) as client:
        auth = signup(client)
        first = Worker(env, faults.log_dir / "worker-1.log", "drill-one")
        workers.append(first)

        # 1. The pool process dies mid-task (as under the OOM killer): its parent requeues the task.
        doc = upload(client, auth, "Killed pool process")
        wait_for_status(client, auth, doc, "processing", timeout=INGEST_SECONDS, worker=first)
        (pool,) = first.pool_pids()
        os.kill(pool, signal.SIGKILL)
        assert document(client, auth, doc)["status"] == "processing"  # killed before it finished
        ready = wait_for_status(client, auth, doc, "ready", timeout=INGEST_SECONDS, worker=first)
        assert ready["chunk_count"] > 10 and ready["error"] == "", ready
        assert stored_chunks(faults, doc) == ready["chunk_count"]  # every chunk, once
        assert "WorkerLostError" in first.text() or "signal 9" in first.text(), first.text()[-3000:]

        # 2. The whole worker dies mid-task: the next worker gets the task after the visibility timeout.
        doc = upload(client, auth, "Killed worker")
        wait_for_status(client, auth, doc, "processing", timeout=INGEST_SECONDS, worker=first)
        killed_at = time.monotonic()
        first.kill()
        assert document(client, auth, doc)["status"] == "processing"
        time.sleep(max(0.0, killed_at + VISIBILITY_SECONDS + 0.5 - time.monotonic()))
        second = Worker(env, faults.log_dir / "worker-2.log", "drill-two")
        workers.append(second)
        ready = wait_for_status(client, auth, doc, "ready", timeout=INGEST_SECONDS, worker=second)
        assert ready["chunk_count"] > 10 and ready["error"] == "", ready
        assert stored_chunks(faults, doc) == ready["chunk_count"]
        assert "knowledge.tasks.document_ingest" in second.text()
