"""Request bodies over MAX_REQUEST_BYTES: 413 with the error envelope on every route, decided
before the body is read (from Content-Length, or while a body without one streams in)."""

from __future__ import annotations

import asyncio
import json

import pytest

from chatplatform.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024


async def drive(path: str, chunks: list[bytes], *, content_length: int | None, method: str = "POST",
                headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict, bytes, int]:
    """One request through the ASGI application, its body sent as ``chunks``. Returns status,
    headers, body, and how many body chunks the application asked for."""
    raw_headers = [(b"host", b"localhost"), (b"content-type", b"application/json"), *(headers or [])]
    if content_length is not None:
        raw_headers.append((b"content-length", str(content_length).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": raw_headers,
             "client": ("127.0.0.1", 50000), "server": ("localhost", 80)}
    pending = list(chunks)
    pulled = 0
    status, response_headers, body = 0, {}, b""
    finished = asyncio.Event()

    async def receive():
        nonlocal pulled
        if pending:
            pulled += 1
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status, response_headers, body
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")
            if not message.get("more_body"):
                finished.set()

    await asyncio.wait_for(application(scope, receive, send), 30)
    return status, response_headers, body, pulled


def big_json(size: int) -> bytes:
    return json.dumps({"message": "x" * size}).encode()


@pytest.mark.parametrize("path", ["/api/v1/chat/message", "/api/v1/auth/login", "/api/v1/chat/completion",
                                  "/v1/chat/completions", "/api/v1/does-not-exist", "/db-status"])
async def test_declared_oversized_body_is_413_without_reading_it(path, settings):
    body = big_json(12 * MB)
    chunks = [body[i:i + MB] for i in range(0, len(body), MB)]
    status, headers, raw, pulled = await drive(path, chunks, content_length=len(body),
                                               headers=[(b"x-request-id", b"req-big-1")])
    assert status == 413
    assert pulled == 0  # refused from Content-Length alone: not one chunk read
    error = json.loads(raw)
    assert error["code"] == "PAYLOAD_TOO_LARGE" and error["status_code"] == 413
    assert error["error"] == "payload_too_large" and error["request_id"] == "req-big-1"
    assert error["details"]["max_bytes"] == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert set(error) >= {"detail", "message", "error", "code", "status_code", "request_id", "timestamp", "details"}
    assert headers["content-type"].startswith("application/json")
    assert headers["x-request-id"] == "req-big-1" and "x-process-time" in headers


async def test_body_without_length_is_cut_off_once_over_the_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * MB
    body = big_json(12 * MB)
    chunks = [body[i:i + 256 * 1024] for i in range(0, len(body), 256 * 1024)]
    status, _, raw, pulled = await drive("/api/v1/chat/message", chunks, content_length=None)
    assert status == 413 and json.loads(raw)["code"] == "PAYLOAD_TOO_LARGE"
    assert pulled <= 9  # stopped just past 2 MB, not after all 48 chunks


async def test_body_under_the_limit_reaches_the_view(settings, user, tokens_for):
    token = (await asyncio.to_thread(tokens_for, user))["access_token"]
    body = json.dumps({"message": 123}).encode()
    status, _, raw, _ = await drive("/api/v1/chat/message", [body], content_length=len(body),
                                    headers=[(b"authorization", f"Bearer {token}".encode())])
    assert status == 422  # the view ran (and refused a number as text)
    assert json.loads(raw)["details"].keys() == {"message"}


def test_drf_view_refuses_oversized_body_as_413_too(auth_client, settings):
    # The test client does not go through the ASGI guard: Django's own limit answers, as the same 413.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = auth_client.post("/api/v1/chat/message", {"message": "x" * 5000}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
