"""Knowledge models. Webhooks live in :mod:`knowledge.webhook_models`."""

from knowledge.webhook_models import Webhook, WebhookDelivery

__all__ = ["Webhook", "WebhookDelivery"]
