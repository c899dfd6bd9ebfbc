"""WebSocket chat transports (seeds 000, 001 and 003), thin over :mod:`chats.streaming`.

Routes (``chats/routing.py``):

* ``/ws/chat/{conversation_id}`` (seed 000, needs an account): ``{"type": "message", "content"}``
  in that conversation of the caller (an unknown id of the caller starts it); the reply is one
  ``message`` frame whose ``response`` is the whole reply.
* ``/ws/chat`` (seed 001, open to anonymous callers while ``ANONYMOUS_CHAT``): ``chat`` ->
  ``stream``... ``complete`` | ``error``, ``ping`` -> ``pong``, ``cancel`` by id; several chats may
  be in flight at once, each identified by its ``id``. Seed 003's ``{"type": "message", "content",
  "conversation_id"}`` on the same path (needs an account); its reply frame carries ``content``.

Seed 000 and 003 clients read ``response``/``content`` of every frame as the reply, so by default
they get one final frame holding the whole reply. A client that wants the text as it is made asks
with ``"stream": true`` in the frame (or ``?stream=true`` on the URL): ``stream`` frames then carry
each piece under ``delta`` (never under ``response``/``content``), before the same final frame.

Both take ``{"type": "resume", "last_event_id": "<stream_id>:<n>"}``: every frame made from a
stream carries ``event_id``, and a generation goes on server-side when its socket drops.

Close codes: 4401 not authenticated (or invalid/expired token), 4404 conversation not found or
not yours, 4429 too many connects. Per-frame problems are ``error`` frames; the socket stays open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from chatplatform.api import fields
from chatplatform.api.exceptions import AppError
from chatplatform.api.ids import new_id
from chatplatform.api.net import client_ip_from
from chatplatform.api.websocket import CLOSE_NOT_FOUND, CLOSE_RATE_LIMITED, CLOSE_UNAUTHENTICATED
from chats import selectors, services, streaming
from chats.hub import RETENTION_SECONDS, TERMINAL, get_hub
from providers import selectors as provider_selectors
from providers import services as provider_services
from providers.services import ChatCall

logger = logging.getLogger(__name__)

# Defaults; each can be overridden by a setting of the same name.
MAX_HISTORY = 200
WINDOW_SECONDS = 60

# Seed 001's error-code table; other codes are mapped onto it by HTTP status.
SEED_CODES = {"INVALID_REQUEST", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED", "PROVIDER_ERROR",
              "TIMEOUT", "INTERNAL_ERROR"}
_STATUS_CODES = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 429: "RATE_LIMITED", 502: "PROVIDER_ERROR",
                 503: "PROVIDER_ERROR", 504: "TIMEOUT"}


def _setting(name: str) -> int:
    """A WebSocket limit from settings (WS_* in chatplatform/settings.py; read per use so tests and
    reconfiguration take effect)."""
    return int(getattr(settings, name))


def _now_iso() -> str:
    return timezone.now().isoformat().replace("+00:00", "Z")


def error_code(status_code: int, code: str | None = None) -> str:
    """The seed 001 code for an error: its own code when the table has it, else by status."""
    if code in SEED_CODES:
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


def _app_error_frame(exc: AppError, *, id: Any = None) -> dict:
    details = dict(exc.details or {})
    retry_after = exc.headers.get("Retry-After") if exc.headers else None
    if retry_after:
        details.setdefault("retry_after", int(retry_after))
    return error_frame(error_code(exc.status_code, exc.code), exc.message, id=id, status_code=exc.status_code,
                       details=details)


def _flatten(errors: Any) -> Any:
    if isinstance(errors, dict):
        return {str(k): _flatten(v) for k, v in errors.items()}
    if isinstance(errors, list):
        return [_flatten(v) for v in errors]
    return str(errors)


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise AppError("Invalid request.", status_code=400, code="INVALID_REQUEST",
                       details=_flatten(serializer.errors))
    return serializer.validated_data


# --- frame shapes ------------------------------------------------------------------------------


class HistoryItem(serializers.Serializer):
    role = serializers.ChoiceField(choices=["user", "assistant", "system"])
    content = fields.TextField(allow_blank=True, trim_whitespace=False)


class ChatData(serializers.Serializer):
    """Seed 001's ``chat`` frame ``data``."""

    message = fields.TextField(trim_whitespace=False)
    model = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=100)
    stream = serializers.BooleanField(required=False, default=True)
    temperature = fields.NumberField(required=False, allow_null=True, min_value=0, max_value=2)
    max_tokens = fields.IntegerField(required=False, allow_null=True, min_value=1, max_value=1_000_000)
    system_prompt = fields.TextField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    conversation_history = serializers.ListField(child=HistoryItem(), required=False, max_length=MAX_HISTORY)
    conversation_id = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=40)

    def validate_message(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value


class ModelParameters(serializers.Serializer):
    temperature = fields.NumberField(required=False, allow_null=True, min_value=0, max_value=2)
    max_tokens = fields.IntegerField(required=False, allow_null=True, min_value=1, max_value=1_000_000)
    top_p = fields.NumberField(required=False, allow_null=True, min_value=0, max_value=1)


class MessageFrame(serializers.Serializer):
    """Seed 000/003's ``message`` frame (``message`` is accepted for ``content``, as in REST)."""

    content = fields.TextField(required=False, allow_blank=True, trim_whitespace=False)
    message = fields.TextField(required=False, allow_blank=True, trim_whitespace=False)
    conversation_id = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=40)
    model = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=100)
    provider = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=50)
    system_prompt = fields.TextField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    temperature = fields.NumberField(required=False, allow_null=True, min_value=0, max_value=2)
    max_tokens = fields.IntegerField(required=False, allow_null=True, min_value=1, max_value=1_000_000)
    top_p = fields.NumberField(required=False, allow_null=True, min_value=0, max_value=1)
    model_parameters = ModelParameters(required=False)
    stream = serializers.BooleanField(required=False, allow_null=True, default=None,
                                      help_text="Send the reply as it is made (delta frames) before the final frame.")

    def validate(self, attrs: dict) -> dict:
        text = attrs.get("content") or attrs.get("message") or ""
        if not text.strip():
            raise serializers.ValidationError({"content": ["This field is required."]})
        attrs["text"] = text
        return attrs


def _message_options(values: dict) -> streaming.ReplyOptions:
    params = values.get("model_parameters") or {}

    def pick(name: str) -> Any:
        return values.get(name) if values.get(name) is not None else params.get(name)

    return streaming.ReplyOptions(model=values.get("model") or None, provider=values.get("provider") or None,
                                  system=values.get("system_prompt") or None, temperature=pick("temperature"),
                                  max_tokens=pick("max_tokens"), top_p=pick("top_p"))


# --- event -> frame formats --------------------------------------------------------------------


def _event_id(event: dict) -> str:
    return f"{event['stream_id']}:{event['id']}"


class Frames:
    """Turns the pipeline's events into one protocol's frames (``None``: nothing to send)."""

    protocol = ""

    def __init__(self, *, client_id: Any = None, stream: bool = True) -> None:
        self.client_id = client_id
        self.stream = stream
        self.text: list[str] = []
        self.conversation_id: str | None = None

    def frame(self, event: dict) -> dict | None:
        kind = event["type"]
        if kind == "start":
            self.conversation_id = event.get("conversation_id")
        elif kind == "delta":
            self.text.append(event["text"])
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
        return error_frame(error_code(event["status_code"], event["code"]), event["message"], id=self.client_id,
                           status_code=event["status_code"], details={"partial_response": event["content"]},
                           event_id=_event_id(event), stream_id=event["stream_id"],
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
                "event_id": _event_id(event)}


class Seed000Frames(FlatFrames):
    """The whole reply in ``response`` of the final ``message`` frame (which also has seed 000's
    REST fields)."""

    protocol = "000"

    def done(self, event: dict) -> dict:
        return {"type": "message", **self._ids(), "response": event["content"], "message": event["content"],
                "content": event["content"], "conversation_id": event["conversation_id"],
                "message_id": event["message_id"], "user_message_id": event["user_message_id"],
                "model_used": event["model"], "provider_used": event["provider"],
                "tokens_used": event["usage"]["total_tokens"], "processing_time": round(event["latency_ms"] / 1000, 3),
                "finish_reason": event["finish_reason"], "status": event["status"],
                "timestamp": event["timestamp"], "event_id": _event_id(event)}


class Seed001Frames(Frames):
    """Seed 001's documented frames; a cancelled chat ends with ``complete`` (``cancelled: true``)."""

    protocol = "001"

    def delta(self, event: dict) -> dict:
        return {"type": "stream", "id": self.client_id, "event_id": _event_id(event),
                "data": {"chunk": event["text"], "index": event["index"], "finished": False}}

    def done(self, event: dict) -> dict:
        data = {"response": event["content"], "model": event["model"], "usage": event["usage"], "cached": False,
                "finish_reason": event["finish_reason"], "cancelled": event["status"] == "incomplete"}
        if event.get("conversation_id"):
            data.update(conversation_id=event["conversation_id"], message_id=event["message_id"])
        return {"type": "complete", "id": self.client_id, "event_id": _event_id(event), "data": data}


class Seed003Frames(FlatFrames):
    """The whole reply in ``content`` of the final ``message`` frame."""

    protocol = "003"

    def done(self, event: dict) -> dict:
        return {"type": "message", **self._ids(), "content": event["content"],
                "conversation_id": event["conversation_id"], "message_id": event["message_id"],
                "tokens_used": event["usage"]["total_tokens"], "response_time": round(event["latency_ms"]),
                "model": event["model"], "finish_reason": event["finish_reason"], "status": event["status"],
                "timestamp": event["timestamp"], "event_id": _event_id(event)}


FRAMES: dict[str, type[Frames]] = {f.protocol: f for f in (Seed000Frames, Seed001Frames, Seed003Frames)}


# --- helpers over services/selectors -----------------------------------------------------------


def _connect_retry_after(key: str, limit: int) -> int:
    """Count one connect in a one-minute window kept in the (shared) cache: 0 if allowed, else
    the seconds until the window ends."""
    counter, since = f"ws:connects:{key}", f"ws:connects:{key}:since"
    now = time.time()
    if cache.add(counter, 0, timeout=WINDOW_SECONDS):
        cache.set(since, now, timeout=WINDOW_SECONDS)
    try:
        count = cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.set(counter, 1, timeout=WINDOW_SECONDS)
        count = 1
    if count <= limit:
        return 0
    return max(1, int(WINDOW_SECONDS - (now - (cache.get(since) or now))) + 1)


@database_sync_to_async
def _start_turn(*, user, conversation_id: str | None, text: str, create: bool, options: streaming.ReplyOptions):
    """The caller's conversation (an unknown id starts it when ``create``) and the saved user
    message. Parameters the provider layer would refuse are refused first: nothing is saved then."""
    with transaction.atomic():
        if create:
            conversation = services.conversation_get_or_create(user=user, conversation_id=conversation_id or None)
        else:
            conversation = selectors.conversation_get(user=user, conversation_id=conversation_id)
        provider_services.chat_stream(ChatCall(  # plans and validates; starts nothing
            messages=[], model=options.model or conversation.model or None,
            provider=options.provider or conversation.provider or None,
            temperature=options.temperature, max_tokens=options.max_tokens, top_p=options.top_p))
        return conversation, services.message_add_user(conversation=conversation, content=text)


def _parse_event_id(value: Any) -> tuple[str, int]:
    if not isinstance(value, str) or not value.strip():
        raise AppError("last_event_id is required ('<stream_id>:<n>').", status_code=400, code="INVALID_REQUEST",
                       details={"last_event_id": ["This field is required."]})
    stream_id, _, number = value.strip().rpartition(":")
    if not stream_id:
        return number, 0  # a bare stream id: everything from the start
    if not number.isdigit():
        raise AppError("last_event_id must look like '<stream_id>:<n>'.", status_code=400, code="INVALID_REQUEST",
                       details={"last_event_id": ["Expected '<stream_id>:<n>'."]})
    return stream_id, int(number)


def _meta_key(stream_id: str) -> str:
    return f"ws:stream:{stream_id}"


# --- consumers ---------------------------------------------------------------------------------


@dataclass
class _Flight:
    key: str
    stream_id: str | None = None
    task: asyncio.Task | None = None
    cancelled: bool = False


class _ChatSocket(AsyncJsonWebsocketConsumer):
    """What both chat routes share: admission (rate limit, auth), frame limits and parsing,
    ping, cancel, resume, and the reader tasks that turn a stream's events into frames."""

    async def connect(self) -> None:
        self.flights: dict[str, _Flight] = {}
        self.recent: deque[float] = deque()
        self.refused = False
        self.user = self.scope.get("user") or AnonymousUser()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        self.stream_by_default = (query.get("stream") or [""])[0].strip().lower() in ("1", "true", "yes", "on")
        await self.accept()  # then close with a code, so browsers see it
        refusal = await self.admit()
        if refusal is not None:
            close_code, frame = refusal
            self.refused = True
            await self.send_json(frame)
            await self.close(code=close_code)

    def wants_stream(self, values: dict) -> bool:
        """Seed 000/003 frames: streamed when the frame says ``"stream": true`` (or, when it says
        nothing, the URL had ``?stream=true``)."""
        return self.stream_by_default if values.get("stream") is None else bool(values["stream"])

    @property
    def authenticated(self) -> bool:
        return bool(getattr(self.user, "is_authenticated", False))

    def owner_scope(self) -> str:
        """Who may resume this connection's stateless streams (as the SSE routes decide it)."""
        return f"user:{self.user.pk}" if self.authenticated else f"ip:{self.client_ip()}"

    def client_ip(self) -> str:
        peer = (self.scope.get("client") or ("", 0))[0] or ""
        headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in self.scope.get("headers", [])}
        return client_ip_from(peer, headers.get("x-forwarded-for"))

    async def admit(self) -> tuple[int, dict] | None:
        """Refuse the connection (close code, error frame), or None to keep it."""
        if self.authenticated:
            key, limit = f"user:{self.user.pk}", _setting("WS_CONNECTS_PER_MINUTE")
        else:
            key, limit = f"ip:{self.client_ip()}", _setting("WS_CONNECTS_PER_MINUTE_ANONYMOUS")
        retry_after = await sync_to_async(_connect_retry_after, thread_sensitive=False)(key, limit)
        if retry_after:
            return CLOSE_RATE_LIMITED, error_frame("RATE_LIMITED", "Too many WebSocket connections; retry later.",
                                                   status_code=429, details={"retry_after": retry_after})
        if self.scope.get("auth_error"):
            return CLOSE_UNAUTHENTICATED, error_frame("UNAUTHORIZED", "Invalid or expired token.", status_code=401)
        return None

    async def disconnect(self, code: int) -> None:
        # Stop reading; the generations go on server-side (partial replies are saved as incomplete).
        tasks = [f.task for f in self.flights.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- incoming frames --

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.refused:
            return
        retry_after = self._message_retry_after()  # every frame counts, malformed ones too
        raw = text_data if text_data is not None else bytes_data or b""
        size = len(raw.encode()) if isinstance(raw, str) else len(raw)
        limit = _setting("WS_MAX_FRAME_BYTES")
        if size > limit:
            await self.send_json(error_frame("INVALID_REQUEST", f"Frame too large (at most {limit} bytes).",
                                             status_code=413))
            return
        try:
            content = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            content = None
        client_id = content.get("id") if isinstance(content, dict) and isinstance(content.get("id"), (str, int)) \
            else None
        if retry_after:
            await self.send_json(error_frame("RATE_LIMITED", "Too many messages on this connection.", id=client_id,
                                             status_code=429, details={"retry_after": retry_after}))
            return
        if not isinstance(content, dict):
            await self.send_json(error_frame("INVALID_REQUEST", "Malformed JSON: a frame must be a JSON object.",
                                             status_code=400))
            return
        try:
            await self.receive_json(content)
        except AppError as exc:
            await self.send_json(_app_error_frame(exc, id=client_id))
        except Exception:
            logger.exception("WebSocket frame failed")
            await self.send_json(error_frame("INTERNAL_ERROR", "An unexpected error occurred.", id=client_id,
                                             status_code=500))

    def _message_retry_after(self) -> int:
        now = time.monotonic()
        while self.recent and now - self.recent[0] >= WINDOW_SECONDS:
            self.recent.popleft()
        if len(self.recent) >= _setting("WS_MESSAGES_PER_MINUTE"):
            return max(1, int(WINDOW_SECONDS - (now - self.recent[0])) + 1)
        self.recent.append(now)
        return 0

    async def receive_json(self, content: dict, **kwargs: Any) -> None:
        kind = content.get("type")
        handler = self.handlers().get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise AppError(f"Unknown message type {kind!r}; expected one of {sorted(self.handlers())}.",
                           status_code=400, code="INVALID_REQUEST", details={"type": ["Unknown message type."]})
        await handler(content)

    def handlers(self) -> dict[str, Callable]:
        return {"ping": self.on_ping, "cancel": self.on_cancel, "resume": self.on_resume}

    async def on_ping(self, content: dict) -> None:
        pong = {"type": "pong", "id": content.get("id"), "timestamp": _now_iso()}
        if content.get("timestamp") is not None:
            pong["client_timestamp"] = content["timestamp"]
        await self.send_json(pong)

    async def on_cancel(self, content: dict) -> None:
        """Cancel the generation named by ``id`` (or ``stream_id``/``message_id``); none named: all
        of this connection's. Each ends with its final frame, saying it was cancelled."""
        target = content.get("id") or content.get("stream_id") or content.get("message_id")
        flights = [f for f in self.flights.values()
                   if target is None or f.key == str(target) or f.stream_id == target]
        if not flights:
            raise AppError("No generation in flight with this id.", status_code=404, code="NOT_FOUND")
        for flight in flights:
            flight.cancelled = True
            if flight.stream_id:  # otherwise it is cancelled as soon as it starts
                await streaming.cancel_reply(flight.stream_id)

    async def on_resume(self, content: dict) -> None:
        stream_id, after = _parse_event_id(content.get("last_event_id"))
        meta = await cache.aget(_meta_key(stream_id)) or {}
        if meta and meta.get("conversation_id") is None:
            # A stateless (seed 001) stream belongs to its caller: the user, or the address when anonymous.
            if meta.get("owner") != self.owner_scope():
                raise AppError("Stream not found.", status_code=404)
        else:
            await streaming.stream_owner_check(stream_id, self.user)
        if not await get_hub().exists(stream_id):
            raise AppError("Stream not found or expired; the saved message has the reply.", status_code=404)
        client_id = content.get("id") if content.get("id") is not None else meta.get("id")
        protocol = meta.get("protocol") or self.resume_protocol(content)
        stream = meta["stream"] if "stream" in meta else (protocol == "001" or self.wants_stream(content))
        frames = FRAMES[protocol](client_id=client_id, stream=stream)
        self.launch(str(client_id) if client_id is not None else stream_id,
                    lambda: streaming.reply_events(stream_id), frames, after=after, stream_id=stream_id)

    def resume_protocol(self, content: dict) -> str:
        raise NotImplementedError

    # -- generations --

    def launch(self, key: str, events: Callable[[], AsyncIterator[dict]], frames: Frames, *, after: int = 0,
               stream_id: str | None = None, meta: dict | None = None) -> None:
        """Read a stream in a task of its own, sending its frames (events after ``after``)."""
        if key in self.flights:
            raise AppError(f"A generation with id {key!r} is already in flight.", status_code=400,
                           code="INVALID_REQUEST", details={"id": ["Already in flight."]})
        if len(self.flights) >= _setting("WS_MAX_IN_FLIGHT"):
            raise AppError("Too many generations in flight on this connection.", status_code=429)
        flight = self.flights[key] = _Flight(key=key, stream_id=stream_id)
        flight.task = asyncio.create_task(self._pump(flight, events, frames, after, meta))

    async def _pump(self, flight: _Flight, events: Callable[[], AsyncIterator[dict]], frames: Frames, after: int,
                    meta: dict | None) -> None:
        finished = False
        try:
            async with aclosing(events()) as stream:
                async for event in stream:
                    if event["type"] == "start" and flight.stream_id is None:
                        flight.stream_id = event["stream_id"]
                        if meta is not None:
                            await cache.aset(_meta_key(flight.stream_id),
                                             {**meta, "protocol": frames.protocol, "id": frames.client_id,
                                              "stream": frames.stream, "conversation_id": event["conversation_id"]},
                                             timeout=RETENTION_SECONDS)
                        if flight.cancelled:
                            await streaming.cancel_reply(flight.stream_id)
                    finished = event["type"] in TERMINAL
                    frame = frames.frame(event)
                    if frame is not None and event["id"] > after:
                        await self.send_json(frame)
        except AppError as exc:
            await self.send_json(_app_error_frame(exc, id=frames.client_id))
        except Exception:
            logger.exception("WebSocket generation failed")
            await self.send_json(error_frame("INTERNAL_ERROR", "An unexpected error occurred.", id=frames.client_id,
                                             status_code=500))
        finally:
            if self.flights.get(flight.key) is flight:
                del self.flights[flight.key]
            if not finished and flight.stream_id:
                await asyncio.shield(streaming.snapshot_partial(flight.stream_id))

    def turn(self, key: str, *, conversation_id: str | None, create: bool, text: str,
             options: streaming.ReplyOptions, frames: Frames) -> None:
        """A conversation turn: save the user's message, then stream the reply."""
        user, api_key = self.user, self.scope.get("auth")

        async def events() -> AsyncIterator[dict]:
            conversation, message = await _start_turn(user=user, conversation_id=conversation_id, text=text,
                                                      create=create, options=options)
            async with aclosing(streaming.stream_reply(conversation=conversation, user_message=message,
                                                       options=options, user=user, api_key=api_key,
                                                       request_id=new_id("req"))) as stream:
                async for event in stream:
                    yield event

        self.launch(key, events, frames, meta={"owner": self.owner_scope()})


class ConversationChatConsumer(_ChatSocket):
    """Seed 000: ``/ws/chat/{conversation_id}``."""

    async def admit(self) -> tuple[int, dict] | None:
        refusal = await super().admit()
        if refusal is not None:
            return refusal
        if not self.authenticated:
            return CLOSE_UNAUTHENTICATED, error_frame(
                "UNAUTHORIZED", "Authentication required: connect with ?token=<access token or API key>.",
                status_code=401)
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        try:
            conversation = await database_sync_to_async(services.conversation_get_or_create)(
                user=self.user, conversation_id=conversation_id)
        except AppError:  # another user's (404) or not a valid id (422)
            return CLOSE_NOT_FOUND, error_frame("NOT_FOUND", "Conversation not found.", status_code=404)
        self.conversation_id = conversation.id
        return None

    def handlers(self) -> dict[str, Callable]:
        return {**super().handlers(), "message": self.on_message}

    def resume_protocol(self, content: dict) -> str:
        return "000"

    async def on_message(self, content: dict) -> None:
        values = _validated(MessageFrame, content)
        client_id = content.get("id")
        self.turn(str(client_id) if client_id is not None else new_id("req"), conversation_id=self.conversation_id,
                  create=False, text=values["text"], options=_message_options(values),
                  frames=Seed000Frames(client_id=client_id, stream=self.wants_stream(values)))


class ChatConsumer(_ChatSocket):
    """Seeds 001 (``chat``) and 003 (``message``) on ``/ws/chat``."""

    async def admit(self) -> tuple[int, dict] | None:
        refusal = await super().admit()
        if refusal is None and not self.authenticated and not settings.ANONYMOUS_CHAT:
            return CLOSE_UNAUTHENTICATED, error_frame(
                "UNAUTHORIZED", "Authentication required: connect with ?token=<access token or API key>.",
                status_code=401)
        return refusal

    def handlers(self) -> dict[str, Callable]:
        return {**super().handlers(), "chat": self.on_chat, "message": self.on_message}

    def resume_protocol(self, content: dict) -> str:
        return "001" if content.get("id") is not None else "003"

    async def on_chat(self, content: dict) -> None:
        """Seed 001: stateless (``conversation_history``), or in ``data.conversation_id`` when given."""
        client_id = content.get("id")
        key = str(client_id) if client_id is not None else new_id("req")
        if not isinstance(content.get("data"), dict):
            raise AppError("'data' must be an object.", status_code=400, code="INVALID_REQUEST",
                           details={"data": ["This field is required."]})
        values = _validated(ChatData, content["data"])
        model = values.get("model") or None
        if not self.authenticated:
            if values.get("conversation_id"):
                raise AppError("Conversations need an account: connect with ?token=<access token>.",
                               status_code=401)
            model = await database_sync_to_async(provider_selectors.anonymous_model)(model)
        options = streaming.ReplyOptions(model=model, system=values.get("system_prompt") or None,
                                         temperature=values.get("temperature"), max_tokens=values.get("max_tokens"),
                                         fallback=self.authenticated)  # anonymous: public models only
        frames = Seed001Frames(client_id=client_id, stream=values["stream"])
        if values.get("conversation_id"):
            self.turn(key, conversation_id=values["conversation_id"], create=True, text=values["message"],
                      options=options, frames=frames)
            return
        system, options.history = services.split_system(values.get("conversation_history") or [])
        if system:
            options.system = "\n\n".join(p for p in (options.system, system) if p)
        user, api_key = self.user, self.scope.get("auth")

        def events() -> AsyncIterator[dict]:
            return streaming.stream_reply(conversation=None, user_message=None, options=options, user=user,
                                          api_key=api_key, request_id=new_id("req"), prompt=values["message"])

        self.launch(key, events, frames, meta={"owner": self.owner_scope()})

    async def on_message(self, content: dict) -> None:
        """Seed 003: a turn in ``conversation_id`` (unknown or absent: a new conversation)."""
        if not self.authenticated:
            raise AppError("Authentication required: connect with ?token=<access token or API key>.",
                           status_code=401)
        values = _validated(MessageFrame, content)
        client_id = content.get("id")
        self.turn(str(client_id) if client_id is not None else new_id("req"),
                  conversation_id=values.get("conversation_id") or None, create=True, text=values["text"],
                  options=_message_options(values), frames=Seed003Frames(client_id=client_id,
                                                                       stream=self.wants_stream(values)))
