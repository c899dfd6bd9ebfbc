"""Support's background work (Celery). Thin: each task calls one service.

Enqueued with ``transaction.on_commit`` by ``support.services`` (and the admin action); eager,
in-process, in the embedded mode."""

from __future__ import annotations

from celery import shared_task

from support import services


@shared_task(ignore_result=True)
def faq_embed(faq_id: str) -> None:
    """Compute one FAQ's embedding (after it was created or its text changed)."""
    services.faq_embed_now(faq_id=faq_id)


@shared_task(ignore_result=True)
def faqs_reindex(*, only_missing: bool = False, faq_ids: list[str] | None = None) -> int:
    """Recompute the embeddings of every FAQ (or of those missing one, or of the given ids)."""
    return services.faq_reindex(only_missing=only_missing, faq_ids=faq_ids)
