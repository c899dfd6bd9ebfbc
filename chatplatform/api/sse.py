"""Server-Sent Events: the wire format, heartbeats, and the one streaming response every SSE
route returns (the seeds' event streams and OpenAI's chunk stream alike).

Events are ``id: <stream_id>:<n>`` (so a client reconnecting with ``Last-Event-ID`` can say what
it got), an optional ``event:`` name, and one ``data:`` line of JSON. While nothing happens a
``: ping`` comment goes out every :data:`HEARTBEAT_SECONDS` so proxies keep the connection open. Responses are never buffered or compressed
(``Cache-Control: no-cache``, ``X-Accel-Buffering: no``; the gzip middleware skips
``text/event-stream``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from django.http import StreamingHttpResponse

HEARTBEAT_SECONDS = 15.0
PING = b": ping\n\n"
CONTENT_TYPE = "text/event-stream; charset=utf-8"


def encode(data: Any, *, event_id: str | None = None, event: str | None = None) -> bytes:
    """One SSE event. ``data`` is JSON-encoded unless it is already a string (``[DONE]``)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(", ", ": "))
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in payload.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def event_id(stream_id: str, number: int) -> str:
    """The SSE id of a pipeline event: ``<stream_id>:<n>``."""
    return f"{stream_id}:{number}"


async def with_heartbeat(source: AsyncIterator[bytes], interval: float | None = None) -> AsyncIterator[bytes]:
    """``source``'s chunks, with a ``: ping`` comment whenever it is silent for ``interval`` seconds.

    The next chunk is awaited in a task so a ping can go out meanwhile. However this generator
    ends (finished, failed, or cancelled because the client went away), that task is cancelled
    and awaited and ``source`` closed, so the sources' own cleanup (saving a partial reply) runs
    before the response is over."""
    interval = HEARTBEAT_SECONDS if interval is None else interval
    iterator = aiter(source)
    pending: asyncio.Future | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield PING
                continue
            finished, pending = pending, None
            try:
                chunk = finished.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            await asyncio.wait({pending})
        if pending is not None and pending.done() and not pending.cancelled():
            pending.exception()  # retrieved: no "exception was never retrieved" warning
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def prepend(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``first``, then ``rest`` (closing ``rest`` however this ends)."""
    async with aclosing(rest):
        yield first
        async for item in rest:
            yield item


def sse_response(body: AsyncIterator[bytes], *, headers: dict[str, str] | None = None,
                 heartbeat: float | None = None) -> StreamingHttpResponse:
    """The streaming response of every SSE route: ``body`` with heartbeats and the SSE headers."""
    response = StreamingHttpResponse(with_heartbeat(body, heartbeat), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    for name, value in (headers or {}).items():
        response[name] = value
    return response
