"""Reading memories: owner-scoped lookups and semantic search.

Search is exact: the owner's vectors (float32 rows) are stacked into one numpy matrix and scored
by cosine similarity (dot products of L2-normalised MiniLM vectors), blended with the memory's
importance, its recency and how many of the query's words it contains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db.models import QuerySet
from django.utils import timezone

from chatplatform.api.exceptions import AppError
from chatplatform.api.memo import SharedVersionMemo
from knowledge.fulltext import words
from knowledge.models import Memory
from providers import embeddings

# Weights of the blended score (they sum to 1, so scores stay within -1..1, in practice 0..1).
W_SIMILARITY, W_IMPORTANCE, W_RECENCY, W_KEYWORD = 0.70, 0.10, 0.05, 0.15
RECENCY_HALF_LIFE_DAYS = 30.0
SEARCH_SCOPE_MAX = 20_000  # a user's memories are capped below this (memories_services.MAX_MEMORIES)


@dataclass(frozen=True)
class ScoredMemory:
    memory: Memory
    score: float
    similarity: float
    keyword: float


def memory_list(*, user, memory_type: str | None = None) -> QuerySet[Memory]:
    memories = Memory.objects.filter(user=user).defer("embedding")
    return memories.filter(memory_type=memory_type) if memory_type else memories


def memory_get(*, user, memory_id: str) -> Memory:
    memory = Memory.objects.filter(user=user, id=str(memory_id)).first()
    if memory is None:
        raise AppError("Memory not found.", status_code=404)
    return memory


# Asked on every chat turn: remembered per worker, dropped on any memory's save or delete.
_any_memories = SharedVersionMemo("memories")


def has_memories(*, user) -> bool:
    return _any_memories.remembered(f"user:{user.pk}", lambda: Memory.objects.filter(user=user).exists())


def watch_memories() -> None:
    _any_memories.watch(Memory)


def vector_of(memory_or_bytes: Memory | bytes) -> np.ndarray:
    raw = memory_or_bytes.embedding if isinstance(memory_or_bytes, Memory) else memory_or_bytes
    return np.frombuffer(bytes(raw), dtype=np.float32)


def _recency(moment: datetime, now: datetime) -> float:
    age_days = max(0.0, (now - moment).total_seconds() / 86400)
    return math.pow(0.5, age_days / RECENCY_HALF_LIFE_DAYS)


def _keyword(query_words: set[str], content: str) -> float:
    if not query_words:
        return 0.0
    found = {w.lower() for w in words(content)}
    return len(query_words & found) / len(query_words)


def memory_search(*, user, query: str, memory_type: str | None = None, limit: int = 10,
                  min_similarity: float | None = None, query_vector: np.ndarray | None = None) -> list[ScoredMemory]:
    """The user's memories best matching ``query``, best first (at most ``limit``).
    ``min_similarity`` drops those whose cosine similarity is below it."""
    rows = list(Memory.objects.filter(user=user, **({"memory_type": memory_type} if memory_type else {}))
                .order_by("-created_at")[:SEARCH_SCOPE_MAX])
    rows = [m for m in rows if len(m.embedding) == embeddings.EMBEDDING_DIM * 4]
    if not rows:
        return []
    if query_vector is None:
        query_vector = np.asarray(embeddings.embed_texts([query])[0], dtype=np.float32)
    matrix = np.vstack([vector_of(m) for m in rows])
    similarity = matrix @ query_vector
    now = timezone.now()
    query_words = {w.lower() for w in words(query)}
    scored = []
    for memory, sim in zip(rows, similarity.tolist(), strict=True):
        if min_similarity is not None and sim < min_similarity:
            continue
        keyword = _keyword(query_words, memory.content)
        recency = _recency(memory.last_used_at or memory.updated_at or memory.created_at, now)
        score = (W_SIMILARITY * sim + W_IMPORTANCE * memory.importance_score + W_RECENCY * recency
                 + W_KEYWORD * keyword)
        scored.append(ScoredMemory(memory=memory, score=round(score, 6), similarity=round(sim, 6),
                                   keyword=round(keyword, 6)))
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored[:limit]
