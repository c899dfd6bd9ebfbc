"""Event buffers for resumable streams.

A generation publishes numbered events to its stream; any number of readers replay what they
missed (events after a given id) and then follow live, until the stream's terminal event
(``done`` or ``error``). In embedded mode the buffers are in this process; with ``REDIS_URL``
they are Redis streams, so a client can resume on any worker. Buffers expire
``RETENTION_SECONDS`` after their last event.

With Redis, the worker that generates a stream also keeps it in process for a while
(``LOCAL_RETENTION_SECONDS``): its own readers (the request's SSE or WebSocket answer) follow that
copy, and Redis gets the events behind them, batched, one round trip for all the events made
meanwhile, instead of a write and a read per event per reader.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings

from chatplatform.redis_clients import UNAVAILABLE, connection_kwargs

TERMINAL = {"done", "error"}
RETENTION_SECONDS = 600
READ_BLOCK_MS = 15000
RECONNECT_SECONDS = 30.0
LOCAL_RETENTION_SECONDS = 30.0  # how long a finished stream stays in its generating worker's memory

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass
class _Buffer:
    events: list[dict] = field(default_factory=list)
    done: bool = False
    cancelled: bool = False
    touched: float = field(default_factory=time.monotonic)
    waiters: list[asyncio.Future] = field(default_factory=list)


class MemoryHub:
    SWEEP_EVERY_SECONDS = 5.0

    def __init__(self, retention: float = RETENTION_SECONDS) -> None:
        self.retention = retention
        self._buffers: dict[str, _Buffer] = {}
        self._swept = time.monotonic()

    def _sweep(self) -> None:
        """Drop expired buffers, at most every few seconds (not on every new stream)."""
        now = time.monotonic()
        if now - self._swept < self.SWEEP_EVERY_SECONDS:
            return
        self._swept = now
        cutoff = now - self.retention
        for key in [k for k, b in self._buffers.items() if b.done and b.touched < cutoff]:
            del self._buffers[key]

    async def publish(self, stream_id: str, event: dict) -> None:
        buffer = self._buffers.get(stream_id)
        if buffer is None:
            self._sweep()
            buffer = self._buffers[stream_id] = _Buffer()
        buffer.events.append(event)
        buffer.touched = time.monotonic()
        buffer.done = buffer.done or event["type"] in TERMINAL
        waiters, buffer.waiters = buffer.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.get_loop().call_soon_threadsafe(_resolve, waiter)

    async def exists(self, stream_id: str) -> bool:
        return stream_id in self._buffers

    async def read(self, stream_id: str, *, after: int = 0) -> AsyncIterator[dict]:
        buffer = self._buffers.get(stream_id)
        if buffer is None:
            return
        position = 0
        while True:
            while position < len(buffer.events):
                event = buffer.events[position]
                position += 1
                if event["id"] > after:
                    yield event
                if event["type"] in TERMINAL:
                    return
            if buffer.done:
                return
            waiter = asyncio.get_running_loop().create_future()
            buffer.waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in buffer.waiters:
                    buffer.waiters.remove(waiter)

    async def request_cancel(self, stream_id: str) -> None:
        if stream_id in self._buffers:
            self._buffers[stream_id].cancelled = True

    async def cancel_requested(self, stream_id: str) -> bool:
        buffer = self._buffers.get(stream_id)
        return bool(buffer and buffer.cancelled)


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class RedisHub:
    """Redis streams (XADD/XREAD): resumable from any worker.

    Commands and blocking reads use separate clients (per event loop): a read blocks for up to
    :data:`READ_BLOCK_MS`, so its socket timeout is longer than that, while commands keep the
    ordinary one (``chatplatform/redis_clients.py``). Redis going away mid-stream is survived:
    a reader reconnects and goes on after the last entry it saw, and a generation's events wait
    for Redis to return, each for up to :data:`RECONNECT_SECONDS`. Only a stream's first event
    fails at once, so that a request starting a reply while Redis is down answers 503 instead of
    waiting."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: dict[tuple[int, str], object] = {}
        self._local = MemoryHub(retention=LOCAL_RETENTION_SECONDS)  # the streams this worker generates
        self._outbox: dict[str, list[dict]] = {}  # their events not yet written to Redis
        self._writers: dict[str, asyncio.Task] = {}

    def _client(self, purpose: str = "commands"):
        import redis.asyncio as redis

        key = (id(asyncio.get_running_loop()), purpose)
        client = self._clients.get(key)
        if client is None:
            options = connection_kwargs(
                connect_timeout=settings.REDIS_CONNECT_TIMEOUT, socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                blocking_seconds=READ_BLOCK_MS / 1000 if purpose == "reads" else 0.0, asyncio_client=True)
            client = self._clients[key] = redis.Redis.from_url(self.url, decode_responses=True, **options)
        return client

    @staticmethod
    def _key(stream_id: str) -> str:
        return f"cp:stream:{stream_id}"

    @staticmethod
    async def _until_reconnected(operation: Callable[[], Awaitable[T]]) -> T:
        """``operation()``, tried again while Redis is unreachable, for up to RECONNECT_SECONDS."""
        deadline = time.monotonic() + RECONNECT_SECONDS
        delay = 0.1
        while True:
            try:
                return await operation()
            except UNAVAILABLE:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _add(self, stream_id: str, events: list[dict]) -> None:
        """One stream entry for the batch (its events as a JSON list, in order) and the expiry."""
        key = self._key(stream_id)
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"e": json.dumps(events, default=str)}, maxlen=20000, approximate=True)
            pipe.expire(key, RETENTION_SECONDS)
            await pipe.execute()

    async def publish(self, stream_id: str, event: dict) -> None:
        """A stream's first event is written at once and fails at once (its request answers 503).
        Later ones reach this worker's readers now and Redis behind them, batched; they wait for
        Redis to come back, for up to RECONNECT_SECONDS a batch, without holding the generation up.
        The terminal event returns once Redis has every event, so a finished generation is
        readable on every worker."""
        if event["id"] == 1:
            await self._add(stream_id, [event])
            await self._local.publish(stream_id, event)
            return
        await self._local.publish(stream_id, event)
        self._outbox.setdefault(stream_id, []).append(event)
        writer = self._writers.get(stream_id)
        if writer is None or writer.get_loop() is not asyncio.get_running_loop():
            writer = self._writers[stream_id] = asyncio.create_task(self._write_behind(stream_id))
        if event["type"] in TERMINAL:
            await asyncio.shield(writer)

    async def _write_behind(self, stream_id: str) -> None:
        """Write the stream's queued events to Redis, in order, until none are left."""
        try:
            while self._outbox.get(stream_id):
                batch = self._outbox.pop(stream_id)
                try:
                    await self._until_reconnected(lambda events=batch: self._add(stream_id, events))
                except Exception as exc:  # this worker's readers have them; other workers' lack them
                    logger.warning("Stream %s: %d events not written to Redis (%s)", stream_id, len(batch),
                                   type(exc).__name__)
        finally:
            self._writers.pop(stream_id, None)

    async def exists(self, stream_id: str) -> bool:
        return await self._local.exists(stream_id) or bool(await self._client().exists(self._key(stream_id)))

    async def read(self, stream_id: str, *, after: int = 0) -> AsyncIterator[dict]:
        """Events after ``after``: from this worker's copy when it generates the stream, else Redis."""
        source = self._local.read if await self._local.exists(stream_id) else self._read_redis
        async for event in source(stream_id, after=after):
            yield event

    async def _read_redis(self, stream_id: str, *, after: int = 0) -> AsyncIterator[dict]:
        commands, reads = self._client(), self._client("reads")
        key = self._key(stream_id)
        if not await commands.exists(key):
            return
        cursor = "0-0"
        while True:
            response = await self._until_reconnected(
                lambda position=cursor: reads.xread({key: position}, block=READ_BLOCK_MS, count=500))
            if not response:
                if not await self._until_reconnected(lambda: commands.exists(key)):
                    return
                continue
            for entry_id, fields in response[0][1]:
                cursor = entry_id
                batch = json.loads(fields["e"])
                for event in batch if isinstance(batch, list) else [batch]:  # one event: an older worker's
                    if event["id"] > after:
                        after = event["id"]  # an event added twice (a retried XADD) is yielded once
                        yield event
                    if event["type"] in TERMINAL:
                        return

    async def request_cancel(self, stream_id: str) -> None:
        await self._client().set(f"cp:cancel:{stream_id}", "1", ex=RETENTION_SECONDS)

    async def cancel_requested(self, stream_id: str) -> bool:
        try:
            return bool(await self._client().exists(f"cp:cancel:{stream_id}"))
        except UNAVAILABLE:
            return False  # asked again at the next poll


_hub: MemoryHub | RedisHub | None = None
_hub_url: str | None = None


def get_hub() -> MemoryHub | RedisHub:
    """The hub for the current configuration (Redis when REDIS_URL is set)."""
    global _hub, _hub_url
    url = settings.REDIS_URL or ""
    if _hub is None or _hub_url != url:
        _hub = RedisHub(url) if url else MemoryHub()
        _hub_url = url
    return _hub
