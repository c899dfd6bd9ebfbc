"""Adminpanel's background work (Celery): thin wrappers over ``adminpanel.services``, each
idempotent. The beat schedule in ``chatplatform/celery.py`` runs them periodically."""

from __future__ import annotations

from celery import shared_task

from adminpanel import maintenance, services


@shared_task(ignore_result=True)
def maintenance_run(name: str) -> dict:
    """Run one registered maintenance task by name (seed 000's maintenance route)."""
    return maintenance.TASKS[name].run()


@shared_task(ignore_result=True)
def request_log_prune() -> int:
    return services.request_log_prune()


@shared_task(ignore_result=True)
def logs_cleanup() -> dict:
    return services.logs_cleanup()


@shared_task(ignore_result=True)
def providers_health_check() -> dict:
    return services.providers_health_check()


@shared_task(ignore_result=True)
def usage_rollup() -> dict:
    return services.usage_rollup()


@shared_task(ignore_result=True)
def caches_refresh() -> dict:
    return services.caches_refresh()
