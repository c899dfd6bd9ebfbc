"""Prometheus metrics (prometheus-client), shared by every app, and the ``/metrics`` exposition.

With several worker processes, ``PROMETHEUS_MULTIPROC_DIR`` names a directory where each process
writes its values (prometheus-client's multiprocess mode) and ``/metrics`` merges them, so any
worker answers for all; ``manage.py serve`` empties it at start (and makes one when it starts
several workers without it). Without it, values are this process's own.

The helpers below are the only way other modules touch metrics, so labels stay consistent:
:func:`provider_call`, :func:`cache_hit`/:func:`cache_miss`, :func:`limit_rejection`,
:func:`stream_started`/:func:`stream_ended`, :func:`websocket_opened`/:func:`websocket_closed`.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal

from django.conf import settings
from django.http import HttpRequest, HttpResponse

if settings.PROMETHEUS_MULTIPROC_DIR:  # before prometheus_client is imported: it picks its storage then
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", settings.PROMETHEUS_MULTIPROC_DIR)

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from chatplatform.api.middleware import HybridMiddleware  # noqa: E402

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

# Seed 001's name and labels: chatbot_requests_total{method="GET",endpoint="/health",status="200"}.
HTTP_REQUESTS = Counter("chatbot_requests", "Total number of requests (by method, route pattern, status).",
                        ["method", "endpoint", "status"])
HTTP_LATENCY = Histogram("chatbot_request_duration_seconds", "Time to the response's headers, by route.",
                         ["method", "endpoint"], buckets=LATENCY_BUCKETS)
PROVIDER_CALLS = Counter("llm_provider_calls", "Provider calls by provider, model and outcome.",
                         ["provider", "model", "status"])
PROVIDER_ERRORS = Counter("llm_provider_errors", "Provider calls that failed, by error code.",
                          ["provider", "model", "code"])
PROVIDER_LATENCY = Histogram("llm_provider_latency_seconds", "Provider call duration (whole reply).",
                             ["provider", "model"], buckets=LATENCY_BUCKETS)
TOKENS = Counter("llm_tokens", "Tokens by provider, model and kind (prompt, completion).",
                 ["provider", "model", "kind"])
COST = Counter("llm_cost_usd", "Cost in USD by provider and model.", ["provider", "model"])
CACHE = Counter("response_cache_lookups", "Response cache lookups by cache (exact, semantic) and result.",
                ["cache", "result"])
LIMIT_REJECTIONS = Counter("limit_rejections", "Requests refused by a limit or budget, by kind.", ["kind"])
ACTIVE_STREAMS = Gauge("active_streams", "Replies being generated now.", multiprocess_mode="livesum")
WEBSOCKETS = Gauge("websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum")


def provider_call(*, provider: str, model: str, status: str, latency_s: float, prompt_tokens: int = 0,
                  completion_tokens: int = 0, cost: Decimal | float = 0, error_code: str = "") -> None:
    """Count one provider call (status ``success``, ``error`` or ``cancelled``) with its usage."""
    provider, model = provider or "none", model or "none"
    PROVIDER_CALLS.labels(provider, model, status).inc()
    PROVIDER_LATENCY.labels(provider, model).observe(max(0.0, latency_s))
    if error_code:
        PROVIDER_ERRORS.labels(provider, model, error_code).inc()
    if prompt_tokens:
        TOKENS.labels(provider, model, "prompt").inc(prompt_tokens)
    if completion_tokens:
        TOKENS.labels(provider, model, "completion").inc(completion_tokens)
    if cost:
        COST.labels(provider, model).inc(float(cost))


def cache_hit(cache: str = "exact") -> None:
    """A response-cache hit (``cache``: ``exact`` or ``semantic``)."""
    CACHE.labels(cache, "hit").inc()


def cache_miss(cache: str = "exact") -> None:
    CACHE.labels(cache, "miss").inc()


def limit_rejection(*, kind: str) -> None:
    """A request refused by a limit (``requests``, ``tokens_per_minute``, ``token_budget``, ...)."""
    LIMIT_REJECTIONS.labels(kind).inc()


def stream_started() -> None:
    ACTIVE_STREAMS.inc()


def stream_ended() -> None:
    ACTIVE_STREAMS.dec()


def websocket_opened() -> None:
    WEBSOCKETS.inc()


def websocket_closed() -> None:
    WEBSOCKETS.dec()


def exposition() -> tuple[bytes, str]:
    """The text exposition of every process's metrics (or this process's), and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: Prometheus text format."""
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None and match.route else "unmatched"


class MetricsMiddleware(HybridMiddleware):
    """Counts every HTTP request by route pattern (never the raw path: ids would explode the
    label set), method and status, and observes its latency."""

    def before(self, request: HttpRequest) -> HttpResponse | None:
        request._metrics_started = time.perf_counter()
        return None

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        route = _route(request)
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - request._metrics_started)
        return response


metrics_middleware = MetricsMiddleware
