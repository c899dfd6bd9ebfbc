"""Celery app. Eager (in-process) without REDIS_URL; Redis broker, worker and beat otherwise."""

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatplatform.settings")

app = Celery("chatplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic jobs (``celery -A chatplatform beat``). Each is a thin, idempotent task.
app.conf.beat_schedule = {
    "request-log-prune": {"task": "adminpanel.tasks.request_log_prune", "schedule": crontab(minute=17, hour="*/6")},
    "logs-cleanup": {"task": "adminpanel.tasks.logs_cleanup", "schedule": crontab(minute=5, hour=3)},
    "providers-health-check": {"task": "adminpanel.tasks.providers_health_check", "schedule": 300.0},
    "usage-rollup": {"task": "adminpanel.tasks.usage_rollup", "schedule": crontab(minute=10, hour=0)},
    "cache-refresh": {"task": "adminpanel.tasks.caches_refresh", "schedule": crontab(minute=0)},
}


@task_postrun.connect
def _write_held_usage(**kwargs) -> None:
    """A task's usage rows (a memory extraction calls a model) are written when it ends: a worker's
    child process exits without running atexit, so the write-behind buffer must not be left holding
    them."""
    from providers.services import usage_flush

    usage_flush()
