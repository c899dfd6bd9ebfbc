"""Signed webhooks: the writes and reads behind ``/api/v1/webhooks``, :func:`emit` (what other
apps call when an event happens) and one delivery attempt (what the Celery task runs).

A delivery is a POST of ``{"event", "timestamp", "data"}`` (seed 004's payload) signed with the
webhook's secret: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of "<X-Webhook-Timestamp>.<body>">``.
Deliveries are rows created in the caller's transaction and sent by a Celery task enqueued on
commit; redirects are not followed; failures are retried with capped exponential backoff; a
webhook is disabled after ``WEBHOOK_DISABLE_AFTER_FAILURES`` consecutive failed attempts. The
outbound-URL guard checks the URL when it is saved and again right before every attempt.

Knowledge sits below chats: callers pass plain data, nothing here imports ``chats``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from chatplatform.api.exceptions import AppError
from chatplatform.api.memo import SharedVersionMemo
from chatplatform.api.outbound import OutboundURLRefused, check_outbound_url, recheck_outbound_url
from knowledge.webhook_models import Webhook, WebhookDelivery

EVENTS = ("chat.created", "chat.deleted", "message.created", "memory.created", "document.uploaded")
SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
USER_AGENT = "chatplatform-webhooks/1"
MAX_ERROR_LENGTH = 500


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds, as text)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


# --- webhooks ------------------------------------------------------------------------------------


def webhook_list(*, user) -> QuerySet[Webhook]:
    return Webhook.objects.filter(owner=user)


def webhook_get(*, user, webhook_id: str) -> Webhook:
    """The caller's webhook; another user's (or none) is a 404."""
    webhook = Webhook.objects.filter(owner=user, id=webhook_id).first()
    if webhook is None:
        raise AppError("Webhook not found.", status_code=404)
    return webhook


def webhook_deliveries(*, webhook: Webhook) -> QuerySet[WebhookDelivery]:
    return webhook.deliveries.all()


@transaction.atomic
def webhook_create(*, user, url: str, events: list[str], is_active: bool = True) -> tuple[Webhook, str]:
    """Create a webhook; returns it and its secret (shown to the caller this once only)."""
    url = check_outbound_url(url, field="url")
    if Webhook.objects.filter(owner=user).count() >= settings.WEBHOOKS_PER_USER:
        raise AppError(f"At most {settings.WEBHOOKS_PER_USER} webhooks per user.", status_code=409,
                       code="WEBHOOK_LIMIT_REACHED")
    secret = "whsec_" + secrets.token_urlsafe(32)
    webhook = Webhook(owner=user, url=url, events=sorted(set(events)), is_active=is_active)
    webhook.secret = secret
    webhook.save()
    return webhook, secret


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


# --- events --------------------------------------------------------------------------------------


# Every chat message emits an event: a user's active subscriptions are remembered per worker instead
# of queried per message; any save or delete of a webhook (or the auto-disable below) drops them.
_subscriptions = SharedVersionMemo("webhooks")


def subscriptions(owner_id: Any) -> list[tuple[Any, list[str]]]:
    """``(webhook id, events)`` of the owner's active webhooks."""
    return _subscriptions.remembered(f"owner:{owner_id}", lambda: [
        (hook_id, list(events or [])) for hook_id, events in
        Webhook.objects.filter(owner_id=owner_id, is_active=True).values_list("id", "events")])


def watch_subscriptions() -> None:
    _subscriptions.watch(Webhook)


def emit(user, event: str, data: dict[str, Any]) -> int:
    """Record ``event`` for each of ``user``'s active webhooks subscribed to it and send them
    after the current transaction commits (nothing is sent if it rolls back). Returns how many
    deliveries were queued. ``user`` is a user or a user's primary key; ``data`` must be
    JSON-serialisable plain data."""
    if event not in EVENTS:
        raise ValueError(f"Unknown webhook event {event!r}")
    owner_id = getattr(user, "pk", user)
    if not owner_id:
        return 0  # anonymous callers have no webhooks
    hooks = [hook_id for hook_id, events in subscriptions(owner_id) if event in events]
    if not hooks:
        return 0
    payload = {"event": event, "timestamp": _iso(timezone.now()), "data": data}
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook_id=hook_id, event=event, payload=payload) for hook_id in hooks])
    from knowledge.webhooks_tasks import webhook_deliver

    for delivery in deliveries:
        transaction.on_commit(lambda delivery_id=delivery.id: webhook_deliver.delay(delivery_id), robust=True)
    return len(deliveries)


def emit_knowledge_events(*, user, memory: dict[str, Any] | None = None,
                          document: dict[str, Any] | None = None) -> None:
    """The memory and document events, for the memory and document services to call once a
    memory is created (``memory={"id", "content", "memory_type", ...}``) or a document is
    uploaded (``document={"id", "title", "mime_type", "status", ...}``)."""
    if memory is not None:
        emit(user, "memory.created", memory)
    if document is not None:
        emit(user, "document.uploaded", document)


# --- delivery ------------------------------------------------------------------------------------


def retry_countdown(attempt: int) -> int:
    """Seconds before retry number ``attempt`` (1-based): base * 2**(attempt-1), capped."""
    return min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1), settings.WEBHOOK_RETRY_MAX_SECONDS)


def _post(webhook: Webhook, delivery: WebhookDelivery) -> tuple[int | None, str]:
    """One signed POST: (response status or None, error text or "")."""
    try:
        url = recheck_outbound_url(webhook.url, field="url")
    except OutboundURLRefused as exc:
        return None, f"refused: {exc.message}"
    secret = webhook.secret
    if not secret:  # the encryption key changed: never sign with an empty key
        return None, "refused: the webhook's secret cannot be decrypted (SECRET_KEY or its encryption key changed)"
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": webhook.id,
        "X-Webhook-Delivery": delivery.id,
        "X-Webhook-Event": delivery.event,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    try:
        with httpx.Client(timeout=settings.WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    if response.is_redirect:
        return response.status_code, "redirect not followed"
    return response.status_code, f"HTTP {response.status_code}"


def delivery_attempt(*, delivery_id: str) -> int | None:
    """Make one attempt at a delivery and record it. Returns the seconds to wait before the next
    attempt, or None when the delivery is finished (delivered, failed for good, or moot)."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(id=delivery_id).first()
    if delivery is None or delivery.status in (WebhookDelivery.Status.SUCCESS, WebhookDelivery.Status.FAILED):
        return None
    webhook = delivery.webhook
    if not webhook.is_active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.FAILED, error="webhook disabled", next_retry_at=None)
        return None
    status_code, error = _post(webhook, delivery)
    now = timezone.now()
    attempts = delivery.attempts + 1
    if not error:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.SUCCESS, attempts=attempts, response_status=status_code, error="",
            next_retry_at=None, delivered_at=now, updated_at=now)
        Webhook.objects.filter(pk=webhook.pk).update(failure_count=0)
        return None
    with transaction.atomic():
        Webhook.objects.filter(pk=webhook.pk).update(failure_count=F("failure_count") + 1)
        failures = Webhook.objects.values_list("failure_count", flat=True).get(pk=webhook.pk)
        disabled = failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES
        if disabled:
            Webhook.objects.filter(pk=webhook.pk).update(
                is_active=False, disabled_reason=f"Disabled after {failures} consecutive failed deliveries.")
            _subscriptions.invalidate()  # a bulk update sends no save signal
        final = disabled or error.startswith("refused:") or attempts >= settings.WEBHOOK_MAX_ATTEMPTS
        countdown = None if final else retry_countdown(attempts)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.FAILED if final else WebhookDelivery.Status.RETRYING,
            attempts=attempts, response_status=status_code, error=error[:MAX_ERROR_LENGTH],
            next_retry_at=None if countdown is None else now + timedelta(seconds=countdown), updated_at=now)
    return countdown
