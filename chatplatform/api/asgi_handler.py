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
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

POOL_SIZE = 32  # idle request threads kept per process (each may hold one database connection)


class PooledThreadsASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

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
                if owned:
                    SyncToAsync.context_to_thread_executor[context] = executor
                try:
                    await self.handle(scope, receive, send)
                finally:
                    if owned:
                        SyncToAsync.context_to_thread_executor.pop(context, None)
        finally:
            self._release(executor)
