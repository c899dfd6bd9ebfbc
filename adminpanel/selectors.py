"""Health reads: each component checked with its status and latency."""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import psutil
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from providers.selectors import providers_configured

logger = logging.getLogger(__name__)

STARTED_AT = time.time()
psutil.cpu_percent(interval=None)  # prime the counter so the first reading is meaningful


def _timed(check: Callable[[], dict[str, Any] | None], *, required: bool) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {"status": "healthy", "required": required}
    try:
        extra = check()
        if extra:
            result.update(extra)
    except Exception as exc:  # any failure is reported, never raised
        logger.warning("Health check failed: %s", type(exc).__name__)
        result.update(status="unhealthy", error=type(exc).__name__)
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"engine": connection.vendor}


def _check_cache() -> dict[str, Any]:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "ok", timeout=10)
    if cache.get(key) != "ok":
        raise RuntimeError("cache round trip failed")
    cache.delete(key)
    return {"backend": "redis" if settings.REDIS_URL else "local-memory"}


def _check_channel_layer() -> dict[str, Any]:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer")

    async def round_trip() -> None:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "health.ping"})
        message = await layer.receive(channel)
        if message.get("type") != "health.ping":
            raise RuntimeError("channel layer round trip failed")

    async_to_sync(round_trip)()
    return {"backend": "redis" if settings.REDIS_URL else "in-memory"}


def _check_broker() -> dict[str, Any]:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"mode": "eager"}
    from chatplatform.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"mode": "redis"}


def health_basic() -> dict[str, Any]:
    return {
        "status": "healthy",
        "version": settings.VERSION,
        "service": settings.SERVICE_NAME,
        "timestamp": timezone.now(),
        "environment": settings.ENVIRONMENT,
        "providers_configured": providers_configured(),
    }


def health_detailed() -> dict[str, Any]:
    """Every component with status and latency; overall ``unhealthy`` if a required one is down."""
    production = bool(settings.REDIS_URL)
    components = {
        "database": _timed(_check_database, required=True),
        "cache": _timed(_check_cache, required=production),
        "channel_layer": _timed(_check_channel_layer, required=production),
        "broker": _timed(_check_broker, required=production),
    }
    memory = psutil.virtual_memory()
    cpu = psutil.cpu_percent(interval=None)
    process = psutil.Process(os.getpid())
    configured = providers_configured()
    required_down = any(c["status"] != "healthy" and c["required"] for c in components.values())
    optional_down = any(c["status"] != "healthy" for c in components.values())
    status = "unhealthy" if required_down else ("degraded" if optional_down else "healthy")
    return {
        **health_basic(),
        "status": status,
        "checks": {
            **{name: c["status"] for name, c in components.items()},
            "llm_service": "healthy" if any(configured.values()) else "unconfigured",
            "memory_usage": memory.percent,
            "cpu_usage": cpu,
        },
        "components": components,
        "system_info": {
            "python_version": platform.python_version(),
            "platform": platform.platform(terse=True),
            "uptime_seconds": int(time.time() - STARTED_AT),
            "pid": os.getpid(),
            "cpu_count": psutil.cpu_count(),
            "memory_total_bytes": memory.total,
            "memory_available_bytes": memory.available,
            "process_rss_bytes": process.memory_info().rss,
            "implementation": sys.implementation.name,
        },
    }
