"""The request log: one row per HTTP request (who, which route, outcome, time). No bodies, no
query strings, no headers: nothing a secret could hide in."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class RequestLog(models.Model):
    request_id = models.CharField(max_length=128, db_index=True)
    # No database constraint: rows are written in batches after the response, and a user deleted
    # in between must not make the batch fail. Pruned by age (REQUEST_LOG_RETENTION_DAYS).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
                             db_constraint=False, related_name="+")
    route = models.CharField(max_length=255, help_text="The URL pattern that served the request.")
    path = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    status = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"
