"""Celery app. Eager (in-process) without REDIS_URL; Redis broker, worker and beat otherwise."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatplatform.settings")

app = Celery("chatplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic jobs (pruning, cache upkeep, ...) are added here by the apps that own them.
app.conf.beat_schedule = {}
