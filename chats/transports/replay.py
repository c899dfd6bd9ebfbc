"""What every transport does around a turn besides formatting it: ``Idempotency-Key`` (a retry gets
the first result, or the same stream replayed, with no second provider call), who may resume a
stream, and event ids (``<stream_id>:<n>``, in SSE's ``Last-Event-ID`` and WebSocket ``resume``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response

from chatplatform.api import idempotency
from chatplatform.api.exceptions import AppError, envelope
from chats import streaming
from chats.hub import RETENTION_SECONDS, get_hub
from chats.transports.formats import error_details
from chats.turns import Caller

MAX_EVENT_NUMBER = 10**9
STREAM_ID = re.compile(r"^msg_[A-Za-z0-9]{1,64}$")  # chatplatform.api.ids.new_id("msg")


# --- event ids ---------------------------------------------------------------------------------


def parse_event_id(value: Any, *, stream_id: str | None = None, required: bool = False,
                   field: str = "last_event_id") -> tuple[str | None, int]:
    """``<stream_id>:<n>`` -> (stream id, n). A bare ``<n>`` when the stream is named elsewhere (the
    URL), a bare stream id for "from its start"; nothing: (``stream_id``, 0), or 422 when
    ``required``. 422 (naming ``field``) when malformed or naming another stream than ``stream_id``."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise AppError(f"{field} is required ('<stream_id>:<n>').", status_code=422,
                           details={field: ["This field is required."]})
        return stream_id, 0
    named, _, number = text.rpartition(":")
    if not named and not number.isdigit():
        named, number = number, "0"  # a bare stream id: everything from the start
    if not number.isdigit() or int(number) > MAX_EVENT_NUMBER or (not named and stream_id is None):
        raise AppError(f"Invalid {field}.", status_code=422,
                       details={field: ["Expected '<stream_id>:<event number>'."]})
    if named and stream_id is not None and named != stream_id:
        raise AppError(f"{field} names another stream.", status_code=422,
                       details={field: ["Does not match the stream in the URL."]})
    return named or stream_id, int(number)


# --- who may resume a stream ---------------------------------------------------------------------


def _owner_key(stream_id: str) -> str:
    return f"chat-stream-owner:{stream_id}"


async def remember_owner(stream_id: str, caller: Caller) -> None:
    """A stateless stream (no conversation) belongs to its caller: the user, or the address."""
    await cache.aset(_owner_key(stream_id), caller.scope, timeout=RETENTION_SECONDS + 60)


async def check_owner(stream_id: str, caller: Caller) -> None:
    """404 unless ``caller`` may read this stream (a conversation's: its owner; a stateless one:
    the caller that started it) and it still exists."""
    if not STREAM_ID.match(stream_id):  # not one of ours: never used as a cache or hub key
        raise AppError("Stream not found.", status_code=404)
    owner = await cache.aget(_owner_key(stream_id))
    if owner is not None:
        if owner != caller.scope:
            raise AppError("Stream not found.", status_code=404)
    else:
        await streaming.stream_owner_check(stream_id, caller.user)
    await stream_or_404(stream_id)


async def stream_or_404(stream_id: str) -> None:
    if not await get_hub().exists(stream_id):
        raise AppError("Stream not found or expired; the saved message has the reply.", status_code=404)


# --- Idempotency-Key -----------------------------------------------------------------------------


async def begin(request: HttpRequest, user: Any, body: Any) -> tuple[idempotency.Idempotency, dict | None]:
    """The key of this request, and the stored outcome of an earlier one with it (None: go on)."""
    idem = idempotency.idempotency_for(request, user, body)
    return idem, await idempotency.abegin(idem)


async def release(idem: idempotency.Idempotency) -> None:
    """Drop the lock without keeping an outcome, so a retry runs again (5xx are never kept)."""
    await idempotency.afinish(idem, status=503)


async def keep_json(idem: idempotency.Idempotency, status: int, body: dict) -> None:
    await idempotency.afinish(idem, status=status, body=body)


async def keep_stream(idem: idempotency.Idempotency, stream_id: str) -> None:
    await idempotency.afinish(idem, status=200, stream_id=stream_id)


async def started(idem: idempotency.Idempotency, begin_turn: Callable[[], Awaitable[streaming.Reply]]
                  ) -> streaming.Reply:
    """Run ``begin_turn``; if it fails (a 4xx), release the key so a corrected retry runs."""
    try:
        return await begin_turn()
    except BaseException:
        await release(idem)
        raise


async def outcome(reply: streaming.Reply, build: Callable[[dict], dict]) -> tuple[int, dict]:
    """Wait for the reply: (200, ``build(done event)``), or (the error's status, the envelope)."""
    final = await reply.wait()
    if final["type"] == "done":
        return 200, build(final)
    return final["status_code"], envelope(final["status_code"], final["message"], code=final["code"],
                                          details=error_details(final))


def error_headers(reply: streaming.Reply) -> dict[str, str]:
    """The headers of a failed reply's error (``Retry-After`` of a provider's 429); none otherwise."""
    final = reply.final or {}
    return dict(final.get("headers") or {}) if final.get("type") == "error" else {}


async def settle(reply: streaming.Reply, idem: idempotency.Idempotency,
                 build: Callable[[dict], dict]) -> tuple[int, dict]:
    """:func:`outcome`, kept under the key when it succeeded (a failed call runs again on retry)."""
    try:
        status, body = await outcome(reply, build)
    except BaseException:
        await release(idem)
        raise
    if status == 200:
        await keep_json(idem, status, body)
    else:
        await release(idem)
    return status, body


async def replayed(request: HttpRequest, stored: dict, headers: dict[str, str],
                   stream_response: Callable[[str, int], HttpResponse]) -> HttpResponse:
    """The stored outcome again: its JSON, or its stream (from the request's ``Last-Event-ID``)
    formatted by ``stream_response(stream_id, after)``."""
    if stored.get("stream_id"):
        stream_id = stored["stream_id"]
        _, after = parse_event_id(request.headers.get("Last-Event-ID"), stream_id=stream_id, field="Last-Event-ID")
        await stream_or_404(stream_id)
        response = stream_response(stream_id, after)
    else:
        response = JsonResponse(stored["body"], status=stored["status"])
    response["Idempotent-Replayed"] = "true"
    for name, value in headers.items():
        response[name] = value
    return response


def idempotent_view(request: Request, run: Callable[[], tuple[Any, int]]) -> Response:
    """A DRF view's body under ``Idempotency-Key``: a stored result is replayed; only successes
    and client errors are stored (a provider failure can be retried with the same key)."""
    idem = idempotency.idempotency_for(request, request.user, request.data)
    stored = idempotency.begin(idem)
    if stored is not None:
        return Response(stored["body"], status=stored["status"], headers={"Idempotent-Replayed": "true"})
    try:
        body, status_code = run()
    except BaseException:
        idempotency.finish(idem, status=500)
        raise
    idempotency.finish(idem, status=status_code, body=body)
    return Response(body, status=status_code)
