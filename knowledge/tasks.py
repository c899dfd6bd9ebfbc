"""Knowledge's background work (Celery). Thin: each task calls one service."""

from __future__ import annotations

from celery import shared_task

from knowledge import documents


@shared_task(ignore_result=True)
def document_ingest(document_id: str) -> None:
    """Parse, chunk, embed and index one uploaded document."""
    documents.document_ingest(document_id=document_id)
