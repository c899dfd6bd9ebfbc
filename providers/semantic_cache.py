"""The semantic half of the response cache: the MiniLM vector of the last user message, matched by
exact cosine (numpy) among the entries with the same context key (model, parameters, system prompt,
earlier messages) that the caller may read (its own scope, or shared entries)."""

from __future__ import annotations

import numpy as np
from django.db.models import Q
from django.utils import timezone

from providers import embeddings
from providers.models import ResponseCacheEntry


def embed(text: str) -> np.ndarray:
    """The normalised float32 vector of ``text``."""
    return np.asarray(embeddings.embed_texts([text])[0], dtype=np.float32)


def nearest(*, context: str, scope: str, vector: np.ndarray, threshold: float) -> tuple[str, float] | None:
    """(key, cosine) of the most similar readable entry at or above ``threshold``, else None."""
    rows = list(ResponseCacheEntry.objects.filter(Q(scope=scope) | Q(shared=True), context_key=context,
                                                  expires_at__gt=timezone.now(), vector__isnull=False)
                .values_list("key", "vector"))
    if not rows:
        return None
    matrix = np.frombuffer(b"".join(bytes(v) for _, v in rows), dtype=np.float32).reshape(len(rows), -1)
    scores = matrix @ vector
    best = int(np.argmax(scores))
    score = float(scores[best])
    return (rows[best][0], score) if score >= threshold else None
