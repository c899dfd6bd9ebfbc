"""Middleware shared by every route: request ids, timing, gzip and the error envelope."""

from __future__ import annotations

import logging
import re
import secrets
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.gzip import GZipMiddleware
from rest_framework.exceptions import APIException

from chatplatform.api.context import reset_request_id, set_request_id
from chatplatform.api.exceptions import AppError, envelope_response, exception_handler

logger = logging.getLogger("chatplatform.request")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Paths that serve HTML on purpose; every other path is API and errors there are JSON.
_NON_API_PREFIXES = ("/admin/", "/docs", "/redoc", "/static/")


def is_api_path(path: str) -> bool:
    return not path.startswith(_NON_API_PREFIXES)


def _request_id_for(request: HttpRequest) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    if incoming and _VALID_REQUEST_ID.match(incoming):
        return incoming
    return f"req_{secrets.token_hex(8)}"


def _finish(request: HttpRequest, response: HttpResponse, request_id: str, started: float) -> None:
    elapsed = time.perf_counter() - started
    response["X-Request-ID"] = request_id
    response["X-Process-Time"] = f"{elapsed:.4f}"
    if response.status_code >= 500:
        logger.error("%s %s -> %s", request.method, request.path, response.status_code)


class RequestContextMiddleware:
    """Sets ``X-Request-ID`` (echoed or generated) and ``X-Process-Time`` on every response.

    Works in both sync and async stacks so the async chat path never hops threads for it.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.__acall__(request)
        started = time.perf_counter()
        request_id = _request_id_for(request)
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
            _finish(request, response, request_id, started)
            return response
        finally:
            reset_request_id(token)

    async def __acall__(self, request: HttpRequest):
        started = time.perf_counter()
        request_id = _request_id_for(request)
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = await self.get_response(request)
            _finish(request, response, request_id, started)
            return response
        finally:
            reset_request_id(token)


request_context_middleware = RequestContextMiddleware


class ErrorEnvelopeMiddleware:
    """Turns Django's own HTML error pages on API paths (404, 405, 500, CSRF 403, 400) into the
    JSON envelope, in DEBUG too. DRF views already answer with the envelope and pass untouched."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.__acall__(request)
        return self._convert(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest):
        return self._convert(request, await self.get_response(request))

    @staticmethod
    def _convert(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code < 400 or not is_api_path(request.path):
            return response
        content_type = response.get("Content-Type", "")
        if "json" in content_type:
            return response
        new = envelope_response(response.status_code)
        if response.has_header("Allow"):
            new["Allow"] = response["Allow"]
        if response.has_header("Retry-After"):
            new["Retry-After"] = response["Retry-After"]
        return new

    def process_exception(self, request: HttpRequest, exception: Exception):
        # Exceptions raised by non-DRF views on API paths: log once, answer with the envelope.
        if not is_api_path(request.path):
            return None
        if isinstance(exception, (AppError, APIException)):
            # Plain (async) Django views raise the same errors as DRF views: same rendering.
            rendered = exception_handler(exception, {})
            response = JsonResponse(rendered.data, status=rendered.status_code)
            for header, value in rendered.items():
                response[header] = value
            return response
        if isinstance(exception, Http404):
            return envelope_response(404)
        if isinstance(exception, PermissionDenied):
            return envelope_response(403)
        if isinstance(exception, (BadRequest, SuspiciousOperation)):
            return envelope_response(400)
        logger.error("Unhandled error on %s", request.path, exc_info=exception)
        return envelope_response(500)


error_envelope_middleware = ErrorEnvelopeMiddleware


class StreamingAwareGZipMiddleware(GZipMiddleware):
    """Django's gzip, except for event streams: compressing SSE would buffer the chunks."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if isinstance(response, StreamingHttpResponse) and response.get(
            "Content-Type", ""
        ).startswith("text/event-stream"):
            return response
        return super().process_response(request, response)
