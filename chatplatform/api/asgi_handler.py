"""Django's ASGI handler with a pool of request threads, so database connections are reused.

Django's ``ASGIHandler`` runs every request in a fresh ``ThreadSensitiveContext``: the request's
synchronous work (ORM calls through ``sync_to_async``, signal receivers) runs on a thread made for
that request and joined after it. Database connections are per thread, so each request opened a new
one (on SQLite with its function registrations: a seventh of a ``/v1`` request's CPU in the profile,
``bench/results.md``), and starting and joining the thread cost as much again.

Here each request still gets a context of its own (its sync calls run one at a time, in order, on one
thread, as Django expects) but the thread comes from a small pool and goes back after the request,
keeping its connection (``CONN_MAX_AGE`` and ``CONN_HEALTH_CHECKS`` govern it, as in a WSGI server;
with PostgreSQL's pool the connection goes back to the pool at the end of each request). When every
pooled thread is busy a request gets a fresh one, as before: the pool never limits concurrency.

A task that outlives its request (a generation whose client went away) keeps working: the context
stops pointing at the pooled thread when the request ends, so asgiref gives the task a thread of its
own, exactly as Django's handler does.

Connections are checked once per request, at its end. Django checks them (``close_old_connections``)
when a request starts and when it finishes; each check of an async request is a hop to the request's
thread and back (about 0.25 ms of CPU here, a fiftieth of a ``/v1`` request). A pooled thread's
previous request ended with that check on the same thread, which closed a connection with errors or
past its age and re-armed the health check for its next use, and a fresh thread has no connection:
so with ``DEBUG`` off, the start's check (and ``reset_queries``, which only matters to ``DEBUG``'s
query log) is not connected. :func:`request_will_release_connections` lets work that runs during a
request skip a check of its own that the request's end makes anyway.

A request whose thread has nothing to check ends without a hop. Django sends ``request_finished``
(from the response's ``close``) on the request's thread: a hop for every request, although most
``/v1`` requests never touch a database connection there (credentials and configuration come from
memory, usage rows are written behind). After each job a pooled thread runs, it notes whether
``close_old_connections`` would now find anything to do on that thread: a connection that was used
(its health check done), has had errors, has autocommit left changed or is past its age (with
PostgreSQL's pool, any connection it holds, since each goes back at the request's end). When nothing
is due there, no job is still pending, the event loop's thread holds no connection, and
``request_finished`` has only receivers indifferent to the thread (Django's connection check, which
then finds nothing on the loop's thread; its cache close and urlconf reset, both context-local; our
``_finishing``), the response is closed on the event loop. Otherwise it is closed on the request's
thread after its last job, as Django does.

An error response hops to log itself only when the log would take it. Django's
``get_response_async`` sends every 4xx and 5xx through ``log_response`` on a thread of asgiref's
default executor (a fifth of a 404's CPU here); ``django.request`` logs errors only (settings'
``LOGGING``), so a 401, 404 or 429 made that hop for a record its logger drops. It still hops, as
Django does, whenever that logger is enabled for the response's level.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, connections, reset_queries
from django.urls import set_script_prefix, set_urlconf
from django.utils.log import log_response

_request_logger = logging.getLogger("django.request")  # the logger of Django's log_response
POOL_SIZE = 32  # idle request threads kept per process (each may hold one database connection)


def _check_due(conn) -> bool:
    """Whether ``close_if_unusable_or_obsolete`` would do anything to ``conn`` now (Django 5.2)."""
    if conn.connection is None:
        return False
    return (conn.health_check_done or conn.errors_occurred
            or (conn.close_at is not None and time.monotonic() >= conn.close_at)
            or conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"])


class _RequestThread(ThreadPoolExecutor):
    """One pooled request thread. After each job it notes whether its connections need the end's
    check; ``_last`` is the latest job submitted (the thread runs its jobs in order)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="request")
        self.check_due = False
        self._last: Future | None = None

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self._last = super().submit(self._noting, fn, args, kwargs)
        return self._last

    def _noting(self, fn, args, kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            try:
                self.check_due = any(_check_due(conn) for conn in connections.all(initialized_only=True))
            except Exception:  # never hide the job's own outcome; check at the end, as Django does
                self.check_due = True

    def clean(self) -> bool:
        """No job pending and no connection to check on this thread."""
        return not self.check_due and (self._last is None or self._last.done())


class _Request:
    __slots__ = ("finishing", "thread")

    def __init__(self, thread: _RequestThread | None = None) -> None:
        self.finishing = False
        self.thread = thread


_request: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("pooled_request", default=None)


def request_will_release_connections() -> bool:
    """True when the HTTP request this task belongs to has not yet run ``request_finished``: its
    end will then run ``close_old_connections`` on the request's thread, after the sync work this
    task has already finished there (the thread runs its calls in order)."""
    request = _request.get()
    return request is not None and not request.finishing


def _finishing(**kwargs) -> None:
    # Runs on the request's thread, in order with its other sync calls (request_finished is sent
    # from the response's close there), so a task that sees ``finishing`` still False after its own
    # sync call returned knows the connection check comes after that call.
    request = _request.get()
    if request is not None:
        request.finishing = True


_FINISHING_UID = "chatplatform.asgi_handler.finishing"
signals.request_finished.connect(_finishing, dispatch_uid=_FINISHING_UID)

# request_finished's receivers that may run on the event loop's thread (see the module docstring),
# by the first part of their lookup keys (a function's id, or a dispatch_uid).
_THREAD_INDIFFERENT = frozenset({id(close_old_connections), id(close_caches), id(reset_urlconf), _FINISHING_UID})


def _close_on_loop_ok(request: _Request | None) -> bool:
    """Whether a response of ``request`` may be closed on the event loop (module docstring)."""
    return (request is not None and request.thread is not None and request.thread.clean()
            and all(key[0] in _THREAD_INDIFFERENT for key, *_ in signals.request_finished.receivers)
            and not any(conn.connection is not None for conn in connections.all(initialized_only=True)))


class PooledThreadsASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []
        if not settings.DEBUG:  # see the module docstring
            signals.request_started.disconnect(close_old_connections)
            signals.request_started.disconnect(reset_queries)

    def _acquire(self) -> _RequestThread:
        # LIFO: the most recently used thread has the warmest connection.
        return self._idle.pop() if self._idle else _RequestThread()

    def _release(self, executor: _RequestThread) -> None:
        if len(self._idle) < POOL_SIZE:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._acquire()
        context = ThreadSensitiveContext()
        try:
            async with context:
                # Outermost context (always, under a server): route its sync work to the pooled
                # thread. asgiref looks the context's executor up in this mapping and makes one
                # when it is missing; popping it before the context exits keeps asgiref from
                # shutting the pooled thread down and sends later callers to a thread of their own.
                owned = context.token is not None
                request = _Request(executor if owned else None)
                token = _request.set(request)
                if owned:
                    SyncToAsync.context_to_thread_executor[context] = executor
                try:
                    await self.handle(scope, receive, send)
                finally:
                    request.finishing = True  # whatever happened, later work checks its own connections
                    _request.reset(token)
                    if owned:
                        SyncToAsync.context_to_thread_executor.pop(context, None)
        finally:
            self._release(executor)

    async def get_response_async(self, request):
        """Django 5.2's ``BaseHandler.get_response_async`` (test_asgi_handler pins its source), except
        that an error response the ``django.request`` logger would drop makes no hop to log it."""
        set_urlconf(settings.ROOT_URLCONF)
        response = await self._middleware_chain(request)
        response._resource_closers.append(request.close)
        if response.status_code >= 400 and _request_logger.isEnabledFor(
                logging.ERROR if response.status_code >= 500 else logging.WARNING):
            await sync_to_async(log_response, thread_sensitive=False)(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request)
        return response

    async def handle(self, scope, receive, send):
        """Django 5.2's ``ASGIHandler.handle`` (test_asgi_handler pins its source), except that the
        response is closed by :meth:`_close`."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        await signals.request_started.asend(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client disconnected during send_response
            return response

        # The disconnect listener first: it should not raise errors that would keep
        # process_request() from being cancelled.
        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)),
                 asyncio.create_task(process_request(request, send))]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()  # views may handle the cancellation
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            await self._close(response)
        body_file.close()

    @staticmethod
    async def _close(response) -> None:
        if _close_on_loop_ok(_request.get()):
            response.close()  # nothing to check on the request's thread: no hop to it
        else:
            await sync_to_async(response.close)()
