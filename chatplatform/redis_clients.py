"""Redis clients: deliberate timeouts and reconnection, for the cache, the channel layer and the hub.

redis-py's default socket timeout (5 s) is also the longest a reply may take, and our blocking
reads wait on purpose: channels-redis's ``BZPOPMIN`` waits up to 5 s, the stream hub's ``XREAD``
up to 15 s. With the default, every such wait that outlasts its socket timeout raised
``TimeoutError`` and took down the WebSocket or SSE stream reading it. So every client here gets
an explicit connect timeout, a socket timeout for ordinary commands, and, for a client that
blocks, a socket timeout longer than its block time by :data:`BLOCKING_MARGIN_SECONDS`.

A connection broken under us (Redis restarted, a proxy dropped it) is retried once on a new
connection before the error surfaces, so the first command after Redis comes back succeeds. A
command that still fails raises; the API answers 503 naming Redis (``api/exceptions.py``).

This module imports no Django model code: ``settings.py`` uses it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
from redis import exceptions as redis_exceptions
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

BLOCKING_MARGIN_SECONDS = 5.0
# channels-redis's blocking receive (BZPOPMIN) waits this long (RedisChannelLayer.brpop_timeout).
CHANNEL_LAYER_BLOCK_SECONDS = float(_RedisChannelLayer.brpop_timeout)
# Errors that mean "Redis is not reachable right now", as opposed to a bad command.
UNAVAILABLE = (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError)


def connection_kwargs(*, connect_timeout: float, socket_timeout: float, blocking_seconds: float = 0.0,
                      asyncio_client: bool = False) -> dict[str, Any]:
    """Keyword arguments for a redis-py connection pool.

    ``blocking_seconds``: the longest blocking command this pool runs; its socket timeout is
    longer than that by the margin. Broken connections are retried once, after a short backoff,
    on a fresh connection (only connection errors: a timed-out command is not sent twice)."""
    retry_class = AsyncRetry if asyncio_client else Retry
    retry = retry_class(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=1,
                        supported_errors=(redis_exceptions.ConnectionError,))
    return {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": max(socket_timeout, (blocking_seconds + BLOCKING_MARGIN_SECONDS) if blocking_seconds else 0),
        "socket_keepalive": True,
        "retry": retry,
    }


class RedisChannelLayer(_RedisChannelLayer):
    """channels-redis's layer, except that a receive survives Redis going away and always ends
    when cancelled.

    Every consumer runs a receive on the layer next to its socket; when that raised, Channels
    ended the consumer and the client's connection with it. Here a receive that loses Redis
    waits and tries again (backing off up to :attr:`MAX_BACKOFF_SECONDS`) until Redis answers:
    messages sent meanwhile stay queued in Redis, nothing is lost but time.

    Cancellation: redis-py sends every command under ``asyncio.wait_for``, and on Python 3.11
    ``wait_for`` drops a cancellation that arrives just as the send completes (it returns the
    result instead; fixed in 3.12). The receive then went on polling ``BZPOPMIN`` for a message
    that never comes, so the consumer that cancelled it on disconnect never finished (about one
    cancelled receive in six, measured against a local Redis). So the receive runs in a task of
    its own, and a cancelled receive cancels that task again until it has ended."""

    MAX_BACKOFF_SECONDS = 5.0
    CANCEL_RETRY_SECONDS = 0.1
    _outage_logged_at = 0.0

    async def receive(self, channel: str) -> dict:
        receiving = asyncio.ensure_future(self._receive_until_redis_answers(channel))
        try:
            return await asyncio.shield(receiving)
        except asyncio.CancelledError:
            while not receiving.done():
                receiving.cancel()
                try:
                    await asyncio.wait({receiving}, timeout=self.CANCEL_RETRY_SECONDS)
                except asyncio.CancelledError:  # cancelled again: still wait for it to end
                    pass
            if not receiving.cancelled():
                receiving.exception()  # retrieved: a message or error that came too late is dropped
            raise

    async def _receive_until_redis_answers(self, channel: str) -> dict:
        delay = 0.1
        while True:
            try:
                return await super().receive(channel)
            except UNAVAILABLE as exc:
                now = time.monotonic()
                if now - RedisChannelLayer._outage_logged_at > 60:  # once a minute, not per socket
                    RedisChannelLayer._outage_logged_at = now
                    logger.warning("Channel layer lost Redis (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.MAX_BACKOFF_SECONDS)
