"""The request-log middleware and its write buffer.

The middleware only hands a small dict to an in-process buffer (no database work on the request's
path, sync or async); a writer thread inserts the rows with one ``bulk_create`` when
``REQUEST_LOG_BATCH_SIZE`` are waiting or the oldest is ``REQUEST_LOG_FLUSH_SECONDS`` old, and what is
left at process exit (:mod:`chatplatform.api.writebehind`)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from chatplatform.api.middleware import HybridMiddleware
from chatplatform.api.writebehind import WriteBehind

_SKIPPED_PREFIXES = ("/static/",)


def _insert(entries: list[dict[str, Any]]) -> None:
    from adminpanel.models import RequestLog

    RequestLog.objects.bulk_create([RequestLog(**entry) for entry in entries])


_buffer = WriteBehind("request-log", _insert, batch_size=lambda: settings.REQUEST_LOG_BATCH_SIZE,
                      flush_seconds=lambda: settings.REQUEST_LOG_FLUSH_SECONDS,
                      background=lambda: settings.REQUEST_LOG_ENABLED and settings.REQUEST_LOG_BACKGROUND)


def _user_id(request: HttpRequest) -> str | None:
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    return pk if isinstance(pk, str) else None  # the admin-secret principal has no row


def request_log_record(entry: dict[str, Any]) -> None:
    """Buffer one entry (the writer thread inserts it with its batch)."""
    _buffer.add(entry)


def request_log_flush() -> int:
    """Write every buffered entry now (one insert); returns how many were written."""
    return _buffer.flush()


def request_log_discard() -> None:
    """Drop what is buffered (tests start clean)."""
    _buffer.discard()


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
