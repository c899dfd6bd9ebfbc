"""Rows written behind: batched by size and by age, a refused row dropped alone, rows kept while the
database is unreachable (usage rows of real gateway calls: chats/tests/test_openai_compat.py)."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.db import IntegrityError, OperationalError

from chatplatform.api.writebehind import WriteBehind


class Sink:
    """An insert that records its batches, and fails as told."""

    def __init__(self) -> None:
        self.batches: list[list] = []
        self.fail: type[Exception] | None = None
        self.refused: set = set()
        self.wrote = threading.Event()

    def __call__(self, rows: list) -> None:
        if self.fail is not None:
            raise self.fail("no database")
        if any(row in self.refused for row in rows):
            raise IntegrityError("refused")
        self.batches.append(list(rows))
        self.wrote.set()


def _buffer(sink: Sink, *, batch_size: int = 100, flush_seconds: float = 0.05, background: bool = True) -> WriteBehind:
    return WriteBehind("test", sink, batch_size=lambda: batch_size, flush_seconds=lambda: flush_seconds,
                       background=lambda: background)


def _until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_rows_are_written_together_once_the_oldest_is_due():
    sink = Sink()
    buffer = _buffer(sink, flush_seconds=0.2)
    started = time.monotonic()
    for row in range(5):
        buffer.add(row)
    assert sink.batches == []  # nothing written on the caller's path
    _until(lambda: sink.batches)

    assert sink.batches == [[0, 1, 2, 3, 4]]
    assert time.monotonic() - started >= 0.2
    assert buffer.pending() == 0


def test_a_full_batch_is_written_at_once():
    sink = Sink()
    buffer = _buffer(sink, batch_size=3, flush_seconds=30)
    for row in range(7):
        buffer.add(row)
    _until(lambda: sum(map(len, sink.batches)) >= 6)

    assert sink.batches[:2] == [[0, 1, 2], [3, 4, 5]]
    assert buffer.flush() == 1  # the rest, in the caller's thread
    assert sink.batches[-1] == [6]


def test_without_the_background_writer_rows_wait_for_flush():
    sink = Sink()
    buffer = _buffer(sink, background=False)
    buffer.add("a")
    buffer.add("b")
    time.sleep(0.15)
    assert sink.batches == [] and buffer.pending() == 2

    assert buffer.flush() == 2
    assert sink.batches == [["a", "b"]]


def test_a_refused_row_is_dropped_alone(caplog):
    sink = Sink()
    sink.refused = {"bad"}
    buffer = _buffer(sink, background=False)
    for row in ("a", "bad", "c"):
        buffer.add(row)
    with caplog.at_level(logging.WARNING, logger="chatplatform.api.writebehind"):
        assert buffer.flush() == 2

    assert sink.batches == [["a"], ["c"]]
    assert "refused and dropped" in caplog.text


def test_rows_are_kept_while_the_database_is_unreachable():
    sink = Sink()
    sink.fail = OperationalError
    buffer = _buffer(sink, flush_seconds=0.02)
    buffer.add("a")
    buffer.add("b")
    time.sleep(0.2)  # several tries, all refused
    assert buffer.flush() == 0  # a reader's flush keeps them too
    with buffer._writing:  # not in the writer's hands at this moment
        assert sink.batches == [] and buffer.pending() == 2

    sink.fail = None  # the database is back
    _until(lambda: sink.batches)
    assert [row for batch in sink.batches for row in batch] == ["a", "b"]


def test_the_final_flush_drops_what_cannot_be_written(caplog):
    sink = Sink()
    sink.fail = OperationalError
    buffer = _buffer(sink, background=False)
    buffer.add("a")
    with caplog.at_level(logging.ERROR, logger="chatplatform.api.writebehind"):
        assert buffer.flush(final=True) == 0

    assert buffer.pending() == 0
    assert "1 rows dropped" in caplog.text


def test_the_buffer_is_bounded():
    sink = Sink()
    buffer = WriteBehind("test", sink, batch_size=lambda: 100, flush_seconds=lambda: 30, background=lambda: False,
                         max_pending=3)
    for row in range(5):
        buffer.add(row)
    buffer.flush()

    assert sink.batches == [[2, 3, 4]]  # the oldest went first


@pytest.mark.django_db(transaction=True)
def test_a_celery_tasks_usage_rows_are_written_when_it_ends(settings, user):
    """A worker's child process exits without atexit: task_postrun writes what the task left held."""
    from celery.signals import task_postrun

    from providers.models import UsageRecord
    from providers.services import usage_rows

    settings.USAGE_WRITE_BEHIND, settings.USAGE_FLUSH_SECONDS = True, 30
    usage_rows.add(UsageRecord(user=user, provider="openai", model="gpt-4o-mini", total_tokens=3))
    assert not UsageRecord.objects.exists()

    task_postrun.send(sender=None, task_id="t", task=None, args=(), kwargs={}, retval=None, state="SUCCESS")
    assert UsageRecord.objects.get().total_tokens == 3 and usage_rows.pending() == 0


@pytest.mark.django_db(transaction=True)
async def test_the_servers_shutdown_writes_the_held_rows(settings, user):
    """uvicorn's worker processes end without atexit: the ASGI lifespan's shutdown writes the rows."""
    from asgiref.sync import sync_to_async
    from asgiref.testing import ApplicationCommunicator

    from chatplatform.asgi import application
    from providers.models import UsageRecord
    from providers.services import usage_rows

    settings.USAGE_WRITE_BEHIND, settings.USAGE_FLUSH_SECONDS = True, 30
    server = ApplicationCommunicator(application, {"type": "lifespan"})
    await server.send_input({"type": "lifespan.startup"})
    assert (await server.receive_output(5))["type"] == "lifespan.startup.complete"
    usage_rows.add(UsageRecord(user=user, provider="openai", model="gpt-4o-mini", total_tokens=5))

    await server.send_input({"type": "lifespan.shutdown"})
    assert (await server.receive_output(5))["type"] == "lifespan.shutdown.complete"
    assert (await sync_to_async(UsageRecord.objects.get)()).total_tokens == 5
