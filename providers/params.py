"""The one generation-parameter type: what a caller may ask of a model besides the conversation.

Transports validate it with one input serializer (:class:`providers.serializers.GenerationParamsInput`,
which carries the generic bounds below); the turn service fills what the request left unset (the
user's preferences) and checks it against the catalogue model (:meth:`GenerationParams.check_for`:
the model's own temperature range and output limit); adapters read it from ``ChatRequest.params``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

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
class GenerationParams:
    """Sampling and feature switches for one call. ``None``: the provider's (or model's) default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    thinking: bool = False
    thinking_budget: int | None = None
    web_grounding: bool = False

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

    def fitted_to(self, model: Model) -> GenerationParams:
        """Values that came from defaults (preferences, a provider's settings) brought within the
        model's limits rather than refused: a preference is not a request."""
        temperature = None if self.temperature is None else min(max(0.0, float(self.temperature)),
                                                                model.max_temperature)
        max_tokens = None if self.max_tokens is None else min(self.max_tokens, model.max_output_tokens)
        return replace(self, temperature=temperature, max_tokens=max_tokens)
