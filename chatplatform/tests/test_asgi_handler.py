"""The ASGI handler's pooled request threads: connections reused, concurrency unlimited, late tasks served."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.db import close_old_connections, connection
from django.http import JsonResponse
from django.urls import path

from chatplatform.api.asgi_handler import POOL_SIZE, PooledThreadsASGIHandler, request_will_release_connections

pytestmark = pytest.mark.django_db(transaction=True)

late: dict[str, object] = {}
release = threading.Event()


def _where() -> dict:
    connection.ensure_connection()
    return {"thread": threading.get_ident(), "connection": id(connection.connection),
            "autocommit": connection.get_autocommit()}


def sync_view(request):  # Django runs a sync view on the request's thread
    return JsonResponse(_where())


def blocking_view(request):
    release.wait(5)
    return JsonResponse(_where())


async def outliving_view(request):
    async def later():
        await asyncio.sleep(0.05)  # the request has ended by now
        late["where"] = await sync_to_async(_where)()

    late["task"] = asyncio.get_running_loop().create_task(later())
    return JsonResponse({})


def leave_autocommit_off(request):  # a connection Django must not hand to the next request as is
    connection.set_autocommit(False)
    return JsonResponse(_where())


async def async_view(request):
    return JsonResponse({"releases": request_will_release_connections()})


async def outliving_check_view(request):
    async def later():
        await asyncio.sleep(0.05)
        late["releases"] = request_will_release_connections()

    late["during"] = request_will_release_connections()
    late["task"] = asyncio.get_running_loop().create_task(later())
    return JsonResponse({})


async def pending_job_view(request):
    async def job():
        await sync_to_async(_slow_query)()

    late["task"] = asyncio.get_running_loop().create_task(job())
    await asyncio.sleep(0.01)  # the job has started on the request's thread
    return JsonResponse({})


def _slow_query():
    time.sleep(0.2)
    late["where"] = _where()
    late["job_done"] = time.monotonic()


urlpatterns = [path("pending-job", pending_job_view), path("where", sync_view), path("blocking", blocking_view), path("outliving", outliving_view),
               path("autocommit-off", leave_autocommit_off), path("async", async_view),
               path("outliving-check", outliving_check_view)]


async def _get(handler, route: str, status: int = 200) -> dict:
    import json

    app = ApplicationCommunicator(handler, {"type": "http", "method": "GET", "path": f"/{route}", "headers": [],
                                            "query_string": b"", "server": ("127.0.0.1", 80)})
    await app.send_input({"type": "http.request", "body": b""})
    start = await app.receive_output(5)
    assert start["status"] == status, start
    body = await app.receive_output(5)
    await app.wait(5)
    return json.loads(body["body"] or b"{}") if status == 200 else {}


@pytest.fixture
def handler(settings):
    settings.ROOT_URLCONF = __name__
    settings.ALLOWED_HOSTS = ["*"]
    return PooledThreadsASGIHandler()


async def test_sequential_requests_reuse_one_thread_and_its_connection(handler):
    first = await _get(handler, "where")
    second = await _get(handler, "where")

    assert first["thread"] == second["thread"]
    if not connection.settings_dict.get("OPTIONS", {}).get("pool"):
        assert first["connection"] == second["connection"]  # and the thread kept its open connection
    # (With PostgreSQL's pool a connection goes back to the pool after each request instead.)
    assert first["thread"] != threading.get_ident()
    assert len(handler._idle) == 1


async def test_concurrent_requests_each_get_a_thread(handler):
    release.clear()
    blocked = [asyncio.ensure_future(_get(handler, "blocking")) for _ in range(POOL_SIZE + 2)]
    await asyncio.sleep(0.3)
    release.set()  # every request waited at once: none was queued behind another
    results = await asyncio.gather(*blocked)

    assert len({r["thread"] for r in results}) == POOL_SIZE + 2
    assert len(handler._idle) == POOL_SIZE  # the extra threads were not kept


async def test_a_task_that_outlives_its_request_still_runs_sync_code(handler):
    late.clear()
    pooled = (await _get(handler, "where"))["thread"]
    await _get(handler, "outliving")
    await asyncio.wait_for(late["task"], 5)

    assert late["where"]["thread"] != pooled  # a thread of its own, not the pooled one
    assert (await _get(handler, "where"))["thread"] == pooled


async def test_a_request_that_touches_no_connection_makes_no_hop(handler, hops):
    """With DEBUG off Django's start check is not connected, and with nothing to check on the
    request's thread its response is closed on the event loop (see the module docstring)."""
    assert (await _get(handler, "async")) == {"releases": True}
    assert hops == []


async def test_a_request_that_used_its_connection_is_closed_on_its_thread(handler, hops):
    finished_on = []

    def receiver(**kwargs):
        finished_on.append(threading.get_ident())

    where = await _get(handler, "where")
    assert hops[-1] == "HttpResponseBase.close"
    hops.clear()
    assert (await _get(handler, "async")) == {"releases": True}
    assert hops == []  # that close checked the connection: the next request has nothing to check

    signals.request_finished.connect(receiver)  # a receiver of unknown needs: always on the thread
    try:
        await _get(handler, "async")
    finally:
        signals.request_finished.disconnect(receiver)
    assert hops == ["HttpResponseBase.close"] and finished_on == [where["thread"]]


async def test_a_job_still_running_at_the_end_is_followed_by_the_close(handler, hops):
    late.clear()
    ended = []

    def receiver(**kwargs):
        ended.append(time.monotonic())

    signals.request_finished.connect(receiver, dispatch_uid="test-job-order")
    try:
        await _get(handler, "pending-job")
        await asyncio.wait_for(late["task"], 5)
    finally:
        signals.request_finished.disconnect(dispatch_uid="test-job-order")
    assert hops.count("HttpResponseBase.close") == 1 and ended[0] >= late["job_done"]


async def test_no_close_on_the_loop_while_its_context_holds_a_connection(handler, hops, monkeypatch):
    """Called in this context, as a server's task copying a context that holds a connection would
    (ApplicationCommunicator starts the app in an empty one)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    connection.ensure_connection()
    sent: list[dict] = []
    inputs = asyncio.Queue()
    inputs.put_nowait({"type": "http.request", "body": b""})

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/async", "headers": [], "query_string": b"",
             "server": ("127.0.0.1", 80)}
    try:
        await asyncio.wait_for(handler(scope, inputs.get, send), 5)
    finally:
        connection.close()
    assert sent[0]["status"] == 200
    assert hops == ["HttpResponseBase.close"]  # Django's check on the loop would touch that connection


@pytest.mark.parametrize(("method", "pinned"), [(ASGIHandler.handle, "98faeb5bef800331"),
                                               (BaseHandler.get_response_async, "ad82c920df0cebbb")])
def test_the_methods_copied_from_django_are_unchanged(method, pinned):
    """``PooledThreadsASGIHandler.handle`` and ``get_response_async`` are Django 5.2's with one change
    each: when Django's change, this fails, so the copies are brought up to date."""
    assert hashlib.sha256(inspect.getsource(method).encode()).hexdigest()[:16] == pinned


async def test_an_error_response_its_logger_drops_makes_no_hop(handler, hops, caplog):
    caplog.set_level(logging.ERROR, logger="django.request")  # as settings.LOGGING has it
    await _get(handler, "no-such-route", status=404)
    assert "log_response" not in hops
    assert not [r for r in caplog.records if r.name == "django.request"]


async def test_an_error_response_is_logged_when_its_logger_takes_it(handler, hops, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")
    await _get(handler, "no-such-route", status=404)
    assert "log_response" in hops  # on a thread, as Django does: a handler may block
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == ["Not Found: /no-such-route"]


async def test_a_connection_left_unfit_is_closed_before_the_next_request(handler):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("Django never closes an in-memory SQLite database's connection (it would lose the data)")
    first = await _get(handler, "autocommit-off")
    second = await _get(handler, "where")

    assert first["thread"] == second["thread"] and first["autocommit"] is False
    assert second["autocommit"] is True  # the first request's end closed the connection it left so


async def test_only_work_during_its_request_leaves_the_connection_check_to_it(handler):
    late.clear()
    await _get(handler, "outliving-check")
    await asyncio.wait_for(late["task"], 5)

    assert late["during"] is True
    assert late["releases"] is False  # the request has ended: a late task checks its own connection


def test_the_start_check_stays_with_debug_on(settings):
    settings.DEBUG = True
    signals.request_started.connect(close_old_connections)
    PooledThreadsASGIHandler()
    assert signals.request_started.disconnect(close_old_connections)  # True: it was still connected
    signals.request_started.connect(close_old_connections)

