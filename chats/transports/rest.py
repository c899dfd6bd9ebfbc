"""REST JSON: a turn answered as one JSON body once its reply has ended.

A reply that failed answers the error envelope with the provider error's status (502, 504, 429),
naming the conversation, the kept user message and the saved partial reply in ``details``.
Waiting is shielded: a client that drops still gets its result on an ``Idempotency-Key`` retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.http import JsonResponse

from chatplatform.api import idempotency
from chatplatform.api.exceptions import AppError
from chats import streaming
from chats.transports import replay
from chats.transports.formats import error_details
from chats.turns import Caller, Turn, turn_begin


async def respond(reply: streaming.Reply, idem: idempotency.Idempotency, build: Callable[[dict], dict], *,
                  headers: dict[str, str] | None = None) -> JsonResponse:
    """The JSON answer of an async view (kept for ``Idempotency-Key`` retries)."""
    status, body = await asyncio.shield(replay.settle(reply, idem, build))
    return JsonResponse(body, status=status, headers={**(headers or {}), **replay.error_headers(reply)})


def answer(caller: Caller, turn: Turn, build: Callable[[dict], dict]) -> dict:
    """Run a turn to its end from a synchronous (DRF) view: ``build(done event)``, or the reply's
    error raised as the envelope (the user's message stays saved)."""

    async def run() -> dict:
        return await (await turn_begin(caller, turn)).wait()

    final = async_to_sync(run)()
    if final["type"] == "error":
        raise AppError(final["message"], status_code=final["status_code"], code=final["code"],
                       details=error_details(final), headers=final.get("headers"))
    return build(final)  # in the view's thread: the shape may read the database


def cache_allowed(request, data: dict) -> bool:
    """The response cache may answer unless the body says ``"cache": false`` or the request sends
    ``Cache-Control: no-cache`` (or ``no-store``)."""
    directives = {d.strip().lower() for d in request.headers.get("Cache-Control", "").split(",")}
    return bool(data.get("cache", True)) and not directives & {"no-cache", "no-store"}


def cache_headers(reply) -> dict[str, str]:
    """``X-Cache-Status`` of a started reply: HIT, MISS or BYPASS."""
    verdict = getattr(reply.stream, "cache", None)
    return {"X-Cache-Status": verdict.status if verdict is not None else "BYPASS"}
