"""Anthropic's Messages API, mounted at ``/v1``: the official ``anthropic`` SDK (and tools built on it)
use chatplatform as a gateway (``base_url="http://host:8000"``, ``api_key=<a cpk_… key>``), for any
catalogue model: a GPT or Gemini model is translated by its provider's adapter.

* ``POST /v1/messages``: Anthropic's request, its Message object, or with ``stream`` its SSE
  events (``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``,
  ``content_block_stop``, ``message_delta``, ``message_stop``; ``error`` for a failure mid-stream).
  A stateless turn, as ``/v1/chat/completions`` is: nothing is stored but usage.
* ``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``, the estimate the gateway trims
  history and budgets with.

Keys arrive as ``x-api-key`` (the SDK's header) or ``Authorization: Bearer``; ``anthropic-version``
and ``anthropic-beta`` headers are accepted. Errors use Anthropic's shape,
``{"type": "error", "error": {"type", "message"}, "request_id"}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from chatplatform.api import sse
from chatplatform.api.asyncviews import authenticate, json_body, validated
from chatplatform.api.exceptions import envelope
from chats import streaming
from chats.anthropic_inputs import CountTokensInput, MessagesInput, params_of
from chats.openai_inputs import split_inputs
from chats.transports import replay
from chats.transports.openai import _overhead, error_response, gateway_endpoint, gateway_turn, written_events
from chats.turns import Turn
from providers import selectors as provider_selectors
from providers.adapters.base import ChatRequest
from providers.errors import UnknownModel

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               503: "overloaded_error", 529: "overloaded_error"}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


# --- errors ------------------------------------------------------------------------------------


def anthropic_error_body(status: int, body: dict) -> tuple[int, dict]:
    """Our envelope -> Anthropic's error object (a request it cannot process is a 400, as there)."""
    if status in (405, 409, 415, 422):
        status = 400
    kind = ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    message = body.get("message") or body.get("detail") or "Error."
    details = body.get("details")
    field = next(iter(details), None) if isinstance(details, dict) else None
    if field and field not in message and field != "stream_id":  # Anthropic has no ``param``: the message names it
        first = details[field][0] if isinstance(details[field], list) and details[field] else details[field]
        message = f"{message} {field}: {first}"
    return status, {"type": "error", "error": {"type": kind, "message": message},
                    "request_id": body.get("request_id")}


def anthropic_error_response(exc: Exception) -> JsonResponse:
    return error_response(exc, anthropic_error_body)


def anthropic_endpoint(*methods: str):
    return gateway_endpoint(*methods, error_response=anthropic_error_response)


# --- the Message object ------------------------------------------------------------------------


def stop_reason(final: dict) -> str:
    if final.get("stop_sequence"):
        return "stop_sequence"
    return STOP_REASONS.get(final.get("finish_reason") or "", "end_turn")


def _input(arguments: str) -> dict:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def content_blocks(final: dict) -> list[dict]:
    """The reply's blocks: thinking (when asked for), text, then its tool calls."""
    blocks: list[dict] = []
    if final.get("thinking"):
        blocks.append({"type": "thinking", "thinking": final["thinking"], "signature": ""})
    if final.get("content") or not final.get("tool_calls"):
        blocks.append({"type": "text", "text": final.get("content") or ""})
    blocks += [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": _input(c["arguments"])}
               for c in final.get("tool_calls") or []]
    return blocks


def usage(final: dict) -> dict:
    used = final.get("usage") or {}
    return {"input_tokens": used.get("prompt_tokens", 0), "output_tokens": used.get("completion_tokens", 0)}


def message_object(final: dict, *, model: str) -> dict:
    return {"id": final["stream_id"], "type": "message", "role": "assistant", "model": model,
            "content": content_blocks(final), "stop_reason": stop_reason(final),
            "stop_sequence": final.get("stop_sequence"), "usage": usage(final)}


def messages_turn(data: dict) -> Turn:
    """A stateless turn: the trailing user turn (with its tool results) is the new input."""
    history, inputs = split_inputs(data["chat"])
    return Turn(inputs=inputs, history=history, model=data["model"], system=data.get("system_text"),
                params=params_of(data), end_user=(data.get("metadata") or {}).get("user_id") or None)


# --- views -------------------------------------------------------------------------------------


@anthropic_endpoint("POST")
async def messages_create(request: HttpRequest) -> HttpResponse:
    """``POST /v1/messages``."""
    started = request.gateway_started
    begun = await gateway_turn(request, MessagesInput, lambda caller, data: messages_turn(data))
    data, idem = begun.data, begun.idem
    model = data["model"]
    if begun.stored is not None:
        return await replay.replayed(request, begun.stored, {}, lambda stream_id, after: sse.sse_response(
            message_events(streaming.reply_events(stream_id, after=after), model=model)))
    reply = begun.reply
    if data.get("stream"):
        await replay.keep_stream(idem, reply.stream_id)
        response = sse.sse_response(message_events(streaming.stream_reply(reply), model=model),
                                    headers={"X-Stream-ID": reply.stream_id})
        _overhead(response, started)
        return response
    provider_ms: list[float] = [0.0]

    def build(final: dict) -> dict:
        provider_ms[0] = float(final.get("latency_ms") or 0.0)
        return message_object(final, model=model)

    status, payload = await asyncio.shield(replay.settle(reply, idem, build))
    if status != 200:
        status, payload = anthropic_error_body(status, payload)
    response = JsonResponse(payload, status=status, headers=replay.error_headers(reply))
    _overhead(response, started, provider_ms[0])
    return response


def _count(data: dict) -> int:
    if provider_selectors.catalogue_model(data["model"]) is None:
        raise UnknownModel(data["model"])
    request = ChatRequest(model=data["model"], messages=data["chat"], system=data.get("system_text"),
                          params=params_of(data))
    return request.prompt_estimate()


@anthropic_endpoint("POST")
async def count_tokens(request: HttpRequest) -> HttpResponse:
    """``POST /v1/messages/count_tokens``."""
    await authenticate(request, chatbot_keys=True)
    data = validated(CountTokensInput, json_body(request))
    return JsonResponse({"input_tokens": await sync_to_async(_count)(data)})


# --- streaming ---------------------------------------------------------------------------------


class _EventWriter:
    """Pipeline events -> Anthropic's stream: content blocks opened (``content_block_start``), filled
    by deltas and closed (``content_block_stop``) between ``message_start`` and ``message_stop``."""

    def __init__(self, *, model: str) -> None:
        self.model = model
        self.index = -1  # the open block's index
        self.open: str | None = None  # its type
        self.pinged = False

    @staticmethod
    def _event(kind: str, **fields: Any) -> bytes:
        return sse.encode({"type": kind, **fields}, event=kind)

    def start(self, event: dict) -> list[bytes]:
        message = {"id": event["stream_id"], "type": "message", "role": "assistant", "model": self.model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0}}
        return [self._event("message_start", message=message)]

    def close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        return [self._event("content_block_stop", index=self.index)]

    def _block(self, kind: str, block: dict) -> list[bytes]:
        out = self.close()
        self.index += 1
        self.open = kind
        out.append(self._event("content_block_start", index=self.index, content_block=block))
        if not self.pinged:
            self.pinged = True
            out.append(self._event("ping"))
        return out

    def text(self, delta: str) -> list[bytes]:
        out = [] if self.open == "text" else self._block("text", {"type": "text", "text": ""})
        return [*out, self._event("content_block_delta", index=self.index, delta={"type": "text_delta", "text": delta})]

    def thinking(self, delta: str) -> list[bytes]:
        out = [] if self.open == "thinking" else self._block("thinking", {"type": "thinking", "thinking": "",
                                                                          "signature": ""})
        return [*out, self._event("content_block_delta", index=self.index,
                                  delta={"type": "thinking_delta", "thinking": delta})]

    def tool_call(self, event: dict) -> list[bytes]:
        out: list[bytes] = []
        if event.get("call_id") or self.open != "tool_use":
            out = self._block("tool_use", {"type": "tool_use", "id": event.get("call_id") or "",
                                           "name": event.get("name") or "", "input": {}})
        if event.get("arguments"):
            out.append(self._event("content_block_delta", index=self.index,
                                   delta={"type": "input_json_delta", "partial_json": event["arguments"]}))
        return out

    def done(self, event: dict) -> list[bytes]:
        out = self.close() if self.index >= 0 else [*self._block("text", {"type": "text", "text": ""}), *self.close()]
        delta = {"stop_reason": stop_reason(event), "stop_sequence": event.get("stop_sequence")}
        return [*out, self._event("message_delta", delta=delta, usage=usage(event)), self._event("message_stop")]

    def error(self, event: dict) -> list[bytes]:
        _, body = anthropic_error_body(event["status_code"], envelope(event["status_code"], event["message"],
                                                                      code=event["code"]))
        return [*self.close(), self._event("error", error=body["error"])]


async def message_events(events: AsyncIterator[dict], *, model: str) -> AsyncIterator[bytes]:
    writer = _EventWriter(model=model)
    async for chunk in written_events(events, writer):
        yield chunk
