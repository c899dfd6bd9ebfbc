"""Local fake upstream servers for provider tests.

A fake is a small raw-ASGI app served by a real uvicorn on 127.0.0.1 (random port, background
thread), so the official SDKs talk real HTTP to it. Each provider's fake subclasses
:class:`ScriptedUpstream` and implements its wire protocol in :meth:`handle`; tests script what
the next requests get with :meth:`ScriptedUpstream.push`:

    Step("ok")                                # a normal answer (streamed if the request asked)
    Step("ok", text="Hello there")            # ... with this text
    Step("status", status=429, headers={"retry-after": "1"})
    Step("status", status=500)
    Step("hang", seconds=5)                   # accept, then answer nothing for a while (timeouts)
    Step("malformed")                         # a broken body / stream chunk
    Step("disconnect", after=2)               # stream 2 chunks, then drop the connection
    Step("truncate", after=2)                 # stream 2 chunks, then end the body without the final event
    Step("stall", after=2, seconds=30)        # stream 2 chunks, then silence with the socket open (OpenAI fake)

Every received request is recorded in ``calls`` (method, path, headers, json body).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class Step:
    kind: str = "ok"
    text: str = "Hello! How can I help you today?"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    after: int = 1
    thinking: str = ""
    prompt_tokens: int = 11
    completion_tokens: int = 7
    include_usage: bool = True
    chunk_delay: float = 0.0
    # Calls to make instead of text: [{"name", "arguments": {...}}]. Kind "auto": the fake decides
    # (providers.tests.fake_model) from the request's tools, schema and question.
    tool_calls: list = field(default_factory=list)


@dataclass
class Call:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    client: tuple | None = None  # (host, port) of the caller's TCP connection


class Disconnect(Exception):
    """Raised inside a handler to drop the connection mid-response."""


class ScriptedUpstream:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.script: deque[Step] = deque()
        self.default_kind = "ok"  # what answers when nothing is scripted ("auto": the fake model decides)

    def push(self, *steps: Step) -> None:
        self.script.extend(steps)

    def reset(self) -> None:
        self.calls.clear()
        self.script.clear()
        self.default_kind = "ok"

    def next_step(self) -> Step:
        return self.script.popleft() if self.script else Step(self.default_kind)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        call = Call(
            method=scope["method"], path=scope["path"], query=scope.get("query_string", b"").decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]}, body=parsed,
            client=tuple(scope["client"]) if scope.get("client") else None,
        )
        self.calls.append(call)
        step = self.next_step()
        if step.kind == "status":
            await send_json(send, step.status, self.error_body(step.status), step.headers)
            return
        if step.kind == "hang":
            await asyncio.sleep(step.seconds)
            await send_json(send, 504, self.error_body(504))
            return
        try:
            await self.handle(call, step, send)
        except Disconnect:
            # Abort the response: uvicorn closes the connection mid-body.
            raise

    def error_body(self, status: int) -> dict:
        return {"error": {"message": f"upstream error {status} with secret sk-should-not-leak", "type": "error"}}

    async def handle(self, call: Call, step: Step, send) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


async def send_json(send, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(payload).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


async def start_stream(send, content_type: bytes = b"text/event-stream", status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"cache-control", b"no-cache")]})


async def send_chunk(send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def end_stream(send) -> None:
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def split_text(text: str) -> list[str]:
    """Split into word-ish chunks (keeping spaces) like a provider streams tokens."""
    parts: list[str] = []
    for i, word in enumerate(text.split(" ")):
        parts.append(word if i == 0 else " " + word)
    return [p for p in parts if p]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeServer:
    """Runs an ASGI app with uvicorn in a daemon thread on 127.0.0.1."""

    def __init__(self, app) -> None:
        self.app = app
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@contextmanager
def serving(upstream: ScriptedUpstream) -> Iterator[ScriptedUpstream]:
    """Serve ``upstream`` on 127.0.0.1 for the duration; its ``url`` is set for the tests."""
    with FakeServer(upstream) as server:
        upstream.url = server.url
        yield upstream


class CutOffServer:
    """A raw TCP server on 127.0.0.1 that answers every request with a 200, the first ``parts`` of
    a body, and then closes the socket before the body is complete: ``framing="chunked"`` sends
    chunked framing without its terminating chunk (the HTTP message is visibly cut); ``"close"``
    sends a close-delimited body (no length), so to HTTP the body just ends early and only the
    provider's own protocol (a missing final event) shows the cut. Use as ``async with``."""

    def __init__(self, parts: list[bytes], *, framing: str = "close",
                 content_type: bytes = b"text/event-stream") -> None:
        assert framing in ("chunked", "close")
        self.parts = parts
        self.framing = framing
        self.content_type = content_type
        self.requests = 0
        self.url = ""
        self._server: asyncio.AbstractServer | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            self.requests += 1
            framing = b"transfer-encoding: chunked\r\n" if self.framing == "chunked" else b"connection: close\r\n"
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: " + self.content_type + b"\r\n" + framing + b"\r\n")
            for part in self.parts:
                writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n" if self.framing == "chunked" else part)
                await writer.drain()
                await asyncio.sleep(0.01)
        finally:
            writer.close()  # mid-body: no terminating chunk, no final event

    async def __aenter__(self) -> CutOffServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
