"""Request body size limit, enforced at the ASGI layer before Django reads the body.

Django's ASGI handler spools the whole body before any middleware or view runs, so a limit checked
there comes too late (and Django's own ``RequestDataTooBig`` surfaced as a 500). This wrapper answers
``413`` with the error envelope when ``Content-Length`` is over ``MAX_REQUEST_BYTES`` (the setting
``DATA_UPLOAD_MAX_MEMORY_SIZE``) without reading a byte of the body, and cuts a body sent without a
length (chunked) off as soon as it passes the limit.
"""

from __future__ import annotations

import json
import time

from django.conf import settings

from chatplatform.api.context import reset_request_id, set_request_id
from chatplatform.api.exceptions import envelope
from chatplatform.api.middleware import new_request_id


def max_request_bytes() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def _too_large_message(limit: int) -> bytes:
    return json.dumps(envelope(413, f"Request body too large: at most {limit} bytes.",
                               details={"max_bytes": limit})).encode()


async def _send_413(send, headers: dict[bytes, bytes], started: float) -> None:
    limit = max_request_bytes()
    request_id = new_request_id(headers.get(b"x-request-id", b"").decode("latin1"))
    token = set_request_id(request_id)
    try:
        body = _too_large_message(limit)
    finally:
        reset_request_id(token)
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()), (b"x-process-time", f"{time.perf_counter() - started:.4f}".encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """ASGI middleware for HTTP: refuse bodies over the limit with 413 (see the module docstring)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        limit = max_request_bytes()
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = False  # the server refuses a malformed length before we see it
            if too_large:
                return await _send_413(send, headers, started)
            return await self.app(scope, receive, send)

        # No length: count the bytes as they arrive; past the limit, tell the application the
        # client went away (Django stops reading and answers nothing), then answer 413 ourselves.
        received = 0
        cut = False
        response_started = False

        async def limited_receive():
            nonlocal received, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message):
            nonlocal response_started
            if cut and not response_started:
                return  # the 413 below is the answer
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if cut and not response_started:
            await _send_413(send, headers, started)
