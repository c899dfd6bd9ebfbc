"""Rows written behind the request that produced them, in batches (one ``bulk_create`` each).

A :class:`WriteBehind` holds rows in this process. A writer thread inserts what has
gathered when ``batch_size`` rows are waiting or the oldest has waited ``flush_seconds``, whichever
comes first, and :meth:`WriteBehind.flush` writes everything at once in the caller's thread (readers
call it first, so this worker's own rows are always seen; the buffers are flushed at process exit).

A batch the database refuses for a reason of its own (a row breaking a constraint: its user was
deleted meanwhile) is written again row by row and only the refused rows are dropped, logged. When
the database is unreachable the rows are kept and tried again, with a growing pause, up to
``max_pending`` rows (the oldest beyond that are dropped, logged): a PostgreSQL restart loses none.

Buffers are written when the server stops: the ASGI lifespan's shutdown (:func:`lifespan`; uvicorn's
worker processes end without running ``atexit``), and ``atexit`` for everything else (management
commands, a single-process server), both through :func:`flush_all_at_exit`. What a buffer does not
survive is the process being killed (SIGKILL, a crash): the rows of the last ``flush_seconds`` are
then lost. It is for records that follow a reply (usage, the request log), never
for what the reply itself depends on (messages are saved before a reply completes).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError, DataError, IntegrityError, close_old_connections

logger = logging.getLogger(__name__)

MAX_PAUSE_SECONDS = 5.0  # the longest wait between tries while the database is unreachable
_buffers: list[WriteBehind] = []


class WriteBehind:
    def __init__(self, name: str, write: Callable[[list[Any]], object], *, batch_size: Callable[[], int],
                 flush_seconds: Callable[[], float], background: Callable[[], bool], max_pending: int = 100_000):
        self.name = name
        self._insert = write  # one insert of the rows given (a bulk_create)
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._background = background
        self._max_pending = max_pending
        self._rows: list[Any] = []
        self._oldest = 0.0
        self._changed = threading.Condition()
        self._writing = threading.Lock()  # one batch at a time: flush() and the writer never interleave
        self._thread: threading.Thread | None = None
        self._pid = 0
        _buffers.append(self)

    def flush_at_exit(self) -> int:
        """The last write of this process (not in tests, where the background writer is off: their
        database is gone by then)."""
        return self.flush(final=True) if self._background() else 0

    def add(self, row: Any) -> None:
        """Hold ``row`` for the next batch (no database work here)."""
        with self._changed:
            if not self._rows:
                self._oldest = time.monotonic()
            self._rows.append(row)
            if len(self._rows) > self._max_pending:
                dropped = len(self._rows) - self._max_pending
                del self._rows[:dropped]
                logger.error("%s: %d rows dropped, the database has been unreachable too long", self.name, dropped)
            if len(self._rows) == 1 or len(self._rows) >= self._batch_size():
                self._changed.notify()
        if self._background() and (self._thread is None or self._pid != os.getpid()):
            self._start()

    def pending(self) -> int:
        with self._changed:
            return len(self._rows)

    def flush(self, *, final: bool = False) -> int:
        """Write every held row now, in this thread; returns how many were written. While the
        database is unreachable the rows stay held for the writer (dropped, logged, when ``final``:
        at process exit)."""
        with self._writing:
            rows = self._take()
            return (self._write(rows, keep=not final) or 0) if rows else 0

    def discard(self) -> None:
        """Drop what is held (tests start clean)."""
        self._take()

    def _take(self, limit: int | None = None) -> list[Any]:
        with self._changed:
            taken = self._rows[:limit] if limit else self._rows[:]
            del self._rows[:len(taken)]
            if self._rows:
                self._oldest = time.monotonic()
            return taken

    def _start(self) -> None:
        with self._changed:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()  # a forked child starts a writer of its own
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        pause = 0.0
        while True:
            try:
                pause = self._next_batch(pause)
            except Exception:  # the writer never stops (what a batch held is logged in _write)
                logger.exception("%s: the writer failed", self.name)
                pause = MAX_PAUSE_SECONDS
            time.sleep(pause)

    def _next_batch(self, pause: float) -> float:
        """Wait for rows and write one batch; returns the pause before the next."""
        with self._changed:
            while not self._rows:
                self._changed.wait()
            while (len(self._rows) < self._batch_size()
                   and (left := self._oldest + self._flush_seconds() - time.monotonic()) > 0):
                self._changed.wait(left)
        with self._writing:  # rows taken are written (or put back) before flush() can look
            rows = self._take(self._batch_size())
            if not rows:
                return 0.0
            try:
                reached = self._write(rows, keep=True) is not None
            finally:
                close_old_connections()  # give the connection back (to the pool, in production)
        return 0.0 if reached else min(max(pause * 2, self._flush_seconds()), MAX_PAUSE_SECONDS)

    def _write(self, rows: list[Any], *, keep: bool) -> int | None:
        """Insert ``rows`` (the caller holds ``_writing``); returns how many were written, or None when
        the database could not be reached: the rows then go back to the front of the buffer
        (``keep``) or are dropped, logged."""
        try:
            self._insert(rows)
            return len(rows)
        except (IntegrityError, DataError):
            return self._write_each(rows)
        except DatabaseError as exc:
            if keep:
                with self._changed:
                    self._rows[:0] = rows
                    self._oldest = time.monotonic()
                logger.warning("%s: database unreachable (%s), %d rows kept for the next try", self.name,
                               type(exc).__name__, len(rows))
            else:
                logger.error("%s: %d rows dropped (%s)", self.name, len(rows), type(exc).__name__)
            return None
        except Exception:
            logger.exception("%s: %d rows lost", self.name, len(rows))
            return 0

    def _write_each(self, rows: list[Any]) -> int:
        written = 0
        for row in rows:
            try:
                self._insert([row])
                written += 1
            except DatabaseError as exc:
                logger.warning("%s: a row was refused and dropped (%s)", self.name, type(exc).__name__)
        return written


def flush_all_at_exit() -> int:
    """Every buffer's last write (see :meth:`WriteBehind.flush_at_exit`); returns the rows written."""
    written = 0
    try:
        for buffer in _buffers:
            rows = buffer.flush_at_exit()
            if rows:
                logger.info("%s: %d held rows written at shutdown", buffer.name, rows)
            written += rows
    finally:
        close_old_connections()
    return written


async def lifespan(scope, receive, send) -> None:
    """The ASGI lifespan protocol: at the server's shutdown, every buffer is written."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await sync_to_async(flush_all_at_exit, thread_sensitive=False)()
            finally:
                await send({"type": "lifespan.shutdown.complete"})
            return


atexit.register(flush_all_at_exit)
