"""Knowledge reads used by other apps (the chat turn)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from knowledge import retrieval
from providers.embeddings import count_tokens


@dataclass(frozen=True)
class RagContext:
    """Document context for one turn: a system-prompt block and the citations it stands on."""

    block: str = ""
    citations: list[dict] = field(default_factory=list)


def rag_context(*, user: Any, query: str, limit: int | None = None, max_tokens: int | None = None) -> RagContext:
    """The user's best document chunks for ``query``, as a prompt block of at most ``max_tokens``
    (``RAG_CONTEXT_TOKENS``) tokens, and their citations (document id, title, chunk index, score, snippet)."""
    limit = limit or int(getattr(settings, "RAG_TOP_K", 5))
    budget = max_tokens or int(getattr(settings, "RAG_CONTEXT_TOKENS", 1500))
    if not getattr(user, "is_authenticated", False) or not query.strip():
        return RagContext()
    parts: list[str] = []
    citations: list[dict] = []
    used = 0
    for hit in retrieval.hybrid_search(owner=user, query=query, limit=limit):
        number = len(citations) + 1
        part = f"[{number}] {hit.title} (chunk {hit.chunk_index})\n{hit.text}"
        tokens = count_tokens(part)
        if used + tokens > budget:
            continue
        used += tokens
        parts.append(part)
        citations.append({"document_id": hit.document_id, "title": hit.title, "chunk_index": hit.chunk_index,
                          "score": hit.score, "snippet": hit.snippet})
    if not parts:
        return RagContext()
    block = ("Use the following excerpts from the user's documents when they help answer; cite them as [n].\n\n"
             + "\n\n".join(parts))
    return RagContext(block=block, citations=citations)
