"""Health reads: each component checked with its status and latency."""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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


# --- Seed 000's operator reads ----------------------------------------------------------------


def system_status() -> dict[str, Any]:
    """Seed 000's ``GET /admin/system/status``: overall health and the running settings."""
    detailed = health_detailed()
    return {
        "status": detailed["status"],
        "timestamp": timezone.now(),
        "admin_info": {
            "settings": {"debug_mode": settings.DEBUG, "log_level": logging.getLevelName(logging.getLogger().level),
                         "api_version": "/api/v1"},
            "environment": {"app_name": settings.SERVICE_NAME, "version": settings.VERSION,
                            "host": settings.HOST, "port": settings.PORT, "environment": settings.ENVIRONMENT},
        },
        "checks": detailed["checks"],
    }


def system_metrics(*, hours: int) -> dict[str, Any]:
    """Seed 000's ``GET /admin/system/metrics``: api figures from the request log, chat figures
    from messages, llm figures from usage records, over the last ``hours``."""
    from django.db.models import Avg, Count, Q, Sum

    from adminpanel.models import RequestLog
    from adminpanel.request_log import request_log_flush
    from chats.models import Message
    from providers.models import UsageRecord
    from providers.services import usage_flush

    request_log_flush()  # this worker's buffered rows count too
    usage_flush()
    end = timezone.now()
    start = end - timedelta(hours=hours)
    api = RequestLog.objects.filter(created_at__gte=start, created_at__lte=end).aggregate(
        total=Count("id"), ok=Count("id", filter=Q(status__lt=400)), avg=Avg("duration_ms"))
    messages = Message.objects.filter(created_at__gte=start, created_at__lte=end)
    chat = messages.aggregate(total=Count("id"), conversations=Count("conversation", distinct=True),
                              users=Count("conversation__user", distinct=True))
    usage = UsageRecord.objects.filter(created_at__gte=start, created_at__lte=end)
    totals = usage.aggregate(tokens=Sum("total_tokens"), cost=Sum("cost"), calls=Count("id"),
                             errors=Count("id", filter=Q(status="error")))
    by_model = list(usage.values("model").annotate(n=Count("id")).order_by("-n", "model"))
    calls = totals["calls"] or 0
    return {
        "period": {"start": start, "end": end, "hours": hours},
        "api_metrics": {"total_requests": api["total"], "successful_requests": api["ok"],
                        "failed_requests": api["total"] - api["ok"],
                        "average_response_time_ms": round(api["avg"] or 0, 1)},
        "chat_metrics": {"total_messages": chat["total"], "total_conversations": chat["conversations"],
                         "unique_users": chat["users"]},
        "llm_metrics": {"total_tokens_used": totals["tokens"] or 0,
                        "model_usage": {row["model"]: round(row["n"] / calls, 4) for row in by_model},
                        "total_calls": calls, "failed_calls": totals["errors"],
                        "total_cost": float(totals["cost"] or 0)},
    }


def users_overview(*, limit: int) -> dict[str, Any]:
    """Seed 000's ``GET /admin/users/overview``: the newest ``limit`` users with their activity."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count, Max, Sum

    from chats.models import Conversation
    from providers.models import UsageRecord
    from providers.services import usage_flush

    usage_flush()  # this worker's held rows count too
    User = get_user_model()
    users = list(User.objects.order_by("-created_at", "pk")[:limit])
    ids = [u.pk for u in users]
    conversations = {row["user"]: row for row in Conversation.objects.filter(user__in=ids).values("user").annotate(
        n=Count("id"), messages=Sum("message_count"), last=Max("updated_at"))}
    usage = {row["user"]: row for row in UsageRecord.objects.filter(user__in=ids).values("user").annotate(
        tokens=Sum("total_tokens"), cost=Sum("cost"))}
    rows = []
    for u in users:
        c, s = conversations.get(u.pk, {}), usage.get(u.pk, {})
        rows.append({"id": u.pk, "username": u.username, "email": u.email, "is_active": u.is_active,
                     "is_staff": u.is_staff, "full_name": u.full_name, "date_joined": u.created_at,
                     "last_login": u.last_login, "conversation_count": c.get("n", 0),
                     "message_count": c.get("messages") or 0, "last_activity": c.get("last"),
                     "total_tokens": s.get("tokens") or 0, "total_cost": float(s.get("cost") or 0)})
    return {"total_users": User.objects.count(), "active_users": User.objects.filter(is_active=True).count(),
            "staff_users": User.objects.filter(is_staff=True).count(), "limit": limit, "users": rows}


LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _file_records(path: str, keep: int) -> list[dict[str, Any]]:
    import collections
    import json

    records: collections.deque = collections.deque(maxlen=keep)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except FileNotFoundError:
        return []
    return list(records)


def logs_recent(*, level: str | None, lines: int, service: str | None) -> dict[str, Any]:
    """Seed 000's ``GET /admin/logs``: the newest ``lines`` records at ``level`` or above whose
    logger is ``service`` or below it. From LOG_FILE (every worker) when set, else this worker's
    in-memory ring."""
    from chatplatform.api.logging import RecentLogsHandler

    minimum = LOG_LEVELS.index(level) if level else 0
    if settings.LOG_FILE:
        source, raw = "file", _file_records(settings.LOG_FILE, 20000)
        records = [{"timestamp": r.get("timestamp"), "level": r.get("level", ""), "logger": r.get("logger", ""),
                    "message": r.get("message", ""), "request_id": r.get("request_id", "-")} for r in raw]
    else:
        source = "memory"
        records = [{**r, "timestamp": datetime.fromtimestamp(r["timestamp"], tz=UTC).isoformat()}
                   for r in RecentLogsHandler.recent()]

    def wanted(record: dict[str, Any]) -> bool:
        rank = LOG_LEVELS.index(record["level"]) if record["level"] in LOG_LEVELS else 0
        name = record["logger"] or ""
        return rank >= minimum and (not service or name == service or name.startswith(service + "."))

    matched = [r for r in records if wanted(r)][-lines:]
    return {"source": source, "level": level or "DEBUG", "service": service, "lines": lines,
            "count": len(matched), "logs": matched}
