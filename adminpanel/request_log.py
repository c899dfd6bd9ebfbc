"""The request-log middleware and its write buffer.

The middleware only appends a small dict to an in-process buffer (no database work on the
request's path, sync or async); the buffer is written with one ``bulk_create`` when it holds
``REQUEST_LOG_BATCH_SIZE`` rows or its oldest row is ``REQUEST_LOG_FLUSH_SECONDS`` old, in a
background thread, and at process exit."""

from __future__ import annotations

import atexit
import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from chatplatform.api.middleware import HybridMiddleware

logger = logging.getLogger(__name__)

_SKIPPED_PREFIXES = ("/static/",)
_lock = threading.Lock()
_buffer: list[dict[str, Any]] = []
_oldest: float = 0.0


def _user_id(request: HttpRequest) -> str | None:
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    return pk if isinstance(pk, str) else None  # the admin-secret principal has no row


def request_log_record(entry: dict[str, Any]) -> None:
    """Buffer one entry; start a background flush when the buffer is due."""
    global _oldest
    with _lock:
        if not _buffer:
            _oldest = time.monotonic()
        _buffer.append(entry)
        due = len(_buffer) >= settings.REQUEST_LOG_BATCH_SIZE or (
            time.monotonic() - _oldest >= settings.REQUEST_LOG_FLUSH_SECONDS)
    if due and settings.REQUEST_LOG_BACKGROUND:
        threading.Thread(target=_flush_in_thread, name="request-log-flush", daemon=True).start()


def _take() -> list[dict[str, Any]]:
    with _lock:
        taken = _buffer[:]
        _buffer.clear()
    return taken


def request_log_flush() -> int:
    """Write every buffered entry now (one insert); returns how many were written."""
    from adminpanel.models import RequestLog

    entries = _take()
    if entries:
        try:
            RequestLog.objects.bulk_create([RequestLog(**entry) for entry in entries])
        except Exception as exc:  # the log must never break serving; the batch is dropped
            logger.warning("Request log: %d entries dropped (%s)", len(entries), type(exc).__name__)
            return 0
    return len(entries)


def request_log_discard() -> None:
    """Drop what is buffered (tests start clean)."""
    _take()


def _flush_in_thread() -> None:
    try:
        request_log_flush()
    finally:
        close_old_connections()


atexit.register(lambda: settings.REQUEST_LOG_ENABLED and settings.REQUEST_LOG_BACKGROUND and request_log_flush())


class RequestLogMiddleware(HybridMiddleware):
    """Records method, route pattern, path (no query string), status, duration and user."""

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if settings.REQUEST_LOG_ENABLED and not request.path.startswith(_SKIPPED_PREFIXES):
            match = getattr(request, "resolver_match", None)
            started = getattr(request, "_started", None)
            request_log_record({
                "request_id": getattr(request, "request_id", "")[:128],
                "user_id": _user_id(request),
                "route": ("/" + match.route if match and match.route else request.path)[:255],
                "path": request.path[:255],
                "method": request.method[:10] if request.method else "",
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else 0.0,
                "created_at": timezone.now(),
            })
        return response


request_log_middleware = RequestLogMiddleware
