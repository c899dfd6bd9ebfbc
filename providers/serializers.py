"""Provider and model shapes (seed 000's /gemini routes, seed 001's model catalogue)."""

from __future__ import annotations

from rest_framework import serializers

from chatplatform.api import fields
from providers.models import Model, ProviderKind, fallbacks_problem
from providers.params import (
    MAX_STOP_CHARS,
    MAX_STOP_SEQUENCES,
    MAX_TOKENS_LIMIT,
    TEMPERATURE_MAX,
    TOP_P_MAX,
    GenerationParams,
)


class CostSerializer(serializers.Serializer):
    input = serializers.FloatField()
    output = serializers.FloatField()


class ModelOutput(serializers.ModelSerializer):
    """Seed 001's model object, plus limits and the cost unit."""

    available = serializers.SerializerMethodField()
    cost_per_token = serializers.SerializerMethodField()
    cost_unit = serializers.SerializerMethodField()

    class Meta:
        model = Model
        fields = ["id", "name", "provider", "context_length", "max_output_tokens", "description",
                  "capabilities", "available", "public", "cost_per_token", "cost_unit"]
        read_only_fields = fields

    def get_available(self, model: Model) -> bool:
        return model.id in self.context.get("available_ids", set())

    def get_cost_per_token(self, model: Model) -> dict:
        return {"input": float(model.input_cost_per_1k), "output": float(model.output_cost_per_1k)}

    def get_cost_unit(self, model: Model) -> str:
        return "USD per 1K tokens"


class ProviderOutput(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    display_name = serializers.CharField()
    status = serializers.CharField()
    source = serializers.ChoiceField(choices=["environment", "database"])
    base_url = serializers.CharField(allow_blank=True)
    api_key = serializers.CharField(allow_blank=True, help_text="Masked.")
    default_model = serializers.CharField(allow_blank=True)
    priority = serializers.IntegerField()
    timeout = serializers.FloatField()
    max_retries = serializers.IntegerField()
    is_default = serializers.BooleanField()
    circuit = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    features = serializers.ListField(child=serializers.CharField())
    fallbacks = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                      help_text="Fallback chains for this provider's models (model id or `*`).")


class ProviderWriteInput(serializers.Serializer):
    name = serializers.SlugField(max_length=50, required=False)
    kind = serializers.ChoiceField(choices=ProviderKind.choices, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    base_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    api_key = serializers.CharField(max_length=500, required=False, allow_blank=True, write_only=True,
                                    trim_whitespace=True)
    default_model = serializers.CharField(max_length=100, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    is_default = serializers.BooleanField(required=False)
    priority = serializers.IntegerField(min_value=0, max_value=100000, required=False)
    timeout = serializers.FloatField(min_value=1, max_value=600, required=False)
    max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    max_tokens = serializers.IntegerField(min_value=1, max_value=200000, required=False)
    validate_key = serializers.BooleanField(required=False, default=True,
                                            help_text="Make a real call with the key before saving.")
    fallbacks = serializers.JSONField(
        required=False, help_text='Fallback chains: {"gpt-4o": ["claude-sonnet-4.5"], "*": ["gemini-2.5-flash"]} '
                                  '("*": any of this provider\'s models without an entry). {} clears them.')

    def validate_fallbacks(self, value):
        problem = fallbacks_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class ProbeInput(serializers.Serializer):
    message = serializers.CharField(max_length=2000, required=False, default="Hello, are you working?")
    provider = serializers.CharField(max_length=50, required=False)
    model = serializers.CharField(max_length=100, required=False)


class ProbeOutput(serializers.Serializer):
    success = serializers.BooleanField()
    provider = serializers.CharField()
    model = serializers.CharField()
    response = serializers.CharField(allow_blank=True)
    response_time = serializers.FloatField()
    tokens_used = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)


class ProviderHealthOutput(serializers.Serializer):
    status = serializers.CharField()
    response_time = serializers.FloatField()
    model = serializers.CharField(allow_blank=True)
    circuit = serializers.CharField()
    error = serializers.CharField(allow_blank=True, required=False)


class GeminiRegisterInput(serializers.Serializer):
    api_key = serializers.CharField(max_length=500, trim_whitespace=True)
    project_id = serializers.CharField(max_length=200, required=False, allow_blank=True)
    default_model = serializers.CharField(max_length=100, required=False, default="gemini-2.5-flash")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    base_url = serializers.URLField(max_length=500, required=False, allow_blank=True)


class GeminiRegisterOutput(serializers.Serializer):
    message = serializers.CharField()
    registration_id = serializers.CharField()
    status = serializers.CharField()
    default_model = serializers.CharField()
    available_models = serializers.ListField(child=serializers.CharField())
    test_result = serializers.CharField()
    registered_at = serializers.DateTimeField()
    api_key = serializers.CharField(help_text="Masked.")


class GeminiConfigureInput(serializers.Serializer):
    provider = serializers.CharField(max_length=50, default="gemini")
    model = serializers.CharField(max_length=100, required=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    max_tokens = serializers.IntegerField(min_value=1, max_value=200000, required=False)
    is_default = serializers.BooleanField(required=False)


class ProvidersOverviewOutput(serializers.Serializer):
    available_providers = serializers.ListField(child=serializers.CharField())
    default_provider = serializers.CharField()
    provider_details = serializers.DictField()


class ProvidersHealthOutput(serializers.Serializer):
    overall_status = serializers.CharField()
    providers = serializers.DictField(child=ProviderHealthOutput())
    default_provider = serializers.CharField()
    default_provider_healthy = serializers.BooleanField()


class StopField(serializers.JSONField):
    """``stop``: a string, or a list of up to four strings (as OpenAI takes it)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value is None or value == []:
            return None
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_STOP_SEQUENCES or not all(
                isinstance(v, str) and 0 < len(v) <= MAX_STOP_CHARS for v in values):
            raise serializers.ValidationError(
                f"A string or a list of up to {MAX_STOP_SEQUENCES} non-empty strings of at most {MAX_STOP_CHARS} "
                "characters.")
        return tuple(values)


class GenerationParamsInput(fields.SparseInput):
    """The generation parameters every transport accepts, with the bounds every model shares (the
    model's own limits are checked when the turn starts: ``GenerationParams.check_for``). Transports
    subclass it (top-level fields, seeds 001/004 and ``/v1``) or nest it (seed 000's ``model_parameters``)."""

    temperature = fields.NumberField(min_value=0.0, max_value=TEMPERATURE_MAX, required=False, allow_null=True)
    top_p = fields.NumberField(min_value=0.0, max_value=TOP_P_MAX, required=False, allow_null=True)
    max_tokens = fields.IntegerField(min_value=1, max_value=MAX_TOKENS_LIMIT, required=False, allow_null=True,
                                     help_text="Also bounded by the model's output limit (GET /api/v1/models).")
    stop = StopField(required=False, allow_null=True, help_text="A string or up to 4 strings where generation stops.")

    @staticmethod
    def params(data: dict | None, **switches) -> GenerationParams:
        """The :class:`GenerationParams` of validated data (``switches``: thinking, web_grounding, ...)."""
        data = data or {}
        return GenerationParams(temperature=data.get("temperature"), top_p=data.get("top_p"),
                                max_tokens=data.get("max_tokens"), stop=data.get("stop"), **switches)
