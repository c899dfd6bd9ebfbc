"""What knowledge adds to a chat turn: context blocks for the system prompt.

:func:`turn_context` is the one hook a turn calls; each source (memories here; documents can add
theirs the same way) returns :class:`ContextBlock` s bounded in tokens, and the turn appends
:func:`render` of them to its system prompt and records each block's ``sources`` in the reply's
metadata under the block's ``kind``.
Documents (RAG) add their chunks through :func:`rag_context`, which also returns the citations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from knowledge import memories_selectors, retrieval
from providers import embeddings

MEMORY_CONTEXT_TOKENS = 400
MEMORY_CONTEXT_LIMIT = 5
MEMORY_MIN_SIMILARITY = 0.2  # MiniLM: related sentences score about 0.25-0.5, unrelated ones below 0.15


@dataclass(frozen=True)
class ContextBlock:
    """A titled block of the system context and the ids of what it was built from."""

    kind: str  # the reply metadata key listing ``sources``, e.g. "memory_ids"
    title: str
    lines: list[str]
    sources: list[str] = field(default_factory=list)

    def text(self) -> str:
        return self.title + "\n" + "\n".join(f"- {line}" for line in self.lines)


def uses_memories(*, user, preferences: dict) -> bool:
    """The ``use_memories`` preference (default: on, when the user has memories)."""
    if preferences.get("use_memories") is False:
        return False
    return memories_selectors.has_memories(user=user)


def memory_context(*, user, text: str, max_tokens: int = MEMORY_CONTEXT_TOKENS) -> ContextBlock | None:
    """The user's memories most relevant to ``text`` (similar enough, best first), within
    ``max_tokens``; None when none is."""
    hits = memories_selectors.memory_search(user=user, query=text, limit=MEMORY_CONTEXT_LIMIT,
                                            min_similarity=MEMORY_MIN_SIMILARITY)
    lines, sources, used = [], [], 0
    for hit in hits:
        tokens = embeddings.count_tokens(hit.memory.content) + 2
        if used + tokens > max_tokens:
            continue
        lines.append(hit.memory.content.replace("\n", " "))
        sources.append(hit.memory.id)
        used += tokens
    if not lines:
        return None
    return ContextBlock(kind="memory_ids", title="What you remember about the user (use it when relevant):",
                        lines=lines, sources=sources)


def turn_context(*, user, text: str, preferences: dict) -> list[ContextBlock]:
    """The context blocks for a turn answering ``text`` by an authenticated ``user``."""
    blocks: list[ContextBlock] = []
    if text.strip() and uses_memories(user=user, preferences=preferences):
        block = memory_context(user=user, text=text)
        if block is not None:
            blocks.append(block)
    return blocks


def render(system: str | None, blocks: list[ContextBlock]) -> str | None:
    """``system`` followed by the blocks (``system`` unchanged when there are none)."""
    if not blocks:
        return system
    return "\n\n".join([*([system] if system else []), *(b.text() for b in blocks)])


def sources_metadata(blocks: list[ContextBlock]) -> dict[str, list[str]]:
    return {b.kind: b.sources for b in blocks}



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
        tokens = embeddings.count_tokens(part)
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
