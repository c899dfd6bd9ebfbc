"""The one error envelope, and the one handler that produces it.

Every error the API returns has the shape::

    {"detail", "message", "error", "code", "status_code", "request_id", "timestamp", "details"}

``detail`` and ``message`` carry the human text (seeds 000/003 read ``detail``, seed 004 reads
``message``); ``error`` is the snake-case kind (seed 004: ``not_found``); ``code`` the upper-case
code (seed 001: ``NOT_FOUND``); ``details`` holds field errors for validation failures.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils import timezone
from redis import exceptions as redis_exceptions
from rest_framework import exceptions as drf
from rest_framework.response import Response

from chatplatform.api.context import current_request_id

logger = logging.getLogger("chatplatform.errors")

# HTTP status -> (code, error kind) used when nothing more specific applies.
STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("INVALID_REQUEST", "bad_request"),
    401: ("UNAUTHORIZED", "unauthorized"),
    403: ("FORBIDDEN", "forbidden"),
    404: ("NOT_FOUND", "not_found"),
    405: ("METHOD_NOT_ALLOWED", "method_not_allowed"),
    406: ("NOT_ACCEPTABLE", "not_acceptable"),
    409: ("CONFLICT", "conflict"),
    413: ("PAYLOAD_TOO_LARGE", "payload_too_large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "unsupported_media_type"),
    422: ("VALIDATION_ERROR", "validation_error"),
    429: ("RATE_LIMITED", "rate_limit_exceeded"),
    500: ("INTERNAL_ERROR", "internal_error"),
    502: ("PROVIDER_ERROR", "provider_error"),
    503: ("SERVICE_UNAVAILABLE", "service_unavailable"),
    504: ("TIMEOUT", "timeout"),
}

DEFAULT_MESSAGES: dict[int, str] = {
    400: "Invalid request.",
    401: "Authentication credentials were not provided or are invalid.",
    403: "You do not have permission to perform this action.",
    404: "Resource not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    422: "Validation error.",
    429: "Too many requests.",
    500: "An unexpected error occurred.",
    503: "A service the server needs is unavailable; retry shortly.",
}

# --- a required service away: 503 naming it --------------------------------------------------

UNAVAILABLE_MESSAGES = {
    "redis": "Redis is unavailable (cache, rate limits, streaming); retry shortly.",
    "database": "The database is unavailable; retry shortly.",
}
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


def unavailable_component(exc: BaseException | None) -> str | None:
    """``"redis"`` or ``"database"`` when ``exc``, or an exception it was raised from (django-redis
    wraps Redis's errors), means that service cannot be reached right now; else ``None``.

    Redis: connection errors and timeouts (not a refused command). Database: Django's
    OperationalError/InterfaceError (connection refused or lost, the pool timing out waiting for
    a connection, the server shutting down, SQLite busy)."""
    for _ in range(10):
        if exc is None:
            return None
        if isinstance(exc, (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError)):
            return "redis"
        if isinstance(exc, (OperationalError, InterfaceError)):
            return "database"
        exc = exc.__cause__
    return None


def unavailable_body(component: str) -> dict[str, Any]:
    return envelope(503, UNAVAILABLE_MESSAGES.get(component), code="SERVICE_UNAVAILABLE",
                    details={"component": component})


def unavailable_response(component: str) -> JsonResponse:
    """The 503 envelope naming ``component``, with ``Retry-After`` (used outside DRF)."""
    response = JsonResponse(unavailable_body(component), status=503)
    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


def log_unavailable(component: str, exc: BaseException) -> None:
    """One line per refused request (no traceback: during an outage every request has the same)."""
    cause = exc.__cause__ or exc
    logger.warning("%s unavailable: %s: %s", component, type(cause).__name__, cause)


def service_unavailable(exc: BaseException) -> AppError | None:
    """The 503 ``AppError`` naming the service ``exc`` shows is away (None: ``exc`` is not that),
    for code that answers outside the envelope's handlers (WebSocket frames)."""
    component = unavailable_component(exc)
    if component is None:
        return None
    log_unavailable(component, exc)
    return AppError(UNAVAILABLE_MESSAGES[component], status_code=503, code="SERVICE_UNAVAILABLE",
                    details={"component": component},
                    headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)})


class AppError(Exception):
    """The application's one error type; services raise it, the handler renders it."""

    status_code = 400
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code
        self.details = details or {}
        self.headers = headers or {}


def envelope(
    status_code: int,
    message: str | None = None,
    *,
    code: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the error body for ``status_code``."""
    default_code, kind = STATUS_CODES.get(status_code, ("ERROR", "error"))
    code = code or default_code
    text = message or DEFAULT_MESSAGES.get(status_code, "Error.")
    return {
        "detail": text,
        "message": text,
        "error": code.lower() if code != default_code else kind,
        "code": code,
        "status_code": status_code,
        "request_id": current_request_id(),
        "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
        "details": details or {},
    }


def error_response(exc: Exception) -> JsonResponse:
    """The envelope for an AppError/DRF error raised outside a DRF view (plain async views)."""
    rendered = exception_handler(exc, {})
    response = JsonResponse(rendered.data, status=rendered.status_code)
    for name, value in rendered.items():
        if name.lower() != "content-type":  # the unrendered DRF response says text/html
            response[name] = value
    return response


def envelope_response(status_code: int, message: str | None = None, **kwargs: Any) -> JsonResponse:
    """A plain Django JSON response carrying the envelope (used outside DRF)."""
    return JsonResponse(envelope(status_code, message, **kwargs), status=status_code)


def flatten_errors(detail: Any) -> Any:
    """DRF ErrorDetail trees -> plain lists/dicts of strings."""
    if isinstance(detail, dict):
        return {str(k): flatten_errors(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [flatten_errors(v) for v in detail]
    return str(detail)


def _first_message(details: Any) -> str:
    if isinstance(details, dict):
        for field, value in details.items():
            inner = _first_message(value)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(details, list) and details:
        return _first_message(details[0])
    return str(details)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler rendering every error as the envelope."""
    headers: dict[str, str] = {}
    if isinstance(exc, AppError):
        body = envelope(exc.status_code, exc.message, code=exc.code, details=exc.details)
        return Response(body, status=exc.status_code, headers=exc.headers)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(envelope(413, f"Request body too large: at most {limit} bytes.",
                                 details={"max_bytes": limit}), status=413)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    if isinstance(exc, drf.ValidationError):
        details = flatten_errors(exc.detail)
        if not isinstance(details, dict):
            details = {"non_field_errors": details if isinstance(details, list) else [details]}
        message = f"Validation error: {_first_message(details)}"
        return Response(envelope(422, message, details=details), status=422)

    if isinstance(exc, drf.APIException):
        status_code = exc.status_code
        if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
            status_code = 401
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait) if exc.wait >= 1 else 1)
        message = flatten_errors(exc.detail)
        if isinstance(message, dict) and isinstance(message.get("detail"), str):
            message = message["detail"]  # simplejwt wraps its text as {"detail", "code"}
        if not isinstance(message, str):
            message = _first_message(message)
        code = None
        if isinstance(exc, drf.ParseError):
            code = "INVALID_REQUEST"
        return Response(envelope(status_code, message, code=code), status=status_code, headers=headers)

    component = unavailable_component(exc)
    if component is not None:
        log_unavailable(component, exc)
        return Response(unavailable_body(component), status=503,
                        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)})

    logger.exception("Unhandled error", exc_info=exc)
    return Response(envelope(500), status=500)
