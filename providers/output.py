"""What a reply is made of besides text: tool calls assembled from their streamed pieces, and JSON
output checked against the requested schema (where the provider cannot enforce it, and as a
guarantee where it says it does)."""

from __future__ import annotations

import json

import jsonschema

from chatplatform.api.ids import new_id
from providers.adapters.base import ToolCall, ToolCallDelta
from providers.errors import ProviderError
from providers.params import GenerationParams


class ToolCallAssembler:
    """Collects :class:`ToolCallDelta` pieces by index into whole :class:`ToolCall` objects."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, delta: ToolCallDelta) -> None:
        call = self._calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
        if delta.id:
            call["id"] = delta.id
        if delta.name:
            call["name"] = delta.name
        call["arguments"] += delta.arguments

    def complete(self) -> list[ToolCall]:
        return [ToolCall(id=c["id"] or new_id("call"), name=c["name"], arguments=c["arguments"] or "{}")
                for _, c in sorted(self._calls.items())]


class InvalidOutput(ProviderError):
    """The model's reply does not conform to the requested response format."""

    status_code = 502
    code = "INVALID_OUTPUT"


def check_output(text: str, params: GenerationParams, *, provider: str = "", tool_calls: bool = False) -> None:
    """Raise :class:`InvalidOutput` when a JSON response format was asked for and ``text`` is not
    a JSON object (``json_object``) or not valid against the schema (``json_schema``). A reply that
    calls tools instead is not checked."""
    wanted = params.response_format
    if wanted is None or not wanted.is_json or tool_calls:
        return
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidOutput("The model's reply is not valid JSON (response_format asked for JSON).",
                            provider=provider, retryable=False) from None
    if wanted.type == "json_object" and not isinstance(value, dict):
        raise InvalidOutput("The model's reply is JSON but not an object (response_format json_object).",
                            provider=provider, retryable=False)
    if wanted.type == "json_schema" and wanted.schema:
        try:
            jsonschema.validate(value, wanted.schema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise InvalidOutput(f"The model's reply does not match the response schema at {where}: "
                                f"{exc.message[:200]}", provider=provider, retryable=False) from None
        except jsonschema.SchemaError:
            return  # the schema was checked when the request came in; nothing more to say here
