"""WebSocket chat (seeds 000, 001 and 003): frames in, a turn, the turn's events out as frames.

Routes (``chats/routing.py``):

* ``/ws/chat/{conversation_id}`` (seed 000, needs an account): ``{"type": "message", "content"}``
  in that conversation of the caller (an unknown id of the caller starts it).
* ``/ws/chat`` (seed 001, open to anonymous callers while ``ANONYMOUS_CHAT``): ``chat`` ->
  ``stream``... ``complete`` | ``error``, ``ping`` -> ``pong``, ``cancel`` by id; several chats may
  be in flight at once, each identified by its ``id``. Seed 003's ``{"type": "message", "content",
  "conversation_id"}`` on the same path (needs an account).

Seed 000 and 003 clients read ``response``/``content`` of every frame as the reply, so by default
they get one final frame holding the whole reply; ``"stream": true`` in the frame (or
``?stream=true`` on the URL) adds ``stream`` frames carrying each piece under ``delta``. Both
routes take ``{"type": "resume", "last_event_id": "<stream_id>:<n>"}``: every frame made from a
stream carries ``event_id``, and a generation goes on server-side when its socket drops. Frame
shapes are in :mod:`chats.transports.formats`.

Close codes: 4401 not authenticated (or invalid/expired token), 4404 conversation not found or
not yours, 4429 too many connects, 4503 a service the server needs is unavailable. Per-frame
problems are ``error`` frames; the socket stays open.
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
from django.utils import timezone
from rest_framework import serializers

from chatplatform.api import memo, metrics
from chatplatform.api.asyncviews import input_serializer
from chatplatform.api.exceptions import AppError, flatten_errors, service_unavailable
from chatplatform.api.ids import new_id
from chatplatform.api.net import client_ip_from
from chatplatform.api.ratelimit import window_retry_after
from chatplatform.api.websocket import CLOSE_NOT_FOUND, CLOSE_RATE_LIMITED, CLOSE_UNAUTHENTICATED, CLOSE_UNAVAILABLE
from chats import services, streaming
from chats.hub import RETENTION_SECONDS, TERMINAL
from chats.inputs import ChatData, MessageFrame
from chats.transports import formats, replay
from chats.turns import Caller, Turn, turn_begin
from providers.serializers import GenerationParamsInput

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def _setting(name: str) -> int:
    """A WebSocket limit (WS_* in settings; read per use so reconfiguration takes effect)."""
    return int(getattr(settings, name))


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict:
    serializer = input_serializer(serializer_class, data)
    if not serializer.is_valid():
        raise AppError("Invalid request.", status_code=400, code="INVALID_REQUEST",
                       details=flatten_errors(serializer.errors))
    return serializer.validated_data


def _meta_key(stream_id: str) -> str:
    return f"ws:stream:{stream_id}"


# --- consumers -------------------------------------------------------------------------------------


@dataclass
class _Flight:
    key: str
    stream_id: str | None = None
    task: asyncio.Task | None = None
    cancelled: bool = False


class _ChatSocket(AsyncJsonWebsocketConsumer):
    """What both chat routes share: admission (rate limit, auth), frame limits and parsing,
    ping, cancel, resume, and the reader tasks that turn a stream's events into frames."""

    # No channel layer: a generation reaches readers on any worker through the stream hub, and a
    # layer subscription would hold one blocking Redis read per idle socket.
    channel_layer_alias = None

    async def connect(self) -> None:
        self.flights: dict[str, _Flight] = {}
        self.recent: deque[float] = deque()
        self.refused = False
        self.user = self.scope.get("user") or AnonymousUser()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        self.stream_by_default = (query.get("stream") or [""])[0].strip().lower() in ("1", "true", "yes", "on")
        await self.accept()  # then close with a code, so browsers see it
        self.counted = True
        metrics.websocket_opened()
        try:
            refusal = await self.admit()
        except AppError as exc:  # e.g. the shared cache is away
            refusal = CLOSE_UNAVAILABLE if exc.status_code == 503 else CLOSE_NOT_FOUND, formats.app_error_frame(exc)
        if refusal is not None:
            close_code, frame = refusal
            self.refused = True
            await self.send_json(frame)
            await self.close(code=close_code)

    @property
    def authenticated(self) -> bool:
        return bool(getattr(self.user, "is_authenticated", False))

    def caller(self) -> Caller:
        peer = (self.scope.get("client") or ("", 0))[0] or ""
        headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in self.scope.get("headers", [])}
        return Caller(user=self.user, credential=self.scope.get("auth"),
                      address=client_ip_from(peer, headers.get("x-forwarded-for")), request_id=new_id("req"))

    def wants_stream(self, values: dict) -> bool:
        """Seed 000/003 frames: streamed when the frame says ``"stream": true`` (or, when it says
        nothing, the URL had ``?stream=true``)."""
        return self.stream_by_default if values.get("stream") is None else bool(values["stream"])

    async def admit(self) -> tuple[int, dict] | None:
        """Refuse the connection (close code, error frame), or None to keep it."""
        if self.authenticated:
            key, limit = f"user:{self.user.pk}", _setting("WS_CONNECTS_PER_MINUTE")
        else:
            key, limit = f"ip:{self.caller().address}", _setting("WS_CONNECTS_PER_MINUTE_ANONYMOUS")
        try:
            retry_after = await sync_to_async(window_retry_after, thread_sensitive=False)(
                f"ws:connects:{key}", limit, WINDOW_SECONDS)
        except Exception as exc:
            unavailable = service_unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc
        if retry_after:
            return CLOSE_RATE_LIMITED, formats.error_frame(
                "RATE_LIMITED", "Too many WebSocket connections; retry later.", status_code=429,
                details={"retry_after": retry_after})
        if self.scope.get("auth_error"):
            return CLOSE_UNAUTHENTICATED, formats.error_frame("UNAUTHORIZED", "Invalid or expired token.",
                                                              status_code=401)
        return None

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            metrics.websocket_closed()
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
            await self.send_json(formats.error_frame("INVALID_REQUEST", f"Frame too large (at most {limit} bytes).",
                                                     status_code=413))
            return
        try:
            content = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            content = None
        client_id = content.get("id") if isinstance(content, dict) and isinstance(content.get("id"), (str, int)) \
            else None
        if retry_after:
            await self.send_json(formats.error_frame("RATE_LIMITED", "Too many messages on this connection.",
                                                     id=client_id, status_code=429, details={"retry_after": retry_after}))
            return
        if not isinstance(content, dict):
            await self.send_json(formats.error_frame("INVALID_REQUEST", "Malformed JSON: a frame must be a JSON "
                                                     "object.", status_code=400))
            return
        versions = memo.begin_request()  # a frame is a request: one reading of the memos' versions
        try:
            await self.receive_json(content)
        except AppError as exc:
            await self.send_json(formats.app_error_frame(exc, id=client_id))
        except Exception as exc:
            await self.send_json(self._unexpected_frame(exc, client_id))
        finally:
            memo.end_request(versions)

    @staticmethod
    def _unexpected_frame(exc: Exception, client_id: Any) -> dict:
        unavailable = service_unavailable(exc)
        if unavailable is not None:
            return formats.app_error_frame(unavailable, id=client_id)
        logger.error("WebSocket frame failed", exc_info=exc)
        return formats.error_frame("INTERNAL_ERROR", "An unexpected error occurred.", id=client_id, status_code=500)

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
        pong = {"type": "pong", "id": content.get("id"), "timestamp": timezone.now().isoformat().replace("+00:00", "Z")}
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
        stream_id, after = replay.parse_event_id(content.get("last_event_id"), required=True)
        assert stream_id is not None
        await replay.check_owner(stream_id, self.caller())
        meta = await cache.aget(_meta_key(stream_id)) or {}
        client_id = content.get("id") if content.get("id") is not None else meta.get("id")
        protocol = meta.get("protocol") or self.resume_protocol(content)
        stream = meta["stream"] if "stream" in meta else (protocol == formats.EnvelopeFrames.protocol
                                                          or self.wants_stream(content))
        frames = formats.FRAMES[protocol](client_id=client_id, stream=stream)
        self.launch(str(client_id) if client_id is not None else stream_id,
                    lambda: streaming.reply_events(stream_id), frames, after=after, stream_id=stream_id)

    def resume_protocol(self, content: dict) -> str:
        raise NotImplementedError

    # -- generations --

    def launch(self, key: str, events: Callable[[], AsyncIterator[dict]], frames: formats.Frames, *,
               after: int = 0, stream_id: str | None = None, caller: Caller | None = None) -> None:
        """Read a stream in a task of its own, sending its frames (events after ``after``).
        ``caller``: a new turn's, whose stream's protocol (and, stateless, owner) is recorded."""
        if key in self.flights:
            raise AppError(f"A generation with id {key!r} is already in flight.", status_code=400,
                           code="INVALID_REQUEST", details={"id": ["Already in flight."]})
        if len(self.flights) >= _setting("WS_MAX_IN_FLIGHT"):
            raise AppError("Too many generations in flight on this connection.", status_code=429)
        flight = self.flights[key] = _Flight(key=key, stream_id=stream_id)
        flight.task = asyncio.create_task(self._pump(flight, events, frames, after, caller))

    async def _pump(self, flight: _Flight, events: Callable[[], AsyncIterator[dict]], frames: formats.Frames,
                    after: int, caller: Caller | None) -> None:
        finished = False
        try:
            async with aclosing(events()) as stream:
                async for event in stream:
                    if event["type"] == "start" and flight.stream_id is None:
                        flight.stream_id = event["stream_id"]
                        await self._record(flight.stream_id, frames, event, caller)
                        if flight.cancelled:
                            await streaming.cancel_reply(flight.stream_id)
                    finished = event["type"] in TERMINAL
                    frame = frames.frame(event)
                    if frame is not None and event["id"] > after:
                        await self.send_json(frame)
        except AppError as exc:
            await self.send_json(formats.app_error_frame(exc, id=frames.client_id))
        except Exception as exc:
            await self.send_json(self._unexpected_frame(exc, frames.client_id))
        finally:
            if self.flights.get(flight.key) is flight:
                del self.flights[flight.key]
            if not finished and flight.stream_id:
                await asyncio.shield(streaming.snapshot_partial(flight.stream_id))

    @staticmethod
    async def _record(stream_id: str, frames: formats.Frames, start: dict, caller: Caller | None) -> None:
        """Remember how to resume a new turn's stream: its protocol, and its owner when stateless."""
        if caller is None:
            return
        await cache.aset(_meta_key(stream_id), {"protocol": frames.protocol, "id": frames.client_id,
                                                "stream": frames.stream}, timeout=RETENTION_SECONDS)
        if start.get("conversation_id") is None:
            await replay.remember_owner(stream_id, caller)

    def turn(self, key: str, turn: Turn, frames: formats.Frames) -> None:
        """Start a turn and stream its reply's frames."""
        caller = self.caller()

        async def events() -> AsyncIterator[dict]:
            reply = await turn_begin(caller, turn)
            async with aclosing(streaming.stream_reply(reply)) as stream:
                async for event in stream:
                    yield event

        self.launch(key, events, frames, caller=caller)


class ConversationChatConsumer(_ChatSocket):
    """Seed 000: ``/ws/chat/{conversation_id}``."""

    async def admit(self) -> tuple[int, dict] | None:
        refusal = await super().admit()
        if refusal is not None:
            return refusal
        if not self.authenticated:
            return CLOSE_UNAUTHENTICATED, formats.error_frame(
                "UNAUTHORIZED", "Authentication required: connect with ?token=<access token or API key>.",
                status_code=401)
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        try:
            conversation = await database_sync_to_async(services.conversation_get_or_create)(
                user=self.user, conversation_id=conversation_id)
        except AppError:  # another user's (404) or not a valid id (422)
            return CLOSE_NOT_FOUND, formats.error_frame("NOT_FOUND", "Conversation not found.", status_code=404)
        self.conversation_id = conversation.id
        return None

    def handlers(self) -> dict[str, Callable]:
        return {**super().handlers(), "message": self.on_message}

    def resume_protocol(self, content: dict) -> str:
        return formats.FlatResponseFrames.protocol

    async def on_message(self, content: dict) -> None:
        values = _validated(MessageFrame, content)
        client_id = content.get("id")
        self.turn(str(client_id) if client_id is not None else new_id("req"),
                  MessageFrame.turn(values, conversation_id=self.conversation_id),
                  formats.FlatResponseFrames(client_id=client_id, stream=self.wants_stream(values)))


class ChatConsumer(_ChatSocket):
    """Seeds 001 (``chat``) and 003 (``message``) on ``/ws/chat``."""

    async def admit(self) -> tuple[int, dict] | None:
        refusal = await super().admit()
        if refusal is None and not self.authenticated and not settings.ANONYMOUS_CHAT:
            return CLOSE_UNAUTHENTICATED, formats.error_frame(
                "UNAUTHORIZED", "Authentication required: connect with ?token=<access token or API key>.",
                status_code=401)
        return refusal

    def handlers(self) -> dict[str, Callable]:
        return {**super().handlers(), "chat": self.on_chat, "message": self.on_message}

    def resume_protocol(self, content: dict) -> str:
        return (formats.EnvelopeFrames if content.get("id") is not None else formats.FlatContentFrames).protocol

    async def on_chat(self, content: dict) -> None:
        """Seed 001: stateless (``conversation_history``), or in ``data.conversation_id`` when given."""
        client_id = content.get("id")
        if not isinstance(content.get("data"), dict):
            raise AppError("'data' must be an object.", status_code=400, code="INVALID_REQUEST",
                           details={"data": ["This field is required."]})
        values = _validated(ChatData, content["data"])
        if values.get("conversation_id") and not self.authenticated:
            raise AppError("Conversations need an account: connect with ?token=<access token>.", status_code=401)
        turn = Turn(text=values["message"], model=values.get("model") or None, system=values.get("system_prompt")
                    or None, params=GenerationParamsInput.params(values))
        if values.get("conversation_id"):
            turn.conversation_id, turn.create = values["conversation_id"], True
        else:
            system, turn.history = services.split_system(values.get("conversation_history") or [])
            turn.system = "\n\n".join(p for p in (turn.system, system) if p) or None
        self.turn(str(client_id) if client_id is not None else new_id("req"), turn,
                  formats.EnvelopeFrames(client_id=client_id, stream=values["stream"]))

    async def on_message(self, content: dict) -> None:
        """Seed 003: a turn in ``conversation_id`` (unknown or absent: a new conversation)."""
        if not self.authenticated:
            raise AppError("Authentication required: connect with ?token=<access token or API key>.",
                           status_code=401)
        values = _validated(MessageFrame, content)
        client_id = content.get("id")
        self.turn(str(client_id) if client_id is not None else new_id("req"),
                  MessageFrame.turn(values, conversation_id=values.get("conversation_id") or None, create=True),
                  formats.FlatContentFrames(client_id=client_id, stream=self.wants_stream(values)))
