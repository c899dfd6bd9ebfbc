"""Knowledge: documents and their chunks (vectors as float32 bytes, full-text indexed).

Full-text search over chunks: a GIN index on ``to_tsvector('english', text)`` in PostgreSQL and an
FTS5 table kept in sync by triggers in SQLite (both created by migration ``0001_documents``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chatplatform.api.ids import PublicIdField


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
