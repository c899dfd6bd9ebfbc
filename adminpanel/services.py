"""Operator writes: pruning, health checks, usage roll-ups, cache refresh. Each is idempotent
(running it twice does no more than once) and is what a maintenance task or command calls."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone

from adminpanel.models import RequestLog
from adminpanel.request_log import request_log_flush

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None] | None
ROLLUP_CACHE_TIMEOUT = 40 * 24 * 3600
BATCH = 1000


def _delete_in_batches(queryset, *, progress: Progress = None, dry_run: bool = False) -> int:
    """Delete ``queryset``'s rows in primary-key batches (short transactions, bounded memory)."""
    total = queryset.count()
    if dry_run or not total:
        if progress:
            progress(0, total)
        return total
    done = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:BATCH])
        if not ids:
            break
        with transaction.atomic():
            queryset.model.objects.filter(pk__in=ids).delete()
        done += len(ids)
        if progress:
            progress(min(done, total), total)
    return done


def request_log_prune(*, older_than_days: int | None = None, dry_run: bool = False,
                      progress: Progress = None) -> int:
    """Delete request-log rows older than ``older_than_days`` (default REQUEST_LOG_RETENTION_DAYS)."""
    days = settings.REQUEST_LOG_RETENTION_DAYS if older_than_days is None else older_than_days
    request_log_flush()
    cutoff = timezone.now() - timedelta(days=days)
    return _delete_in_batches(RequestLog.objects.filter(created_at__lt=cutoff), progress=progress, dry_run=dry_run)


def log_file_rotate() -> bool:
    """Roll the application log file over (when LOG_FILE is set); True if a file was rotated."""
    from logging.handlers import RotatingFileHandler

    rotated = False
    for handler in logging.getLogger().handlers:
        if isinstance(handler, RotatingFileHandler):
            handler.doRollover()
            rotated = True
    return rotated


def logs_cleanup(*, older_than_days: int | None = None, dry_run: bool = False, progress: Progress = None) -> dict:
    """Seed 000's ``cleanup_logs``: prune the request log by age and roll the log file over."""
    pruned = request_log_prune(older_than_days=older_than_days, dry_run=dry_run, progress=progress)
    rotated = False if dry_run else log_file_rotate()
    return {"request_log_rows_deleted": pruned, "log_file_rotated": rotated, "dry_run": dry_run}


def conversations_prune(*, older_than_days: int | None = None, dry_run: bool = False,
                        progress: Progress = None) -> dict:
    """Delete conversations (and their messages) not updated for ``older_than_days`` (default
    CONVERSATION_RETENTION_DAYS; 0 disables pruning)."""
    from chats.models import Conversation

    days = settings.CONVERSATION_RETENTION_DAYS if older_than_days is None else older_than_days
    if days <= 0:
        return {"conversations_deleted": 0, "retention_days": 0, "dry_run": dry_run}
    cutoff = timezone.now() - timedelta(days=days)
    deleted = _delete_in_batches(Conversation.objects.filter(updated_at__lt=cutoff), progress=progress,
                                 dry_run=dry_run)
    return {"conversations_deleted": deleted, "retention_days": days, "dry_run": dry_run}


def providers_health_check() -> dict:
    """Every configured provider's live health (seed 000's ``health_check``), also logged."""
    from providers.health import provider_health_report

    report = provider_health_report()
    for name, result in report["providers"].items():
        log = logger.info if result["status"] == "healthy" else logger.warning
        log("Provider %s: %s (%.3fs)", name, result["status"], result["response_time"])
    return report


def system_health_check() -> dict:
    """Components (database, cache, channel layer, broker) and providers."""
    from adminpanel.selectors import health_detailed

    detailed = health_detailed()
    return {"status": detailed["status"], "checks": detailed["checks"],
            "providers": providers_health_check()}


def caches_refresh() -> dict:
    """Seed 000's ``refresh_cache``: reload the provider catalogue and configuration in every
    worker (this one now, the others through the shared cache's version key) and evict expired
    response-cache entries (and the oldest beyond ``RESPONSE_CACHE_MAX_ENTRIES``)."""
    from providers import cache as response_cache
    from providers.selectors import announce_change

    announce_change()
    return {"provider_configuration_reloaded": True,
            "response_cache_entries_evicted": response_cache.evict()}


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, datetime.min.time()), timezone.get_current_timezone())
    return start, start + timedelta(days=1)


def usage_rollup(*, day: date | None = None) -> dict:
    """Totals of one day's usage records (default yesterday) by model, provider and user, kept in
    the cache under ``usage:rollup:<day>`` for reports; recomputing a day overwrites it."""
    from providers.models import UsageRecord
    from providers.services import usage_flush

    usage_flush()
    day = day or (timezone.localdate() - timedelta(days=1))
    start, end = _day_bounds(day)
    rows = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
    figures = {"requests": Count("id"), "errors": Count("id", filter=Q(status="error")),
               "tokens": Sum("total_tokens"), "cost": Sum("cost"), "latency_ms": Avg("latency_ms")}

    def grouped(field: str) -> dict[str, Any]:
        return {str(row[field] or "-"): _plain(row) for row in rows.values(field).annotate(**figures).order_by(field)}

    rollup = {"day": day.isoformat(), "total": _plain(rows.aggregate(**figures)), "by_model": grouped("model"),
              "by_provider": grouped("provider"), "by_user": grouped("user__username")}
    cache.set(f"usage:rollup:{day.isoformat()}", rollup, timeout=ROLLUP_CACHE_TIMEOUT)
    return rollup


def _plain(row: dict) -> dict:
    return {"requests": row["requests"] or 0, "errors": row["errors"] or 0, "tokens": row["tokens"] or 0,
            "cost": float(row["cost"] or 0), "avg_latency_ms": round(row["latency_ms"] or 0, 1)}


def documents_reindex() -> dict:
    """Seed 000's ``reindex_documents``: parse, chunk, embed and index every document again."""
    from knowledge import documents

    outcome = documents.documents_reindex()
    return {"documents_reindexed": outcome["ready"], "documents_failed": outcome["failed"]}


def faqs_reindex() -> dict:
    """Recompute every FAQ embedding (support's re-index)."""
    from support import services as support_services

    return {"faqs_reindexed": support_services.faq_reindex(only_missing=False)}
