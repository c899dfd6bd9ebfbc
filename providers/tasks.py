"""The providers app's background work (Celery). Thin: each task calls one service."""

from __future__ import annotations

from celery import shared_task

from providers import cache_services


@shared_task(ignore_result=True)
def cache_warm(*, task_id: str, patterns: list[str], models: list[str], limit: int) -> None:
    """Warm the response cache (progress under ``task_id``, see ``cache_services.warm_status``)."""
    cache_services.cache_warm(task_id=task_id, patterns=patterns, models=models, limit=limit)
