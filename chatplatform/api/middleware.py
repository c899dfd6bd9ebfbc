"""Middleware shared by every route: request ids, timing, gzip and the error envelope."""

from __future__ import annotations

import logging
import re
import secrets
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.middleware import clickjacking, common, csrf, security
from django.middleware.gzip import GZipMiddleware
from rest_framework.exceptions import APIException

from chatplatform.api import memo
from chatplatform.api.context import reset_request_id, set_request_id
from chatplatform.api.exceptions import (
    AppError,
    envelope_response,
    error_response,
    log_unavailable,
    unavailable_component,
    unavailable_response,
)

logger = logging.getLogger("chatplatform.request")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Paths that serve HTML on purpose; every other path is API and errors there are JSON.
_NON_API_PREFIXES = ("/admin/", "/docs", "/redoc", "/static/")


def is_api_path(path: str) -> bool:
    return not path.startswith(_NON_API_PREFIXES)


def new_request_id(incoming: str = "") -> str:
    """The client's ``X-Request-ID`` when it is a sane token, else a new id."""
    if incoming and _VALID_REQUEST_ID.match(incoming):
        return incoming
    return f"req_{secrets.token_hex(8)}"


def _request_id_for(request: HttpRequest) -> str:
    return new_request_id(request.headers.get("X-Request-ID", ""))


class HybridMiddleware:
    """Base for middleware that runs natively in sync and async stacks (the async chat path never
    hops threads for it). Subclasses implement :meth:`before` (return a response to answer
    early) and :meth:`after`."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def before(self, request: HttpRequest) -> HttpResponse | None:
        return None

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        return response

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.__acall__(request)
        early = self.before(request)
        return self.after(request, early if early is not None else self.get_response(request))

    async def __acall__(self, request: HttpRequest):
        early = self.before(request)
        return self.after(request, early if early is not None else await self.get_response(request))


def as_envelope(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """``response``, or the JSON envelope in its place when it is one of Django's own (HTML)
    error pages on an API path."""
    if response.status_code < 400 or not is_api_path(request.path):
        return response
    if "json" in response.get("Content-Type", ""):
        return response
    new = envelope_response(response.status_code)
    for header in ("Allow", "Retry-After"):
        if response.has_header(header):
            new[header] = response[header]
    return new


class RequestContextMiddleware(HybridMiddleware):
    """Sets ``X-Request-ID`` (echoed or generated, also in every log line of the request) and
    ``X-Process-Time`` on every response. Being outermost, it is also the last line of the one
    error envelope: an error page Django made for a failure in a middleware layer outside
    :class:`ErrorEnvelopeMiddleware` becomes the envelope here."""

    def before(self, request: HttpRequest) -> None:
        request.request_id = _request_id_for(request)
        request._started = time.perf_counter()
        request._request_id_token = set_request_id(request.request_id)
        request._memo_token = memo.begin_request()

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response = as_envelope(request, response)
        response["X-Request-ID"] = request.request_id
        response["X-Process-Time"] = f"{time.perf_counter() - request._started:.4f}"
        if response.status_code >= 500:
            logger.error("%s %s -> %s", request.method, request.path, response.status_code)
        memo.end_request(request._memo_token)
        reset_request_id(request._request_id_token)
        return response


request_context_middleware = RequestContextMiddleware


class ErrorEnvelopeMiddleware(HybridMiddleware):
    """Turns Django's own HTML error pages on API paths (404, 405, 500, CSRF 403, 400) into the
    JSON envelope, in DEBUG too. DRF views already answer with the envelope and pass untouched."""

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        return as_envelope(request, response)

    def process_exception(self, request: HttpRequest, exception: Exception):
        # Exceptions raised by non-DRF views on API paths: log once, answer with the envelope.
        if not is_api_path(request.path):
            return None
        if isinstance(exception, (AppError, APIException)):
            # Plain (async) Django views raise the same errors as DRF views: same rendering.
            return error_response(exception)
        if isinstance(exception, Http404):
            return envelope_response(404)
        if isinstance(exception, PermissionDenied):
            return envelope_response(403)
        if isinstance(exception, RequestDataTooBig):
            return error_response(exception)
        if isinstance(exception, (BadRequest, SuspiciousOperation)):
            return envelope_response(400)
        component = unavailable_component(exception)
        if component is not None:  # Redis or the database away: 503 naming it
            log_unavailable(component, exception)
            return unavailable_response(component)
        logger.error("Unhandled error on %s", request.path, exc_info=exception)
        return envelope_response(500)


error_envelope_middleware = ErrorEnvelopeMiddleware


# --- Django's own middleware, without a thread hop per hook on the async path ----------------
#
# MiddlewareMixin runs every process_request/process_response of an async request through
# sync_to_async: with Django's stack that was about ten thread hops per API request, most of the
# gateway's latency. The hooks below do no I/O, so they run inline; the session, auth and message
# middleware only matter to the Django admin (the API authenticates with tokens), so they are
# skipped elsewhere. Subclasses keep Django's system checks satisfied.

ADMIN_PREFIX = "/admin/"


class InlineHooksMixin:
    """Run the middleware's (I/O-free) hooks inline on the async path."""

    async def __acall__(self, request: HttpRequest):
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


class AdminOnlyMixin:
    """Only the Django admin needs this middleware; API requests pass straight through."""

    def __call__(self, request: HttpRequest):
        if not request.path.startswith(ADMIN_PREFIX):
            return self.get_response(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest):
        if not request.path.startswith(ADMIN_PREFIX):
            return await self.get_response(request)
        return await super().__acall__(request)


class SecurityMiddleware(InlineHooksMixin, security.SecurityMiddleware):
    pass


class CommonMiddleware(InlineHooksMixin, common.CommonMiddleware):
    pass


class XFrameOptionsMiddleware(InlineHooksMixin, clickjacking.XFrameOptionsMiddleware):
    pass


class SessionMiddleware(AdminOnlyMixin, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(AdminOnlyMixin, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(AdminOnlyMixin, messages.MessageMiddleware):
    pass


class CsrfViewMiddleware(InlineHooksMixin, csrf.CsrfViewMiddleware):
    """CSRF checks for the Django admin (session cookies); API views are csrf_exempt (tokens),
    so elsewhere the check is skipped without a thread hop. Its request and response hooks only
    read and set the CSRF cookie, so they run inline too (in a thread, as Django does, if
    CSRF_USE_SESSIONS puts the token in the database-backed session)."""

    async def __acall__(self, request: HttpRequest):
        if settings.CSRF_USE_SESSIONS:
            return await csrf.CsrfViewMiddleware.__acall__(self, request)
        return await super().__acall__(request)

    async def process_view(self, request, callback, callback_args, callback_kwargs):  # type: ignore[override]
        if not request.path.startswith(ADMIN_PREFIX):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class StreamingAwareGZipMiddleware(InlineHooksMixin, GZipMiddleware):
    """Django's gzip, except for event streams: compressing SSE would buffer the chunks."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if isinstance(response, StreamingHttpResponse) and response.get(
            "Content-Type", ""
        ).startswith("text/event-stream"):
            return response
        return super().process_response(request, response)
