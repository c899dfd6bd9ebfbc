"""Writing memories: create (embedded with MiniLM on write), update, delete, mark as used, and
store facts extracted from a chat turn (deduplicated by similarity)."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chatplatform.api.exceptions import AppError
from knowledge.memories_selectors import memory_search
from knowledge.models import Memory
from providers import embeddings

MAX_MEMORIES = 10_000  # per user
DUPLICATE_SIMILARITY = 0.9  # an extracted fact this close to an existing memory is not stored again


def _embedding(content: str) -> bytes:
    return np.asarray(embeddings.embed_texts([content])[0], dtype=np.float32).tobytes()


@transaction.atomic
def memory_create(*, user, content: str, memory_type: str = Memory.Type.GLOBAL, importance_score: float = 0.5,
                  metadata: dict[str, Any] | None = None, source: str = "user") -> Memory:
    if Memory.objects.filter(user=user).count() >= MAX_MEMORIES:
        raise AppError(f"At most {MAX_MEMORIES} memories per user: delete some first.", status_code=409,
                       code="MEMORY_LIMIT")
    return Memory.objects.create(user=user, content=content, memory_type=memory_type,
                                 importance_score=importance_score, metadata=metadata or {},
                                 embedding=_embedding(content), source=source)


@transaction.atomic
def memory_update(*, memory: Memory, **fields: Any) -> Memory:
    """Change content (re-embedded), memory_type, importance_score or metadata."""
    for name in ("content", "memory_type", "importance_score", "metadata"):
        if name in fields and fields[name] is not None:
            setattr(memory, name, fields[name])
    if fields.get("content") is not None:
        memory.embedding = _embedding(memory.content)
    memory.save()
    return memory


@transaction.atomic
def memory_delete(*, memory: Memory) -> None:
    memory.delete()


def memories_mark_used(*, memory_ids: list[str]) -> None:
    if memory_ids:
        Memory.objects.filter(id__in=memory_ids).update(last_used_at=timezone.now(), use_count=F("use_count") + 1)


def memories_store_extracted(*, user, facts: list[str], metadata: dict[str, Any] | None = None) -> list[Memory]:
    """Store each fact not already known (cosine similarity below :data:`DUPLICATE_SIMILARITY`
    to every memory of the user's, and to the facts stored before it)."""
    stored: list[Memory] = []
    for fact in facts:
        vector = np.asarray(embeddings.embed_texts([fact])[0], dtype=np.float32)
        if memory_search(user=user, query=fact, limit=1, min_similarity=DUPLICATE_SIMILARITY, query_vector=vector):
            continue
        try:
            stored.append(memory_create(user=user, content=fact, memory_type=Memory.Type.FACT,
                                        metadata=metadata or {}, source="extracted"))
        except AppError:
            break  # the user's limit is reached
    return stored
