"""Document writes (services): upload, ingest (parse, chunk, embed, index), delete, reindex.

``document_create`` saves the upload as ``pending`` and enqueues ``knowledge.tasks.document_ingest``
once the transaction commits (eager, in-process, in the embedded mode). Ingestion never raises for a
bad document: the document ends ``failed`` with the reason in ``error``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from chatplatform.api.exceptions import AppError
from knowledge import chunking, parsing, webhooks
from knowledge.models import Chunk, Document
from providers import embeddings

logger = logging.getLogger(__name__)

EMBED_BATCH = 32


def max_document_bytes() -> int:
    return int(getattr(settings, "DOCUMENT_MAX_BYTES", 4 * 1024 * 1024))


def max_document_chunks() -> int:
    return int(getattr(settings, "DOCUMENT_MAX_CHUNKS", 2000))


def check_upload(*, data: bytes, mime_type: str, field: str) -> str:
    """The normalised MIME type; 413 over the size limit, 400 for an unsupported type or empty data."""
    limit = max_document_bytes()
    if len(data) > limit:
        raise AppError(f"Document too large: at most {limit} bytes.", status_code=413, code="PAYLOAD_TOO_LARGE",
                       details={field: [f"At most {limit} bytes."], "max_bytes": limit})
    kind = parsing.normalise_type(mime_type)
    if kind not in parsing.SUPPORTED_TYPES:
        raise AppError(f"Unsupported document type {mime_type!r}.", status_code=400, code="UNSUPPORTED_TYPE",
                       details={"mime_type": [f"Supported: {', '.join(sorted(parsing.SUPPORTED_TYPES))}."]})
    if not data.strip():
        raise AppError("The document is empty.", status_code=400, code="BAD_REQUEST",
                       details={field: ["The document is empty."]})
    return kind


@transaction.atomic
def document_create(*, owner: Any, title: str, data: bytes, mime_type: str, metadata: dict | None = None,
                    field: str = "content") -> Document:
    """Save a document (``pending``) and enqueue its ingestion after commit."""
    kind = check_upload(data=data, mime_type=mime_type, field=field)
    document = Document.objects.create(owner=owner, title=title, mime_type=kind, metadata=metadata or {},
                                       source=data, size_bytes=len(data))
    _enqueue(document.id)
    webhooks.emit_knowledge_events(user=owner, document={
        "id": document.id, "title": document.title, "mime_type": document.mime_type, "status": document.status,
        "size_bytes": document.size_bytes, "metadata": document.metadata,
        "created_at": document.created_at.isoformat().replace("+00:00", "Z"),
    })
    return document


def _enqueue(document_id: str) -> None:
    from knowledge import tasks

    transaction.on_commit(lambda: tasks.document_ingest.delay(document_id))


def document_ingest(*, document_id: str) -> Document | None:
    """Parse, chunk, embed (in batches) and index one document; ``ready`` or ``failed``."""
    document = Document.objects.filter(id=document_id).first()
    if document is None:
        return None  # deleted before its turn came
    Document.objects.filter(id=document.id).update(status=Document.Status.PROCESSING, error="")
    try:
        text = parsing.parse(bytes(document.source), document.mime_type)
        pieces = chunking.chunk_text(text)
        if not pieces:
            raise parsing.ParseError("The document has no text.")
        if len(pieces) > max_document_chunks():
            raise parsing.ParseError(f"The document makes {len(pieces)} chunks; at most {max_document_chunks()}.")
        vectors = embeddings.embed_texts([p.text for p in pieces], batch_size=EMBED_BATCH)
    except parsing.ParseError as exc:
        return _fail(document, str(exc))
    except Exception as exc:  # an ingestion failure is the document's state, not a crash
        logger.exception("Ingesting document %s failed", document.id)
        return _fail(document, f"Ingestion failed: {type(exc).__name__}.")
    with transaction.atomic():
        if not Document.objects.select_for_update().filter(id=document.id).exists():
            return None  # deleted meanwhile
        Chunk.objects.filter(document=document).delete()
        Chunk.objects.bulk_create([
            Chunk(document=document, index=p.index, text=p.text, token_count=p.token_count,
                  embedding=np.asarray(v, dtype=np.float32).tobytes())
            for p, v in zip(pieces, vectors, strict=True)
        ], batch_size=500)
        Document.objects.filter(id=document.id).update(status=Document.Status.READY, chunk_count=len(pieces),
                                                       error="")
    document.refresh_from_db()
    return document


def _fail(document: Document, error: str) -> Document:
    with transaction.atomic():
        Chunk.objects.filter(document=document).delete()
        Document.objects.filter(id=document.id).update(status=Document.Status.FAILED, error=error[:1000],
                                                       chunk_count=0)
    document.refresh_from_db()
    return document


@transaction.atomic
def document_delete(*, document: Document) -> None:
    """Delete a document with its chunks (their vectors and full-text entries go with them)."""
    document.delete()


def document_reindex(*, document: Document) -> Document | None:
    """Ingest a document again, now (the command's path; chunking or the model may have changed)."""
    return document_ingest(document_id=document.id)


def documents_reindex(*, documents: Any = None, progress: Any = None) -> dict[str, int]:
    """Re-ingest ``documents`` (a queryset; default: all, oldest first), calling ``progress(document)``
    after each; counts of ``ready`` and ``failed`` outcomes."""
    found = Document.objects.order_by("created_at").only("id") if documents is None else documents
    outcome = {Document.Status.READY.value: 0, Document.Status.FAILED.value: 0}
    for document in list(found):
        done = document_reindex(document=document)
        if done is not None:
            outcome[done.status] = outcome.get(done.status, 0) + 1
        if progress is not None:
            progress(document)
    return outcome
