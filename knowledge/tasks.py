"""Knowledge's background work (Celery). Thin: each task calls one service; enqueued on commit."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model

from knowledge import documents, memories_services


@shared_task(ignore_result=True)
def memories_extract(*, user_id: int, user_text: str, reply_text: str, model: str = "", provider: str = "") -> int:
    """Extract durable facts from one chat exchange and store the new ones as memories."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return 0
    return len(memories_services.memories_extract(user=user, user_text=user_text, reply_text=reply_text,
                                                  model=model, provider=provider))


@shared_task(ignore_result=True)
def document_ingest(document_id: str) -> None:
    """Parse, chunk, embed and index one uploaded document."""
    documents.document_ingest(document_id=document_id)
