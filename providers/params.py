"""The one generation-parameter type: what a caller may ask of a model besides the conversation.

Transports validate it with one input serializer (:class:`providers.serializers.GenerationParamsInput`,
which carries the generic bounds below); the turn service fills what the request left unset (the
user's preferences) and checks it against the catalogue model (:meth:`GenerationParams.check_for`:
the model's own temperature range and output limit); adapters read it from ``ChatRequest.params``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from chatplatform.api.exceptions import AppError

if TYPE_CHECKING:
    from providers.models import Model

# Generic bounds, for every model; each model's own limits are checked by ``check_for``.
TEMPERATURE_MAX = 2.0
TOP_P_MAX = 1.0
MAX_TOKENS_LIMIT = 1_000_000
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 100
THINKING_BUDGET_LIMIT = 200_000


@dataclass(frozen=True)
class Tool:
    """A function the model may call: ``parameters`` is its arguments' JSON Schema (an object)."""

    name: str
    description: str = ""
    parameters: dict = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = False


@dataclass(frozen=True)
class ToolChoice:
    """``auto`` (the model decides), ``none`` (no call), ``required`` (some call), or ``function``
    (the call of ``name``)."""

    mode: Literal["auto", "none", "required", "function"] = "auto"
    name: str | None = None


@dataclass(frozen=True)
class ResponseFormat:
    """``json_object``: any JSON object; ``json_schema``: JSON valid against ``schema``."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict | None = None
    name: str = "response"
    strict: bool = False

    @property
    def is_json(self) -> bool:
        return self.type in ("json_object", "json_schema")


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and feature switches for one call. ``None``: the provider's (or model's) default."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None  # Anthropic, Gemini and the local model take it; OpenAI's API has none
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    thinking: bool = False
    thinking_budget: int | None = None
    web_grounding: bool = False
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    def required_capabilities(self) -> dict[str, str]:
        """{request field: the catalogue capability it needs}."""
        needs: dict[str, str] = {}
        if self.tools and not (self.tool_choice and self.tool_choice.mode == "none"):
            needs["tools"] = "tools"
        if self.response_format is not None and self.response_format.type == "json_schema":
            needs["response_format"] = "json_schema"
        elif self.response_format is not None and self.response_format.type == "json_object":
            needs["response_format"] = "json_object"
        if self.seed is not None:
            needs["seed"] = "seed"
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name) is not None:
                needs[name] = "penalties"
        return needs

    def with_defaults(self, *, temperature: float | None = None, max_tokens: int | None = None) -> GenerationParams:
        """These values where the request set none (e.g. the user's preferences)."""
        return replace(self, temperature=self.temperature if self.temperature is not None else temperature,
                       max_tokens=self.max_tokens if self.max_tokens is not None else max_tokens)

    def check_for(self, model: Model | None) -> None:
        """Refuse what ``model`` cannot take (422 naming each field)."""
        if model is None:
            return
        errors: dict[str, list[str]] = {}
        if self.temperature is not None and not 0 <= self.temperature <= model.max_temperature:
            errors["temperature"] = [f"Must be between 0 and {model.max_temperature:g} for {model.id}."]
        if self.max_tokens is not None and self.max_tokens > model.max_output_tokens:
            errors["max_tokens"] = [f"At most {model.max_output_tokens} for {model.id}."]
        if errors:
            raise AppError("Invalid parameters for this model.", status_code=422, details=errors)
        missing = {name: capability for name, capability in self.required_capabilities().items()
                   if not model.has(capability)}
        if missing:
            raise unsupported(model, missing)

    def supported_by(self, model: Model) -> bool:
        """Whether ``model`` can take these parameters (a fallback route that cannot is skipped)."""
        return all(model.has(c) for c in self.required_capabilities().values())

    def fitted_to(self, model: Model) -> GenerationParams:
        """Values that came from defaults (preferences, a provider's settings) brought within the
        model's limits rather than refused: a preference is not a request."""
        temperature = None if self.temperature is None else min(max(0.0, float(self.temperature)),
                                                                model.max_temperature)
        max_tokens = None if self.max_tokens is None else min(self.max_tokens, model.max_output_tokens)
        return replace(self, temperature=temperature, max_tokens=max_tokens)


def unsupported(model: Model, missing: dict[str, str]) -> AppError:
    """400 naming each request field the model lacks the capability for."""
    return AppError(f"{model.id} does not support " + ", ".join(sorted(set(missing.values()))) + ".",
                    status_code=400, code="UNSUPPORTED_CAPABILITY",
                    details={name: [f"{model.id} has no '{capability}' capability (GET /api/v1/models lists "
                                    "each model's capabilities)."] for name, capability in missing.items()})
