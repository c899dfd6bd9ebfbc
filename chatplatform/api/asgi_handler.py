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
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, reset_queries

POOL_SIZE = 32  # idle request threads kept per process (each may hold one database connection)


class _Request:
    __slots__ = ("finishing",)

    def __init__(self) -> None:
        self.finishing = False


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


signals.request_finished.connect(_finishing, dispatch_uid="chatplatform.asgi_handler.finishing")


class PooledThreadsASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []
        if not settings.DEBUG:  # see the module docstring
            signals.request_started.disconnect(close_old_connections)
            signals.request_started.disconnect(reset_queries)

    def _acquire(self) -> ThreadPoolExecutor:
        # LIFO: the most recently used thread has the warmest connection.
        return self._idle.pop() if self._idle else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def _release(self, executor: ThreadPoolExecutor) -> None:
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
                request = _Request()
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
