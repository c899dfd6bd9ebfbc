"""The seeds' body, event and frame shapes, made from the pipeline's events (see
:mod:`chats.streaming`). Transports choose one and send it; which seed reads which key, and why
the shapes are supersets, is in ``docs/compat.md``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from chatplatform.api.asyncviews import output_data
from chatplatform.api.exceptions import AppError
from chats.serializers import SendMessageOutput

# Seed 001's error-code table; other codes are mapped onto it by HTTP status.
SEED_CODES = {"INVALID_REQUEST", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED", "PROVIDER_ERROR",
              "TIMEOUT", "INTERNAL_ERROR"}
_STATUS_CODES = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 429: "RATE_LIMITED", 502: "PROVIDER_ERROR",
                 503: "PROVIDER_ERROR", 504: "TIMEOUT"}


def usage(event: dict) -> dict:
    return event.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def iso(value: str | None) -> str:
    return (value or "").replace("+00:00", "Z")


def event_id(event: dict) -> str:
    """A pipeline event's resumable id, ``<stream_id>:<n>``."""
    return f"{event['stream_id']}:{event['id']}"


# --- JSON bodies ---------------------------------------------------------------------------------


def message_body(final: dict, started: float) -> dict:
    """The answer of ``POST /chat/message`` (seed 000; ``message`` and ``response`` hold the same
    text) and of ``/chat/chat`` (seed 003 adds its keys)."""
    return output_data(SendMessageOutput, {
        "message": final["content"], "response": final["content"],
        "conversation_id": final["conversation_id"], "message_id": final["message_id"],
        "user_message_id": final["user_message_id"], "parent_message_id": final["parent_message_id"],
        "model_used": final["model"], "provider_used": final["provider"],
        "tokens_used": usage(final)["total_tokens"], "usage": usage(final),
        "processing_time": round(time.perf_counter() - started, 3),
        "timestamp": datetime.fromisoformat(final["timestamp"]),
        "finish_reason": final["finish_reason"], "status": final["status"],
    })


def completion_body(final: dict, request_id: str) -> dict:
    """The answer of ``POST /chat/completion`` (seed 001)."""
    return {
        "response": final["content"], "model": final["model"], "provider": final["provider"],
        "request_id": request_id, "timestamp": iso(final.get("timestamp")),
        "cached": bool(final.get("cached")), "cache_key": final.get("cache_key"),
        "similarity_score": final.get("similarity_score"), "finish_reason": final["finish_reason"],
        "usage": usage(final),
    }


def assistant_message(final: dict) -> dict:
    """Seed 004's ``message``: the reply, in OpenAI's shape when it calls tools."""
    message: dict[str, Any] = {"role": "assistant", "content": final.get("content", "")}
    if final.get("tool_calls"):
        message["tool_calls"] = [{"id": c["id"], "type": "function",
                                  "function": {"name": c["name"], "arguments": c["arguments"]}}
                                 for c in final["tool_calls"]]
    return message


def chat_completions_body(final: dict) -> dict:
    """The answer of ``POST /api/v1/chat/completions`` (seed 004)."""
    data = {
        "id": final["message_id"] or final["stream_id"], "model": final["model"],
        "message": assistant_message(final), "tokens_used": usage(final)["total_tokens"],
        "finish_reason": final["finish_reason"], "chat_id": final["conversation_id"],
        "user_message_id": final["user_message_id"], "provider": final["provider"], "usage": usage(final),
        "created_at": iso(final.get("timestamp")),
    }
    if final.get("thinking"):
        data["thinking"] = final["thinking"]
    if final.get("citations") is not None:
        data["citations"] = final["citations"]
    return data


def error_details(final: dict) -> dict:
    """What a failed reply's error envelope names: its stream, message, conversation and user message."""
    details: dict[str, Any] = {"stream_id": final["stream_id"]}
    if final.get("conversation_id"):
        details.update(conversation_id=final["conversation_id"], chat_id=final["conversation_id"],
                       user_message_id=final.get("user_message_id"), message_id=final.get("message_id"))
    return details


# --- seed 001's SSE events (seed 004 streams the same) ---------------------------------------------


def sse_finished(event: dict, request_id: str) -> dict:
    """The last event: seed 001's ``finished``/``usage``, plus seed 004's response keys."""
    data: dict[str, Any] = {
        "finished": True, "usage": usage(event), "response": event.get("content", ""), "model": event.get("model", ""),
        "provider": event.get("provider", ""), "finish_reason": event.get("finish_reason", ""),
        "status": event.get("status", ""), "stream_id": event["stream_id"], "request_id": request_id,
        "cached": bool(event.get("cached")),
    }
    if event.get("conversation_id"):
        data.update(id=event.get("message_id") or event["stream_id"], chat_id=event["conversation_id"],
                    message=assistant_message(event),
                    tokens_used=usage(event)["total_tokens"])
    if event.get("thinking"):
        data["thinking"] = event["thinking"]
    if event.get("citations") is not None:
        data["citations"] = event["citations"]
    return data


def sse_error(event: dict, request_id: str) -> dict:
    data = {"error": event.get("message", "The AI provider returned an error."), "code": event.get("code", ""),
            "status_code": event.get("status_code", 502), "finished": True, "usage": usage(event),
            "response": event.get("content", ""), "status": "error", "stream_id": event["stream_id"],
            "request_id": request_id}
    if event.get("conversation_id"):
        data["chat_id"] = event["conversation_id"]
    return data


# --- WebSocket frames --------------------------------------------------------------------------------


def error_code(status_code: int, code: str | None = None) -> str:
    """The seed 001 code for an error: its own code when the table has it, else by status (a
    service of ours being away says so: its table has no such row)."""
    if code in SEED_CODES or code == "SERVICE_UNAVAILABLE":
        return code
    if status_code in _STATUS_CODES:
        return _STATUS_CODES[status_code]
    return "INVALID_REQUEST" if 400 <= status_code < 500 else "INTERNAL_ERROR"


def error_frame(code: str, message: str, *, id: Any = None, status_code: int | None = None,
                details: dict | None = None, **extra: Any) -> dict:
    """Seed 001's error frame (``data.error``, ``data.code``), with ``error``/``code`` also at the
    top level for seed 000/003 clients, which read frames flat."""
    data: dict[str, Any] = {"error": message, "code": code}
    if status_code is not None:
        data["status_code"] = status_code
    if details:
        data["details"] = details
    return {"type": "error", "id": id, "error": message, "code": code, "data": data,
            **{k: v for k, v in extra.items() if v is not None}}


def app_error_frame(exc: AppError, *, id: Any = None) -> dict:
    details = dict(exc.details or {})
    retry_after = exc.headers.get("Retry-After") if exc.headers else None
    if retry_after:
        details.setdefault("retry_after", int(retry_after))
    return error_frame(error_code(exc.status_code, exc.code), exc.message, id=id, status_code=exc.status_code,
                       details=details)


class Frames:
    """Turns the pipeline's events into one protocol's frames (``None``: nothing to send)."""

    protocol = ""

    def __init__(self, *, client_id: Any = None, stream: bool = True) -> None:
        self.client_id = client_id
        self.stream = stream
        self.conversation_id: str | None = None

    def frame(self, event: dict) -> dict | None:
        kind = event["type"]
        if kind == "start":
            self.conversation_id = event.get("conversation_id")
        elif kind == "delta":
            return self.delta(event) if self.stream else None
        elif kind == "done":
            return self.done(event)
        elif kind == "error":
            return self.error(event)
        return None  # start, thinking: no frame in these protocols

    def _ids(self) -> dict:
        return {"id": self.client_id} if self.client_id is not None else {}

    def delta(self, event: dict) -> dict:
        raise NotImplementedError

    def done(self, event: dict) -> dict:
        raise NotImplementedError

    def error(self, event: dict) -> dict:
        details: dict[str, Any] = {"partial_response": event["content"]}
        retry_after = (event.get("headers") or {}).get("Retry-After")
        if retry_after:  # a provider's 429: as long as it asked for
            details["retry_after"] = int(retry_after)
        return error_frame(error_code(event["status_code"], event["code"]), event["message"], id=self.client_id,
                           status_code=event["status_code"], details=details,
                           event_id=event_id(event), stream_id=event["stream_id"],
                           conversation_id=event.get("conversation_id"), message_id=event.get("message_id"))


class FlatFrames(Frames):
    """Seeds 000 and 003: flat frames. Their clients read the reply from every frame they get
    (``response``, ``content``), so stream frames (only when asked for) carry the piece of text
    under ``delta``, a key those clients do not read as the reply."""

    def __init__(self, *, client_id: Any = None, stream: bool = False) -> None:
        super().__init__(client_id=client_id, stream=stream)

    def delta(self, event: dict) -> dict:
        return {"type": "stream", **self._ids(), "delta": event["text"], "index": event["index"],
                "conversation_id": self.conversation_id, "message_id": event["stream_id"],
                "event_id": event_id(event)}


class FlatResponseFrames(FlatFrames):
    """The whole reply in ``response`` of the final ``message`` frame, with the fields of
    ``POST /chat/message`` (seed 000's ``/ws/chat/{conversation_id}``)."""

    protocol = "response"

    def done(self, event: dict) -> dict:
        return {"type": "message", **self._ids(), "response": event["content"], "message": event["content"],
                "content": event["content"], "conversation_id": event["conversation_id"],
                "message_id": event["message_id"], "user_message_id": event["user_message_id"],
                "model_used": event["model"], "provider_used": event["provider"],
                "tokens_used": usage(event)["total_tokens"], "processing_time": round(event["latency_ms"] / 1000, 3),
                "finish_reason": event["finish_reason"], "status": event["status"],
                "timestamp": event["timestamp"], "event_id": event_id(event)}


class EnvelopeFrames(Frames):
    """``{"type", "id", "data"}`` frames (seed 001's ``chat``): ``stream`` then ``complete``; a
    cancelled chat ends with ``complete`` (``cancelled: true``)."""

    protocol = "envelope"

    def delta(self, event: dict) -> dict:
        return {"type": "stream", "id": self.client_id, "event_id": event_id(event),
                "data": {"chunk": event["text"], "index": event["index"], "finished": False}}

    def done(self, event: dict) -> dict:
        data = {"response": event["content"], "model": event["model"], "usage": usage(event),
                "cached": bool(event.get("cached")), "finish_reason": event["finish_reason"], "cancelled": event["status"] == "incomplete"}
        if event.get("conversation_id"):
            data.update(conversation_id=event["conversation_id"], message_id=event["message_id"])
        return {"type": "complete", "id": self.client_id, "event_id": event_id(event), "data": data}


class FlatContentFrames(FlatFrames):
    """The whole reply in ``content`` of the final ``message`` frame (seed 003's ``message`` on
    ``/ws/chat``)."""

    protocol = "content"

    def done(self, event: dict) -> dict:
        return {"type": "message", **self._ids(), "content": event["content"],
                "conversation_id": event["conversation_id"], "message_id": event["message_id"],
                "tokens_used": usage(event)["total_tokens"], "response_time": round(event["latency_ms"]),
                "model": event["model"], "finish_reason": event["finish_reason"], "status": event["status"],
                "timestamp": event["timestamp"], "event_id": event_id(event)}


FRAMES: dict[str, type[Frames]] = {f.protocol: f for f in (FlatResponseFrames, EnvelopeFrames, FlatContentFrames)}
