"""Webhooks (seed 004): a user's HTTP endpoints that receive signed event deliveries, and the
delivery log."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chatplatform.api.ids import PublicIdField
from providers import crypto


class Webhook(models.Model):
    id = PublicIdField(prefix="whk")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=list)
    secret_encrypted = models.TextField()
    is_active = models.BooleanField(default=True)
    failure_count = models.PositiveIntegerField(default=0, help_text="Consecutive failed attempts.")
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "is_active"])]

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = crypto.encrypt(value)


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RETRYING = "retrying"
        SUCCESS = "success"
        FAILED = "failed"

    id = PublicIdField(prefix="whd")
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=50)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    next_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["webhook", "-created_at"])]
