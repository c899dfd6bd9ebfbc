"""The generation of one reply, and the events every transport formats (JSON, SSE, WebSocket,
OpenAI-compatible).

:func:`chats.turns.turn_begin` plans the call and saves the user's message, then :func:`start`
runs the provider stream as a background task that publishes numbered events to the stream hub.
:meth:`Reply.events` replays a stream from an event id and follows it live; :func:`stream_reply`
does that for a reply just started, saving the partial reply as ``incomplete`` at once if the
reader drops (generation goes on and completes the message later; a reader can come back with the
last event id it saw and get the rest).

Events (dicts): ``start`` (ids, model, provider), ``delta`` (text, index), ``thinking`` (text),
``tool_call`` (index, call_id and name when a call starts, then pieces of its JSON arguments),
``citations`` (the document chunks a ``use_rag`` turn's prompt holds), then one terminal ``done`` (full content, tool_calls, usage, cost, finish_reason, status) or ``error``
(code, message, status_code, partial content). Each has ``id`` (1, 2, …) and ``stream_id``
(the assistant message id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection
from django.utils import timezone

from chatplatform.api.asgi_handler import request_will_release_connections
from chatplatform.api.exceptions import AppError
from chatplatform.api.ids import new_id
from chats import services
from chats.hub import TERMINAL, get_hub
from chats.models import Conversation, Message
from providers.adapters.base import ThinkingDelta, ToolCallDelta
from providers.errors import ProviderError
from providers.services import ChatStream

logger = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.25


@dataclass
class Reply:
    """A running (or finished) generation in this process: the handle a turn returns."""

    stream_id: str
    conversation: Conversation | None
    user_message: Message | None
    stream: ChatStream
    task: asyncio.Task | None = None
    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    final: dict | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    saved_final: bool = False
    saved: bool = False  # a snapshot or the final message is in the database
    counter: list[int] = field(default_factory=lambda: [0])
    cancelled: bool = False  # asked to stop (possibly before the generation task got going)
    pump: asyncio.Task | None = None  # the provider stream being read; cancelling it stops generation
    metadata: dict = field(default_factory=dict)  # kept on the saved reply (e.g. the memory ids used)
    after_saved: Callable[[Message | None, Message], None] | None = None  # sync; once the reply is saved
    citations: list[dict] | None = None  # a use_rag turn's document citations (None: not asked)

    @property
    def model(self) -> str:
        """The model of the first route (the one that answers unless it fails)."""
        return self.stream.routes[0].model_id if self.stream.routes else ""

    @property
    def provider(self) -> str:
        return self.stream.routes[0].provider.name if self.stream.routes else ""

    async def wait(self) -> dict:
        """The terminal event (``done`` or ``error``), once the generation's bookkeeping is done.

        The whole task is awaited, not just the terminal event: a sync view waiting through
        async_to_sync lends its thread to the task's database calls, and that thread must not be
        released while the task still needs it."""
        if self.task is not None:
            await asyncio.shield(self.task)
        assert self.final is not None
        return self.final

    def events(self, *, after: int = 0) -> AsyncIterator[dict]:
        """This reply's events after ``after``, replayed then live, to the terminal event."""
        return reply_events(self.stream_id, after=after)


_running: dict[str, Reply] = {}


async def start(*, conversation: Conversation | None, user_message: Message | None, stream: ChatStream,
                metadata: dict | None = None,
                after_saved: Callable[[Message | None, Message], None] | None = None,
                citations: list[dict] | None = None) -> Reply:
    """Start generating the reply that ``stream`` (planned by the turn) produces. Provider
    failures arrive as an ``error`` event; the reply is saved at the end (in a conversation),
    with ``metadata``, and then ``after_saved(user_message, reply)`` runs (in a thread)."""
    stream.defer_usage = True  # the terminal event goes out first; usage is written right after
    reply = Reply(stream_id=new_id("msg"), conversation=conversation, user_message=user_message, stream=stream,
                  metadata=dict(metadata or {}), after_saved=after_saved, citations=citations)
    _running[reply.stream_id] = reply
    # Published before the task starts, so a reader attaching right away finds the stream.
    await _publish(reply, "start", conversation_id=conversation.id if conversation else None,
                   message_id=reply.stream_id, user_message_id=user_message.id if user_message else None,
                   model=reply.model, provider=reply.provider)
    if citations is not None:
        await _publish(reply, "citations", citations=citations)
    reply.task = asyncio.create_task(_generate(reply))
    return reply


async def _publish(reply: Reply, type_: str, **data: Any) -> dict:
    reply.counter[0] += 1
    event = {"id": reply.counter[0], "stream_id": reply.stream_id, "type": type_, **data}
    await get_hub().publish(reply.stream_id, event)
    if type_ in TERMINAL:
        reply.final = event
    return event


async def _watch_cancel(reply: Reply, task: asyncio.Task) -> None:
    """Cancel the generation when another worker asks, via the hub."""
    hub = get_hub()
    while not task.done():
        await asyncio.sleep(CANCEL_POLL_SECONDS)
        if await hub.cancel_requested(reply.stream_id):
            task.cancel()
            return


async def _generate(reply: Reply) -> None:
    result = reply.stream.result
    conversation_id = reply.conversation.id if reply.conversation else None
    user_message_id = reply.user_message.id if reply.user_message else None
    status: str = Message.Status.COMPLETE
    error: AppError | None = None
    inner = reply.pump = asyncio.create_task(_pump(reply))
    if reply.cancelled:  # cancelled between start() and now
        inner.cancel()
    watcher = asyncio.create_task(_watch_cancel(reply, inner))
    try:
        await inner
    except ProviderError as exc:
        status, error = Message.Status.ERROR, exc
    except AppError as exc:  # e.g. a fallback route whose context window the history overflows
        status, error = Message.Status.ERROR, exc
    except Exception:  # never leave readers waiting for a terminal event that will not come
        logger.exception("Generation %s failed", reply.stream_id)
        status, error = Message.Status.ERROR, AppError("An unexpected error occurred.", status_code=500,
                                                       code="INTERNAL_ERROR")
    except asyncio.CancelledError:
        status = Message.Status.INCOMPLETE
        if not inner.done():
            inner.cancel()
            await asyncio.gather(inner, return_exceptions=True)
    finally:
        watcher.cancel()
    if inner.cancelled():
        status = Message.Status.INCOMPLETE
    content = "".join(reply.text)
    finish_reason = result.finish_reason or ("cancelled" if status == Message.Status.INCOMPLETE else "stop")
    if status == Message.Status.INCOMPLETE:
        finish_reason = "cancelled"
    # Nothing after the save uses the database: the save's own hop gives the connection back.
    last = reply.after_saved is None and reply.stream.usage_task is None
    message = await _save(reply, status=status, content=content, error=error, finish_reason=finish_reason,
                          release=last)
    usage = {"prompt_tokens": result.usage.prompt_tokens, "completion_tokens": result.usage.completion_tokens,
             "total_tokens": result.usage.total_tokens}
    common = dict(conversation_id=conversation_id, message_id=reply.stream_id if message else None,
                  user_message_id=user_message_id, content=content, thinking="".join(reply.thinking),
                  model=result.model, provider=result.provider, usage=usage, cost=float(result.cost),
                  latency_ms=round(result.latency_ms, 1), finish_reason=finish_reason,
                  stop_sequence=result.stop_sequence, status=status,
                  parent_message_id=user_message_id, timestamp=timezone.now().isoformat(),
                  tool_calls=[asdict(c) for c in result.tool_calls], **cache_fields(reply.stream))
    if reply.citations is not None:
        common["citations"] = reply.citations
    if error is not None:
        # The error's headers go along (a provider's 429 passes its Retry-After on to the caller).
        await _publish(reply, "error", code=error.code, message=error.message,
                       status_code=error.status_code, headers=dict(error.headers), **common)
    else:
        await _publish(reply, "done", **common, **({"metadata": reply.metadata} if reply.metadata else {}))
    _running.pop(reply.stream_id, None)
    if message is not None and reply.after_saved is not None:
        try:
            await sync_to_async(reply.after_saved)(reply.user_message, message)
        except Exception:  # a follow-up (e.g. memory extraction) never fails the reply
            logger.exception("After-save hook of %s failed", reply.stream_id)
    if reply.stream.usage_task is not None:
        await reply.stream.usage_task
    if not (last and reply.conversation is not None) and not request_will_release_connections():
        await sync_to_async(_release_connection)()


def cache_fields(stream: ChatStream) -> dict:
    """The response cache's verdict, as the terminal event carries it."""
    verdict = getattr(stream, "cache", None)
    if verdict is None:
        return {"cached": False, "cache_key": None, "similarity_score": None, "cache_status": "BYPASS"}
    return {"cached": verdict.hit, "cache_key": verdict.key, "similarity_score": verdict.similarity,
            "cache_status": verdict.status}


def _cached_flag(stream: ChatStream) -> dict:
    verdict = getattr(stream, "cache", None)
    return {"cached": True, "cache_key": verdict.key} if verdict is not None and verdict.hit else {}


def _release_connection() -> None:
    """A generation can outlive its request: give back the database connection its saves used
    (to the pool, in production) instead of holding it in the worker thread. While its request is
    still being served, the request's end does this on the same thread (and the hop is skipped).
    The final save does it in its own hop when nothing after it uses the database: its request's
    thread has then nothing left to check and the request ends without a hop (asgi_handler)."""
    if not connection.in_atomic_block:
        close_old_connections()


def _released_after(release: bool, save, /, **fields):
    """``save(**fields)``, then (``release``) :func:`_release_connection`, in one thread hop."""
    result = save(**fields)
    if release:
        _release_connection()
    return result


async def _pump(reply: Reply) -> int:
    index = 0
    async for event in reply.stream:
        if isinstance(event, ThinkingDelta):
            reply.thinking.append(event.text)
            await _publish(reply, "thinking", text=event.text)
            continue
        if isinstance(event, ToolCallDelta):
            await _publish(reply, "tool_call", index=event.index, call_id=event.id, name=event.name,
                           arguments=event.arguments)
            continue
        reply.text.append(event.text)
        await _publish(reply, "delta", text=event.text, index=index)
        index += 1
    return index


async def _save(reply: Reply, *, status: str, content: str, error: AppError | None = None,
                finish_reason: str = "", final: bool = True, release: bool = False) -> Message | None:
    if reply.conversation is None:
        return None  # stateless call: usage is recorded by the provider layer, nothing else is kept
    result = reply.stream.result
    async with reply.lock:
        if reply.saved_final:
            return await sync_to_async(_released_after)(release, Message.objects.get, id=reply.stream_id)
        message = await sync_to_async(_released_after)(
            release, services.message_save_assistant,
            conversation=reply.conversation, message_id=reply.stream_id, parent=reply.user_message,
            content=content, thinking="".join(reply.thinking), model=result.model, provider=result.provider,
            prompt_tokens=result.usage.prompt_tokens if final else 0,
            completion_tokens=result.usage.completion_tokens if final else 0,
            cost=result.cost if final else 0, latency_ms=result.latency_ms if final else 0.0,
            finish_reason=finish_reason, status=status, error_code=error.code if error else "",
            metadata={**reply.metadata, **({"usage_estimated": result.usage.estimated, **_cached_flag(reply.stream)}
                                           if final else {"snapshot": True}),
                      **({"citations": reply.citations} if reply.citations else {})},
            tool_calls=[asdict(c) for c in result.tool_calls] if final else [],
            final=final, new=not reply.saved,
        )
        reply.saved = True
        reply.saved_final = final
        return message


async def snapshot_partial(stream_id: str) -> None:
    """A reader dropped mid-stream: save what exists so far as ``incomplete`` now (generation goes
    on and completes the message later)."""
    reply = _running.get(stream_id)
    if reply is None or reply.final is not None:
        return
    await _save(reply, status=Message.Status.INCOMPLETE, content="".join(reply.text),
                finish_reason="client_disconnected", final=False)


async def cancel_reply(stream_id: str) -> bool:
    """Stop a generation (here, or on another worker through the hub). The partial reply is
    saved as ``incomplete``."""
    reply = _running.get(stream_id)
    if reply is not None:
        # Only the provider stream is cancelled: the generation task itself goes on to save the
        # partial reply and publish the terminal event (even when asked before it started).
        reply.cancelled = True
        if reply.pump is not None:
            reply.pump.cancel()
        if reply.task is not None:
            await asyncio.gather(asyncio.shield(reply.task), return_exceptions=True)
        return True
    hub = get_hub()
    if await hub.exists(stream_id):
        await hub.request_cancel(stream_id)
        return True
    return False


async def reply_events(stream_id: str, *, after: int = 0) -> AsyncIterator[dict]:
    """Replay events after ``after``, then follow live until the terminal event."""
    async for event in get_hub().read(stream_id, after=after):
        yield event


async def stream_reply(reply: Reply) -> AsyncIterator[dict]:
    """The events of a reply just started. If the consumer stops before the end, the partial
    reply is saved as ``incomplete`` and generation continues (resumable by stream id)."""
    finished = False
    try:
        async for event in reply.events():
            finished = event["type"] in TERMINAL
            yield event
    finally:
        if not finished:
            await asyncio.shield(snapshot_partial(reply.stream_id))


def _owns(user, *, message_id: str | None = None, conversation_id: str | None = None) -> bool:
    if not getattr(user, "pk", None):
        return False
    if message_id:
        return Message.objects.filter(id=message_id, conversation__user=user).exists()
    return Conversation.objects.filter(id=conversation_id, user=user).exists()


async def stream_owner_check(stream_id: str, user) -> None:
    """A stream may only be resumed by the owner of its conversation (404 otherwise)."""
    reply = _running.get(stream_id)
    if reply is not None:
        if reply.conversation is None or reply.conversation.user_id != getattr(user, "id", None):
            raise AppError("Stream not found.", status_code=404)
        return
    if await sync_to_async(_owns)(user, message_id=stream_id):
        return
    # Running on another worker and not saved yet: its start event names the conversation.
    async for event in get_hub().read(stream_id, after=0):
        if event.get("conversation_id") and await sync_to_async(_owns)(
                user, conversation_id=event["conversation_id"]):
            return
        break
    raise AppError("Stream not found.", status_code=404)
