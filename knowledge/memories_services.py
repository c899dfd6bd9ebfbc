"""Writing memories: create (embedded with MiniLM on write), update, delete, mark as used, and
store facts extracted from a chat turn (deduplicated by similarity)."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chatplatform.api.exceptions import AppError
from knowledge import webhooks
from knowledge.memories_selectors import memory_search
from knowledge.models import Memory
from providers import embeddings
from providers import services as provider_services
from providers.adapters.base import ChatMessage
from providers.params import GenerationParams

logger = logging.getLogger(__name__)

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
    memory = Memory.objects.create(user=user, content=content, memory_type=memory_type,
                                   importance_score=importance_score, metadata=metadata or {},
                                   embedding=_embedding(content), source=source)
    webhooks.emit_knowledge_events(user=user, memory={
        "id": memory.id, "content": memory.content, "memory_type": memory.memory_type,
        "importance_score": memory.importance_score, "metadata": memory.metadata, "source": memory.source,
        "created_at": memory.created_at.isoformat().replace("+00:00", "Z"),
    })
    return memory


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


# --- extraction from a chat turn ----------------------------------------------------------------

EXTRACTION_SYSTEM = (
    "You extract durable facts about the user from one exchange of a conversation: stable preferences, "
    "personal details, goals and circumstances worth remembering in later conversations. Ignore small "
    "talk, one-off requests and anything about the assistant. Answer with a JSON array of short "
    "third-person strings (e.g. [\"User prefers dark mode\"]) and nothing else; [] when there is none."
)
MAX_EXTRACTED_FACTS = 10
MAX_FACT_CHARS = 500
MAX_EXCHANGE_CHARS = 8000


def parse_facts(text: str) -> list[str]:
    """The strings of the first JSON array in ``text`` (a model may wrap it in prose or a code fence)."""
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        return []
    try:
        value = json.loads(text[start:end + 1])
    except ValueError:
        return []
    if not isinstance(value, list):
        return []
    facts = [v.strip()[:MAX_FACT_CHARS] for v in value if isinstance(v, str) and v.strip() and "\x00" not in v]
    return facts[:MAX_EXTRACTED_FACTS]


def memories_extract(*, user, user_text: str, reply_text: str, model: str = "", provider: str = "") -> list[Memory]:
    """Ask the model that answered (else the default) for durable facts in one exchange and store
    the new ones (see :func:`memories_store_extracted`)."""
    exchange = f"User: {user_text[:MAX_EXCHANGE_CHARS]}\n\nAssistant: {reply_text[:MAX_EXCHANGE_CHARS]}"
    call = provider_services.ChatCall(messages=[ChatMessage("user", exchange)], model=model or None,
                                      provider=provider or None, system=EXTRACTION_SYSTEM,
                                      params=GenerationParams(temperature=0.0), user=user)
    result = async_to_sync(provider_services.chat_complete)(call)
    if result.error is not None:
        logger.warning("Memory extraction failed: %s", result.error)
        return []
    return memories_store_extracted(user=user, facts=parse_facts(result.text), metadata={"extracted": True})


def memories_extract_later(*, user_id: int, user_text: str, reply_text: str, model: str = "",
                           provider: str = "") -> None:
    """Enqueue :func:`memories_extract` (a Celery task) once the current transaction commits."""
    from knowledge.tasks import memories_extract as task

    transaction.on_commit(lambda: task.delay(user_id=user_id, user_text=user_text, reply_text=reply_text,
                                             model=model, provider=provider), robust=True)
