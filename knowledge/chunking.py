"""Structure-aware, overlapping, token-bounded chunks.

Text is split into sections at Markdown headings, sections into paragraphs (blank lines), and an
oversized paragraph into sentences (then words). Pieces are packed into chunks of at most
``max_tokens`` MiniLM tokens without crossing a section; each chunk after the first in a section
starts with the last ``overlap_tokens`` worth of pieces of the one before, and carries its section's
heading, so a chunk read alone says where it comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from providers.embeddings import count_tokens

MAX_TOKENS = 200  # below MiniLM's 256-token window, heading included
OVERLAP_TOKENS = 40

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class TextChunk:
    index: int
    text: str
    token_count: int


def sections(text: str) -> list[tuple[str, str]]:
    """``(heading, body)`` pairs in order; text before the first heading has heading ``""``."""
    found: list[tuple[str, list[str]]] = [("", [])]
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            found.append((match.group(2).strip(), []))
        else:
            found[-1][1].append(line)
    return [(heading, "\n".join(lines).strip()) for heading, lines in found if heading or "".join(lines).strip()]


def _pieces(body: str, budget: int) -> list[tuple[str, int]]:
    """Paragraphs, or their sentences (or words) where a paragraph is over ``budget`` tokens."""
    out: list[tuple[str, int]] = []
    for paragraph in re.split(r"\n\s*\n", body):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        tokens = count_tokens(paragraph)
        if tokens <= budget:
            out.append((paragraph, tokens))
            continue
        for sentence in _SENTENCE.split(paragraph):
            tokens = count_tokens(sentence)
            if tokens <= budget:
                out.append((sentence, tokens))
                continue
            words = sentence.split()
            step = max(1, len(words) * budget // max(tokens, 1))
            for start in range(0, len(words), step):
                part = " ".join(words[start:start + step])
                out.append((part, count_tokens(part)))
    return out


def chunk_text(text: str, *, max_tokens: int = MAX_TOKENS, overlap_tokens: int = OVERLAP_TOKENS) -> list[TextChunk]:
    """The chunks of ``text`` (see the module docstring)."""
    chunks: list[TextChunk] = []

    def emit(heading: str, parts: list[tuple[str, int]]) -> None:
        body = "\n\n".join(p for p, _ in parts)
        full = f"{heading}\n\n{body}" if heading else body
        chunks.append(TextChunk(index=len(chunks), text=full, token_count=count_tokens(full)))

    for heading, body in sections(text):
        head_tokens = count_tokens(heading) + 2 if heading else 0
        budget = max(16, max_tokens - head_tokens)
        current: list[tuple[str, int]] = []
        size = 0
        fresh = 0  # pieces in ``current`` not already emitted in an earlier chunk
        for piece, tokens in _pieces(body, budget):
            if current and size + tokens > budget:
                emit(heading, current)
                kept: list[tuple[str, int]] = []
                kept_size = 0
                for item in reversed(current):
                    if kept_size + item[1] > overlap_tokens or kept_size + item[1] + tokens > budget:
                        break
                    kept.insert(0, item)
                    kept_size += item[1]
                current, size, fresh = kept, kept_size, 0
            current.append((piece, tokens))
            size += tokens
            fresh += 1
        if current and fresh:
            emit(heading, current)
        elif heading and not body:
            emit(heading, [])
    return chunks
