"""Support desk (seed 003: FAQs, customer logs) and chatbots with their own API keys (seed 002)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from chatplatform.api.ids import PublicIdField

CHATBOT_KEY_PREFIX = "cbk"


class FAQ(models.Model):
    """A published question and answer. ``embedding`` is the MiniLM vector of the question and
    answer, kept up to date by ``support.services`` (never edited by hand)."""

    id = PublicIdField(prefix="faq")
    question = models.CharField(max_length=500)
    answer = models.TextField()
    category = models.CharField(max_length=50, default="general", db_index=True)
    view_count = models.PositiveIntegerField(default=0)
    published = models.BooleanField(default=True)
    order = models.IntegerField(default=0, help_text="Lower comes first.")
    embedding = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "created_at"]
        indexes = [models.Index(fields=["published", "category", "order"])]
        verbose_name = "FAQ"

    def __str__(self) -> str:
        return self.question


class CustomerLog(models.Model):
    """A support ticket. ``updated_at`` stays null until the first update (as seed 003 shows)."""

    class LogType(models.TextChoices):
        SUPPORT = "support"
        INQUIRY = "inquiry"
        COMPLAINT = "complaint"
        FEEDBACK = "feedback"
        BUG = "bug"
        OTHER = "other"

    class Status(models.TextChoices):
        OPEN = "open"
        IN_PROGRESS = "in_progress"
        RESOLVED = "resolved"
        CLOSED = "closed"

    class Priority(models.TextChoices):
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"
        URGENT = "urgent"

    id = PublicIdField(prefix="log")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer_logs")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    log_type = models.CharField(max_length=20, choices=LogType.choices, default=LogType.INQUIRY)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    category = models.CharField(max_length=50, default="general")
    conversation_id = models.CharField(max_length=40, blank=True, default="",
                                       help_text="The support chat conversation that opened it, if any.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["status", "-created_at"]),
            models.Index(fields=["conversation_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"


class Chatbot(models.Model):
    """A user's chatbot: its own system prompt, model and (optionally) its own OpenAI-compatible
    endpoint, reached with the chatbot's API keys. With a ``team``, the team's members see it and
    the team's admins and owners manage it too (the owner keeps every right)."""

    id = PublicIdField(prefix="bot")
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chatbots")
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="chatbots",
                             help_text="Shared with this team: members see it, its admins manage it.")
    llm_endpoint_url = models.CharField(max_length=2048, blank=True, default="",
                                        help_text="OpenAI-compatible base URL; checked against the outbound rules.")
    model = models.CharField(max_length=100, blank=True, default="")
    system_prompt = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["owner", "created_at"])]

    def __str__(self) -> str:
        return self.name


class ChatbotAPIKey(models.Model):
    """A chatbot's key, ``cbk_<prefix>_<secret>``. Only its SHA-256 is stored; shown once."""

    id = PublicIdField(prefix="cbk")
    chatbot = models.ForeignKey(Chatbot, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    revoked = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "chatbot API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return f"{CHATBOT_KEY_PREFIX}_{self.prefix}_{'*' * 8}"

    @property
    def is_active(self) -> bool:
        return not self.revoked

    def turn_profile(self):
        """What this key imposes on chat turns: its chatbot's prompt, model and endpoint (see
        ``providers.profiles``). Blocking (it re-checks the endpoint's address)."""
        from support.selectors import chatbot_turn_profile

        return chatbot_turn_profile(self)
