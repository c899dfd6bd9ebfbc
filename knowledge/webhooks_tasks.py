"""Webhook delivery (Celery). Thin: one attempt per run through the service; a failed attempt
is retried by Celery with the service's capped exponential countdown.

Enqueued on commit by :func:`knowledge.webhooks.emit`; registered by ``KnowledgeConfig.ready``
(autodiscovery only imports ``tasks`` modules)."""

from __future__ import annotations

from celery import shared_task

from knowledge import webhooks


@shared_task(bind=True, ignore_result=True, max_retries=None, name="knowledge.webhook_deliver")
def webhook_deliver(self, delivery_id: str) -> object:
    """Send one delivery; on failure retry after the backoff the service chose. ``throw=False``:
    the retry is scheduled without raising, so eager mode (which propagates task exceptions)
    runs it in-process too, at once."""
    countdown = webhooks.delivery_attempt(delivery_id=delivery_id)
    if countdown is not None:
        return self.retry(countdown=countdown, throw=False)
    return None
