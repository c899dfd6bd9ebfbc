"""The ASGI handler's pooled request threads: connections reused, concurrency unlimited, late tasks served."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.db import connection
from django.http import JsonResponse
from django.urls import path

from chatplatform.api.asgi_handler import POOL_SIZE, PooledThreadsASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)

late: dict[str, object] = {}
release = threading.Event()


def _where() -> dict:
    connection.ensure_connection()
    return {"thread": threading.get_ident(), "connection": id(connection.connection)}


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


urlpatterns = [path("where", sync_view), path("blocking", blocking_view), path("outliving", outliving_view)]


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
