"""Request rate limits: per user (or API key, or client address) per minute and per hour.

Counters live in the shared cache (Redis in production, so every worker counts together), in
fixed windows. Every API response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (Unix time the minute window resets); over the limit the answer is 429
with ``Retry-After``.

The caller is identified without a database query, from the credential
``chatplatform.api.credentials.presented`` reads: a bearer JWT's signature is checked and its
user id used; a key (``<prefix>_<public>_<secret>``, whoever issued it) is identified by its
prefix and public part; anything else by client address (anonymous callers get
``ANONYMOUS_RATE_LIMIT_PER_MINUTE``, seed 001's 100/min per IP).

While the counters' store (Redis) is unreachable the limiter *fails open* by default
(``RATE_LIMIT_FAIL_OPEN``): requests pass uncounted, without ``X-RateLimit-*`` headers (there is
no count to report), and a warning is logged. Everything that needs Redis to do its work answers
503 on its own; routes that only need the database stay up. With ``RATE_LIMIT_FAIL_OPEN=false``
every limited route answers 503 naming Redis instead. See docs/compat.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from chatplatform.api import metrics
from chatplatform.api.config import setting
from chatplatform.api.counters import counter_add
from chatplatform.api.credentials import BEARER, presented
from chatplatform.api.exceptions import envelope_response, log_unavailable, unavailable_component, unavailable_response
from chatplatform.api.middleware import HybridMiddleware
from chatplatform.api.net import client_ip

logger = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/health", "/api/v1/health", "/docs", "/redoc", "/openapi.json", "/static/", "/admin/",
                   "/metrics")


@dataclass
class Verdict:
    limit: int
    remaining: int
    reset: int
    retry_after: int = 0

    @property
    def allowed(self) -> bool:
        return self.retry_after == 0


def _identity(request: HttpRequest) -> tuple[str, bool]:
    """(bucket key, authenticated?) for the caller."""
    credential = presented(request.META)
    if credential is not None:
        if credential.scheme == BEARER and credential.is_jwt:
            try:
                return f"user:{AccessToken(credential.value)['user_id']}", True
            except (TokenError, KeyError):
                pass  # invalid tokens are refused by authentication; count them per address
        elif credential.key_parts:
            prefix, public = credential.key_parts
            return f"key:{prefix}:{public[:16]}", True
    return f"ip:{client_ip(request)}", False


def _hit(key: str, ttl: int) -> int:
    return counter_add(key, 1, ttl)


def check(request: HttpRequest) -> Verdict:
    """Count this request against the caller's minute and hour windows."""
    ident, authenticated = _identity(request)
    per_minute = setting("rate_limit_per_minute" if authenticated else "anonymous_rate_limit_per_minute")
    per_hour = setting("rate_limit_per_hour")
    per_hour = per_hour if authenticated else max(per_hour, per_minute)
    now = int(time.time())
    minute_window, hour_window = now // 60, now // 3600
    minute_count = _hit(f"rl:{ident}:m:{minute_window}", 120)
    hour_count = _hit(f"rl:{ident}:h:{hour_window}", 7200)
    minute_reset = (minute_window + 1) * 60
    verdict = Verdict(limit=per_minute, remaining=max(0, per_minute - minute_count), reset=minute_reset)
    if hour_count > per_hour:
        verdict.retry_after = max(1, (hour_window + 1) * 3600 - now)
        verdict.remaining = 0
    elif minute_count > per_minute:
        verdict.retry_after = max(1, minute_reset - now)
    return verdict


def _headers(response: HttpResponse, verdict: Verdict) -> HttpResponse:
    response["X-RateLimit-Limit"] = str(verdict.limit)
    response["X-RateLimit-Remaining"] = str(verdict.remaining)
    response["X-RateLimit-Reset"] = str(verdict.reset)
    if not verdict.allowed:
        response["Retry-After"] = str(verdict.retry_after)
    return response


def _refusal(verdict: Verdict) -> HttpResponse:
    metrics.limit_rejection(kind="requests")
    response = envelope_response(429, "Rate limit exceeded. Slow down and retry later.",
                                 details={"retry_after": verdict.retry_after, "limit": verdict.limit})
    return _headers(response, verdict)


class RateLimitMiddleware(HybridMiddleware):
    # Cache round trips are sub-millisecond (local memory, or Redis nearby): done inline rather
    # than paying a thread hop per request on the async path.
    _fail_open_logged_at = 0.0

    def before(self, request: HttpRequest) -> HttpResponse | None:
        request._rate_verdict = None
        if not settings.RATE_LIMIT_ENABLED or request.path.startswith(EXEMPT_PREFIXES) or request.method == "OPTIONS":
            return None
        try:
            verdict = check(request)
        except Exception as exc:
            component = unavailable_component(exc)
            if component is None:
                raise
            if not settings.RATE_LIMIT_FAIL_OPEN:
                log_unavailable(component, exc)
                return unavailable_response(component)
            now = time.monotonic()
            if now - RateLimitMiddleware._fail_open_logged_at > 60:  # once a minute, not per request
                RateLimitMiddleware._fail_open_logged_at = now
                logger.warning("Rate limits not enforced: %s unavailable (%s)", component, exc)
            return None
        request._rate_verdict = verdict
        return None if verdict.allowed else _refusal(verdict)

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        verdict = getattr(request, "_rate_verdict", None)
        return _headers(response, verdict) if verdict is not None else response


rate_limit_middleware = RateLimitMiddleware


def window_retry_after(key: str, limit: int, window: int) -> int:
    """Count one event against ``limit`` per ``window`` seconds for ``key``, in the shared cache:
    0 if allowed, else the seconds until the window (started by the first event) ends."""
    since_key = f"{key}:since"
    now = time.time()
    if cache.add(key, 0, timeout=window):
        cache.set(since_key, now, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        count = 1
    if count <= limit:
        return 0
    return max(1, int(window - (now - (cache.get(since_key) or now))) + 1)
