"""Provider configuration, the model catalogue, and per-call usage records."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from chatplatform.api.ids import PublicIdField
from providers.crypto import decrypt, encrypt, mask


def fallbacks_problem(value) -> str:
    """Why ``value`` is not a valid ``ProviderConfig.fallbacks`` mapping ("" when it is)."""
    if not isinstance(value, dict):
        return 'A JSON object: {"model id or *": ["fallback model id", ...]}.'
    for key, chain in value.items():
        if not isinstance(chain, list) or not chain or not all(isinstance(m, str) and m for m in chain):
            return f"{key!r}: a non-empty list of model ids."
        unknown = [m for m in chain if not Model.objects.filter(id=m).exists()]
        if unknown:
            return f"{key!r}: unknown model ids {unknown} (see the model catalogue)."
    return ""


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI (or OpenAI-compatible)"
    ANTHROPIC = "anthropic", "Anthropic"
    GEMINI = "gemini", "Google Gemini"
    LOCAL = "local", "Local (llama.cpp)"


class ProviderConfig(models.Model):
    """A configured provider. Rows override the environment's provider of the same name.

    A row with a ``team`` is that team's own: it is not part of the operator's configuration (no
    default, no fallback chain, invisible to the provider routes), and serves only the team's
    members' requests that name it (``providers.selectors.team_provider_settings``). Names are
    unique across all rows, so a name always means one provider."""

    id = PublicIdField(prefix="prov")
    name = models.SlugField(max_length=50, unique=True)
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="provider_configs")
    kind = models.CharField(max_length=20, choices=ProviderKind.choices)
    description = models.CharField(max_length=200, blank=True, default="")
    base_url = models.URLField(max_length=500, blank=True, default="")
    api_key_encrypted = models.TextField(blank=True, default="", editable=False)
    api_key_last4 = models.CharField(max_length=8, blank=True, default="", editable=False)
    default_model = models.CharField(max_length=100, blank=True, default="")
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    priority = models.PositiveIntegerField(default=100, help_text="Lower runs first in the fallback chain.")
    timeout = models.FloatField(default=60.0)
    max_retries = models.PositiveSmallIntegerField(default=2)
    # Defaults applied to calls through this provider (temperature, max_tokens, project_id, ...).
    settings = models.JSONField(default=dict, blank=True)
    fallbacks = models.JSONField(
        default=dict, blank=True,
        help_text='Fallback chains for models this provider serves: {"gpt-4o": ["claude-sonnet-4.5"], '
                  '"*": ["gemini-2.5-flash"]} ("*": any of its models without an entry of its own). '
                  "A request naming a model falls back only along its chain.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        problem = fallbacks_problem(self.fallbacks)
        if problem:
            raise ValidationError({"fallbacks": problem})

    @property
    def api_key(self) -> str:
        return decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    @api_key.setter
    def api_key(self, value: str) -> None:
        value = (value or "").strip()
        self.api_key_encrypted = encrypt(value) if value else ""
        self.api_key_last4 = value[-4:] if value else ""

    @property
    def masked_key(self) -> str:
        return mask(self.api_key_last4, kind=self.kind) if self.api_key_encrypted else ""


class Model(models.Model):
    """A model in the catalogue. ``id`` is what clients send; ``upstream_name`` what the
    provider is sent (often the same)."""

    id = models.CharField(primary_key=True, max_length=100)
    provider = models.CharField(max_length=20, choices=ProviderKind.choices)
    upstream_name = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True, default="")
    context_length = models.PositiveIntegerField(default=8192)
    max_output_tokens = models.PositiveIntegerField(default=4096)
    capabilities = models.JSONField(default=list, blank=True)
    # USD per 1,000 tokens.
    input_cost_per_1k = models.DecimalField(max_digits=12, decimal_places=8, default=Decimal("0"))
    output_cost_per_1k = models.DecimalField(max_digits=12, decimal_places=8, default=Decimal("0"))
    max_temperature = models.FloatField(default=2.0)
    enabled = models.BooleanField(default=True)
    public = models.BooleanField(default=False, help_text="Served to anonymous callers (seed 001's open API).")
    sort_order = models.PositiveIntegerField(default=100)
    created_at = models.DateTimeField(default=timezone.now, help_text="When the model joined the catalogue.")

    class Meta:
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.id

    def has(self, capability: str) -> bool:
        return capability in (self.capabilities or [])

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (
            self.input_cost_per_1k * Decimal(prompt_tokens) + self.output_cost_per_1k * Decimal(completion_tokens)
        ) / Decimal(1000)


class UsageRecord(models.Model):
    """One provider call: tokens, cost, latency, outcome. Streamed calls included."""

    class Status(models.TextChoices):
        SUCCESS = "success"
        ERROR = "error"
        CANCELLED = "cancelled"

    id = PublicIdField(prefix="use")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="usage_records")
    api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="usage_records")
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=100)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    latency_ms = models.FloatField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUCCESS)
    error_code = models.CharField(max_length=40, blank=True, default="")
    estimated = models.BooleanField(default=False)
    streamed = models.BooleanField(default=False)
    request_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"]), models.Index(fields=["model", "-created_at"])]


class ResponseCacheEntry(models.Model):
    """One cached reply: its value lives in the Django cache (Redis in production) under ``key``;
    this row holds what lookups and statistics need across workers and restarts: the owner scope,
    the context key (model, parameters, system prompt and prior messages), and the MiniLM vector
    of the last user message (float32 bytes) for the semantic cache."""

    key = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=80, db_index=True)  # "user:<id>", "key:<id>", "ip:<addr>"
    shared = models.BooleanField(default=False)  # warmed entries answer every caller
    context_key = models.CharField(max_length=64, db_index=True)
    model = models.CharField(max_length=100, blank=True)
    prompt = models.TextField(blank=True)  # the last user message (clear by pattern)
    vector = models.BinaryField(null=True, blank=True)
    size_bytes = models.PositiveIntegerField(default=0)
    hits = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.model}: {self.prompt[:40]}"
