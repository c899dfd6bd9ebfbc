"""Streaming against a real server: two uvicorn worker processes, PostgreSQL, Redis (issue 9, item 12).

In-process tests (``WebsocketCommunicator``, the test client) share one event loop and an
in-memory layer; these cover what only shows across processes and real sockets: replies that
stream longer than a Redis client's socket timeout, idle sockets, cancels, and resumes served by
another worker than the one generating.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from providers.tests.fakeserver import Step
from tests.live import local_address, recv_json, sse_events, ws_connect

pytestmark = pytest.mark.slow

WORDS = [f"w{i}" for i in range(24)]


def slow_reply(words: list[str] = WORDS, delay: float = 0.5) -> Step:
    """A reply streamed one word every ``delay`` seconds."""
    return Step(text=" ".join(words), chunk_delay=delay)


def chat_frame(client_id: str, message: str = "Tell me a long story") -> str:
    return json.dumps({"type": "chat", "id": client_id, "data": {"message": message, "stream": True}})


async def read_until_final(ws, *, timeout: float = 60) -> tuple[list[dict], dict]:
    """Stream frames until the final ``complete``/``error`` frame."""
    frames: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = await recv_json(ws, timeout=max(0.1, deadline - time.monotonic()))
        if frame["type"] in ("complete", "error"):
            return frames, frame
        frames.append(frame)


async def test_websocket_reply_streaming_for_over_ten_seconds(live):
    live.upstream.push(slow_reply())  # 24 words, one every 0.5 s: about 12 s
    ws, _ = await ws_connect(live.server)
    async with ws:
        started = time.monotonic()
        await ws.send(chat_frame("long"))
        frames, final = await read_until_final(ws)
        elapsed = time.monotonic() - started
    assert final["type"] == "complete", final
    assert elapsed > 10, elapsed
    assert [f["type"] for f in frames] == ["stream"] * len(WORDS)
    assert "".join(f["data"]["chunk"] for f in frames) == " ".join(WORDS)
    assert final["data"]["response"] == " ".join(WORDS) and final["data"]["cancelled"] is False


async def test_websocket_left_idle_for_thirty_seconds_still_chats(live):
    ws, _ = await ws_connect(live.server)
    async with ws:
        await asyncio.sleep(31)  # no frame either way (client pings are off)
        await ws.send(json.dumps({"type": "ping", "id": "p1"}))
        assert (await recv_json(ws, timeout=10))["type"] == "pong"
        live.upstream.push(Step(text="still here"))
        await ws.send(chat_frame("after-idle"))
        _, final = await read_until_final(ws, timeout=30)
    assert final["type"] == "complete", final
    assert final["data"]["response"] == "still here"


async def test_websocket_cancel_after_streaming_for_six_seconds(live):
    live.upstream.push(slow_reply([f"w{i}" for i in range(60)]))  # would take 30 s
    ws, _ = await ws_connect(live.server)
    async with ws:
        started = time.monotonic()
        await ws.send(chat_frame("to-cancel"))
        frames = []
        while time.monotonic() - started < 6:
            frames.append(await recv_json(ws, timeout=10))
        await ws.send(json.dumps({"type": "cancel", "id": "to-cancel"}))
        more, final = await read_until_final(ws, timeout=15)
        assert time.monotonic() - started < 15  # cancelled, not run to its end
        await ws.send(json.dumps({"type": "ping", "id": "p2"}))
        assert (await recv_json(ws, timeout=10))["type"] == "pong"  # the socket is still open
    assert final["type"] == "complete", final
    assert final["data"]["cancelled"] is True
    streamed = "".join(f["data"]["chunk"] for f in frames + more if f["type"] == "stream")
    assert final["data"]["response"] == streamed
    assert 0 < len(streamed.split()) < 60


async def _start_and_drop(live, client_id: str, keep: int) -> tuple[int, list[dict]]:
    """Start a slow chat on one worker, read ``keep`` stream frames, drop the socket."""
    ws, pid = await ws_connect(live.server)
    async with ws:
        await ws.send(chat_frame(client_id))
        frames = [await recv_json(ws, timeout=15) for _ in range(keep)]
    assert all(f["type"] == "stream" for f in frames), frames
    return pid, frames


async def test_websocket_resume_lands_on_the_other_worker(live):
    live.upstream.push(slow_reply())
    first_pid, seen = await _start_and_drop(live, "resumable", keep=3)
    ws, second_pid = await ws_connect(live.server, other_than=first_pid)
    assert second_pid != first_pid
    async with ws:
        await ws.send(json.dumps({"type": "resume", "last_event_id": seen[-1]["event_id"]}))
        rest, final = await read_until_final(ws)
    assert final["type"] == "complete", final
    assert final["id"] == "resumable"
    text = "".join(f["data"]["chunk"] for f in seen + rest)
    assert text == " ".join(WORDS) == final["data"]["response"]
    numbers = [int(f["event_id"].rsplit(":", 1)[1]) for f in seen + rest]
    assert numbers == sorted(set(numbers))  # nothing repeated, nothing out of order


async def test_websocket_cancel_from_the_other_worker(live):
    live.upstream.push(slow_reply([f"w{i}" for i in range(60)]))
    first_pid, seen = await _start_and_drop(live, "far-cancel", keep=2)
    ws, _ = await ws_connect(live.server, other_than=first_pid)
    async with ws:
        await ws.send(json.dumps({"type": "resume", "last_event_id": seen[-1]["event_id"]}))
        await recv_json(ws, timeout=10)  # the resumed stream is flowing
        started = time.monotonic()
        await ws.send(json.dumps({"type": "cancel", "id": "far-cancel"}))
        _, final = await read_until_final(ws, timeout=15)
        assert time.monotonic() - started < 10
    assert final["type"] == "complete", final
    assert final["data"]["cancelled"] is True


def test_sse_stream_with_upstream_silences_longer_than_five_seconds(live):
    live.upstream.push(Step(text="one two three", chunk_delay=6))  # 6 s of silence between words
    with live.server.http_client_on_worker() as (client, _, _):
        started = time.monotonic()
        with client.stream("POST", "/api/v1/chat/stream", json={"message": "Take your time"}) as response:
            assert response.status_code == 200, response.read()
            events = list(sse_events(response.iter_lines()))
        elapsed = time.monotonic() - started
    assert elapsed > 10, elapsed
    chunks = [e["data"]["chunk"] for e in events if "chunk" in e["data"]]
    assert "".join(chunks) == "one two three"
    assert events[-1]["data"]["finished"] is True and events[-1].get("event") != "error", events[-1]


def test_sse_resume_lands_on_the_other_worker(live):
    live.upstream.push(slow_reply())
    with live.server.http_client_on_worker() as (client, first_pid, first_connection):
        with client.stream("POST", "/api/v1/chat/stream", json={"message": "Long one"}) as response:
            assert response.status_code == 200, response.read()
            assert local_address(response) == first_connection  # served by first_pid
            stream_id = response.headers["X-Stream-ID"]
            seen = []
            for event in sse_events(response.iter_lines()):
                seen.append(event)
                if len(seen) == 3:
                    break  # drop the stream mid-reply
    with live.server.http_client_on_worker(other_than=first_pid) as (client, second_pid, second_connection):
        with client.stream("GET", f"/api/v1/chat/stream/{stream_id}",
                           headers={"Last-Event-ID": seen[-1]["id"]}) as response:
            assert response.status_code == 200, response.read()
            assert local_address(response) == second_connection  # served by second_pid
            rest = list(sse_events(response.iter_lines()))
    assert second_pid != first_pid
    text = "".join(e["data"].get("chunk", "") for e in seen + rest)
    assert text == " ".join(WORDS)
    assert rest[-1]["data"]["finished"] is True and rest[-1]["data"]["response"] == " ".join(WORDS)
