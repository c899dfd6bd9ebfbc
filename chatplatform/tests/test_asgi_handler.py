"""The ASGI handler's pooled request threads: connections reused, concurrency unlimited, late tasks served."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core import signals
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


urlpatterns = [path("where", sync_view), path("blocking", blocking_view), path("outliving", outliving_view),
               path("autocommit-off", leave_autocommit_off), path("async", async_view),
               path("outliving-check", outliving_check_view)]


async def _get(handler, route: str) -> dict:
    import json

    app = ApplicationCommunicator(handler, {"type": "http", "method": "GET", "path": f"/{route}", "headers": [],
                                            "query_string": b"", "server": ("127.0.0.1", 80)})
    await app.send_input({"type": "http.request", "body": b""})
    start = await app.receive_output(5)
    assert start["status"] == 200, start
    body = await app.receive_output(5)
    await app.wait(5)
    return json.loads(body["body"] or b"{}")


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


async def test_a_request_hops_to_its_thread_only_for_its_end(handler, monkeypatch):
    """With DEBUG off the connection check runs once, at the request's end (see the module)."""
    hops = []
    original = SyncToAsync.__call__

    def counting(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    assert (await _get(handler, "async")) == {"releases": True}
    assert hops == ["HttpResponseBase.close"]


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
