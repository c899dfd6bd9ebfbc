"""Hybrid retrieval over one owner's document chunks.

Two rankings, fused by reciprocal rank fusion (``1 / (RRF_K + rank)`` summed): exact cosine
similarity in numpy over the owner's float32 vectors (kept in memory per process while unchanged), and keyword search (PostgreSQL full-text on
the GIN-indexed ``to_tsvector('english', text)``, or SQLite FTS5 with BM25). Only ``ready``
documents of the owner are searched; nothing crosses owners.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Count, Max

from knowledge.models import Chunk, Document
from providers import embeddings

RRF_K = 60
MATRIX_CACHE_OWNERS = 32  # owners whose vectors a process keeps in memory (least recently used out)
CANDIDATES = 50  # per ranking, before fusion
SNIPPET_CHARS = 240
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: str
    title: str
    chunk_index: int
    text: str
    score: float  # fused RRF score
    similarity: float | None  # cosine, when the chunk was in the vector ranking

    @property
    def snippet(self) -> str:
        flat = " ".join(self.text.split())
        return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS - 1].rstrip() + "…"


def _scope(owner: Any, document_ids: list[str] | None):
    chunks = Chunk.objects.filter(document__owner=owner, document__status=Document.Status.READY)
    return chunks.filter(document_id__in=document_ids) if document_ids else chunks


def top_k(matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the ``k`` rows of ``matrix`` (unit vectors) nearest to ``query``."""
    scores = matrix @ query
    k = min(k, len(scores))
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part])]
    return order, scores[order]


@dataclass(frozen=True)
class _Matrix:
    version: tuple[int, int]
    ids: np.ndarray  # chunk ids, int64
    documents: np.ndarray  # each row's document id
    vectors: np.ndarray  # (n, 384) float32


_matrices: OrderedDict[Any, _Matrix] = OrderedDict()
_matrices_lock = threading.Lock()


def _owner_matrix(owner: Any) -> _Matrix | None:
    """The owner's ready chunk vectors, from this process's cache while its version holds.

    The version is (count, max id) of the owner's ready chunks: ids only grow (AUTOINCREMENT in
    SQLite, a sequence in PostgreSQL) and chunks are never edited in place (re-ingestion replaces
    them), so any addition raises the max and any removal lowers the count. One aggregate query per
    search instead of reading every vector."""
    scope = _scope(owner, None)
    stats = scope.aggregate(n=Count("id"), top=Max("id"))
    if not stats["n"]:
        return None
    version = (stats["n"], stats["top"])
    with _matrices_lock:
        cached = _matrices.get(owner.pk)
        if cached is not None and cached.version == version:
            _matrices.move_to_end(owner.pk)
            return cached
    rows = list(scope.order_by("id").values_list("id", "document_id", "embedding"))
    matrix = _Matrix(
        version=(len(rows), rows[-1][0]) if rows else version,
        ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        documents=np.array([r[1] for r in rows], dtype=object),
        vectors=np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype=np.float32).reshape(len(rows), -1),
    )
    with _matrices_lock:
        _matrices[owner.pk] = matrix
        _matrices.move_to_end(owner.pk)
        while len(_matrices) > MATRIX_CACHE_OWNERS:
            _matrices.popitem(last=False)
    return matrix


def vector_search(*, owner: Any, query_vector: list[float], limit: int = CANDIDATES,
                  document_ids: list[str] | None = None) -> list[tuple[int, float]]:
    """``(chunk_id, cosine)`` of the owner's nearest chunks, best first (exact, numpy)."""
    matrix = _owner_matrix(owner)
    if matrix is None or not len(matrix.ids):
        return []
    ids, vectors = matrix.ids, matrix.vectors
    if document_ids:
        mask = np.isin(matrix.documents, list(document_ids))
        ids, vectors = ids[mask], vectors[mask]
    order, scores = top_k(vectors, np.asarray(query_vector, dtype=np.float32), limit)
    return [(int(ids[i]), float(s)) for i, s in zip(order, scores, strict=True)]


def keyword_search(*, owner: Any, query: str, limit: int = CANDIDATES,
                   document_ids: list[str] | None = None) -> list[int]:
    """Chunk ids matching any word of ``query``, best first (PostgreSQL full-text or SQLite FTS5)."""
    words = _WORD.findall(query.lower())[:32]
    if not words:
        return []
    docs_sql, docs_params = "", []
    if document_ids:
        docs_sql = f" AND d.id IN ({', '.join(['%s'] * len(document_ids))})"
        docs_params = list(document_ids)
    if connection.vendor == "postgresql":
        # docs_sql holds only %s placeholders; every value is a bound parameter.
        sql = (
               "SELECT c.id FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id, " # noqa: S608  # nosec B608
               "to_tsquery('simple', replace(plainto_tsquery('english', %s)::text, ' & ', ' | ')) q WHERE d.owner_id = %s AND d.status = 'ready'" + docs_sql +
               " AND to_tsvector('english', c.text) @@ q "
               "ORDER BY ts_rank(to_tsvector('english', c.text), q) DESC, c.id LIMIT %s")
        params = [" ".join(words), owner.pk, *docs_params, limit]  # any word matches (OR), stemmed
    elif connection.vendor == "sqlite":
        sql = (
               "SELECT c.id FROM knowledge_chunk_fts f JOIN knowledge_chunk c ON c.id = f.rowid " # noqa: S608  # nosec B608
               "JOIN knowledge_document d ON d.id = c.document_id WHERE knowledge_chunk_fts MATCH %s "
               "AND d.owner_id = %s AND d.status = 'ready'" + docs_sql + " ORDER BY bm25(knowledge_chunk_fts), c.id "
               "LIMIT %s")
        params = [" OR ".join(f'"{w}"' for w in words), owner.pk, *docs_params, limit]
    else:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def fuse(rankings: list[list[int]], *, k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of rankings of ids: ``(id, score)``, best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def hybrid_search(*, owner: Any, query: str, limit: int = 5, document_ids: list[str] | None = None,
                  query_vector: list[float] | None = None) -> list[Hit]:
    """The owner's best chunks for ``query`` (vector and keyword rankings fused)."""
    if not query.strip() or not _scope(owner, document_ids).exists():
        return []  # nothing to search: no query embedding (nor model load) needed
    vector = query_vector if query_vector is not None else embeddings.embed_texts([query])[0]
    nearest = vector_search(owner=owner, query_vector=vector, document_ids=document_ids)
    similarity = dict(nearest)
    keyword = keyword_search(owner=owner, query=query, document_ids=document_ids)
    fused = fuse([[cid for cid, _ in nearest], keyword])[:limit]
    chunks = {c.id: c for c in Chunk.objects.filter(id__in=[cid for cid, _ in fused]).select_related("document")}
    return [Hit(chunk_id=cid, document_id=chunks[cid].document_id, title=chunks[cid].document.title,
                chunk_index=chunks[cid].index, text=chunks[cid].text, score=round(score, 6),
                similarity=round(similarity[cid], 6) if cid in similarity else None)
            for cid, score in fused if cid in chunks]
