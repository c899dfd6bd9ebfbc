"""Knowledge: memories (durable facts about a user, embedded for semantic search), documents and
their chunks (vectors as float32 bytes, full-text indexed); webhooks live in
:mod:`knowledge.webhook_models` and are re-exported here.

Full-text search over chunks: a GIN index on ``to_tsvector('english', text)`` in PostgreSQL and an
FTS5 table kept in sync by triggers in SQLite (both created by migration ``0003_documents``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from chatplatform.api.ids import PublicIdField
from knowledge.webhook_models import Webhook, WebhookDelivery


class Memory(models.Model):
    """A fact, preference or note about its owner, with its MiniLM embedding (384 float32, raw bytes)."""

    class Type(models.TextChoices):
        """Common types; any short lowercase slug is accepted."""

        GLOBAL = "global"
        PREFERENCE = "preference"
        FACT = "fact"

    id = PublicIdField(prefix="mem")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memories")
    content = models.TextField()
    memory_type = models.CharField(max_length=50, default=Type.GLOBAL)
    importance_score = models.FloatField(default=0.5)
    metadata = models.JSONField(default=dict, blank=True)
    embedding = models.BinaryField(default=b"", blank=True)
    source = models.CharField(max_length=20, default="user", help_text="user, or extracted (from a chat turn).")
    use_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "memory_type", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(importance_score__gte=0, importance_score__lte=1),
                                   name="memory_importance_0_1"),
        ]

    def __str__(self) -> str:
        return self.content[:60]


class Document(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    id = PublicIdField(prefix="doc")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=300)
    mime_type = models.CharField(max_length=100)
    metadata = models.JSONField(default=dict, blank=True)
    source = models.BinaryField()  # the uploaded bytes (UTF-8 for JSON content); re-parsed on reindex
    size_bytes = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True, default="")
    chunk_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="knowledge_doc_owner_created")]

    def __str__(self) -> str:
        return self.title


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    text = models.TextField()
    token_count = models.PositiveIntegerField(default=0)
    embedding = models.BinaryField()  # 384 float32, L2-normalised

    class Meta:
        ordering = ["document_id", "index"]
        constraints = [models.UniqueConstraint(fields=["document", "index"], name="knowledge_chunk_doc_index")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.index}"


__all__ = ["Chunk", "Document", "Memory", "Webhook", "WebhookDelivery"]
