"""Server-Sent Events: a turn's events as seed 001's event stream (seed 004 streams the same).

``data: {"chunk", "index"}`` per piece of text, ``event: thinking`` ``{"thinking"}`` when extended
thinking streams, ``event: citations`` ``{"citations"}`` first when ``use_rag`` found document chunks, then ``{"finished": true, "usage", ...}``, or ``event: error`` ``{"error", "code",
...}`` (see :mod:`chats.transports.formats`). Every event has ``id: <stream_id>:<n>``; the stream id
is also in ``X-Stream-ID``. Nothing is sent for the ``start`` event (seed 001 clients read
``chunk``/``finished`` only). The wire format and heartbeats are :mod:`chatplatform.api.sse`'s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from django.http import HttpRequest, StreamingHttpResponse

from chatplatform.api import sse
from chatplatform.api.exceptions import AppError
from chats import streaming
from chats.transports import formats, replay
from chats.turns import Caller


async def event_stream(events: AsyncIterator[dict], *, request_id: str) -> AsyncIterator[bytes]:
    """Pipeline events -> seed 001's SSE events."""
    async with aclosing(events):
        async for event in events:
            kind = event["type"]
            eid = sse.event_id(event["stream_id"], event["id"])
            if kind == "delta":
                yield sse.encode({"chunk": event["text"], "index": event["index"]}, event_id=eid)
            elif kind == "thinking":
                yield sse.encode({"thinking": event["text"]}, event_id=eid, event="thinking")
            elif kind == "citations":
                yield sse.encode({"citations": event["citations"]}, event_id=eid, event="citations")
            elif kind == "done":
                yield sse.encode(formats.sse_finished(event, request_id), event_id=eid)
            elif kind == "error":
                yield sse.encode(formats.sse_error(event, request_id), event_id=eid, event="error")


def response(events: AsyncIterator[dict], *, stream_id: str, request_id: str,
             headers: dict[str, str] | None = None) -> StreamingHttpResponse:
    return sse.sse_response(event_stream(events, request_id=request_id),
                            headers={"X-Stream-ID": stream_id, **(headers or {})})


def reply_response(reply: streaming.Reply, *, request_id: str,
                   headers: dict[str, str] | None = None) -> StreamingHttpResponse:
    """A reply just started, streamed (a reader that drops leaves it going; see stream_reply)."""
    return response(streaming.stream_reply(reply), stream_id=reply.stream_id, request_id=request_id,
                    headers=headers)


def replay_response(stream_id: str, after: int, *, request_id: str,
                    headers: dict[str, str] | None = None) -> StreamingHttpResponse:
    """The events of ``stream_id`` after ``after``, then the rest live."""
    return response(streaming.reply_events(stream_id, after=after), stream_id=stream_id, request_id=request_id,
                    headers=headers)


async def resume(request: HttpRequest, caller: Caller, stream_id: str | None, after: int) -> StreamingHttpResponse:
    """Resume a stream the caller may read (404 otherwise): what it missed, then the rest live."""
    if not stream_id:
        raise AppError("Stream not found.", status_code=404)
    await replay.check_owner(stream_id, caller)
    return replay_response(stream_id, after, request_id=caller.request_id)


def last_event(request: HttpRequest, *, stream_id: str | None = None) -> tuple[str | None, int]:
    """The stream and event number a reconnecting client names (``Last-Event-ID``, or the
    ``last_event_id`` query parameter)."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    return replay.parse_event_id(raw, stream_id=stream_id, field="Last-Event-ID")
