"""The request of OpenAI's Responses API (``POST /v1/responses``) and how it becomes a turn.

``input`` is a string or a list of items: messages (``input_text``/``input_image``/``output_text``
parts), ``function_call`` and ``function_call_output`` items, and ``reasoning`` items (accepted and
not sent on: summaries are not model input, and another provider could not read them). Every
other parameter is honoured or refused with a 400 naming it; the README has the table.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chatplatform.api.exceptions import AppError
from chats.inputs import MAX_HISTORY_ITEMS
from chats.openai_inputs import (
    MAX_TOOLS,
    RESPONSE_FORMAT_TYPES,
    TOOL_CHOICE_SCHEMA,
    TOOL_NAME,
    JSONSchemaFormatInput,
    ToolFunctionInput,
    _json_object_text,
    content_of,
)
from providers.adapters.base import ChatMessage, ToolCall
from providers.params import MAX_TOKENS_LIMIT, ResponseFormat, Tool, ToolChoice
from providers.serializers import GenerationParamsInput

REASONING_SUMMARY = ["auto", "concise", "detailed"]
MESSAGE_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
MAX_OUTPUT_CHARS = 500_000

# Parameters refused (400 naming them) unless they ask for nothing we would have to ignore.
REFUSED_UNLESS_UNSET = {
    "background": (None, False), "conversation": (None,), "include": (None, []), "max_tool_calls": (None,),
    "prompt": (None,), "prompt_cache_key": (None,), "prompt_cache_retention": (None,), "top_logprobs": (None, 0),
    "truncation": (None, "auto"), "context_management": (None, []),
}


def _refuse(name: str, message: str) -> AppError:
    return AppError(message, status_code=400, code="UNSUPPORTED_PARAMETER", details={name: [message]})


class ResponsesToolInput(ToolFunctionInput):
    type = serializers.CharField()

    def validate_type(self, value: str) -> str:
        if value != "function":
            raise serializers.ValidationError(f"Only function tools are supported here, not {value!r}.")
        return value


@extend_schema_field(TOOL_CHOICE_SCHEMA)
class ResponsesToolChoiceField(serializers.Field):
    """``"auto"``, ``"none"``, ``"required"`` or ``{"type": "function", "name": ...}``."""

    def to_internal_value(self, data: Any) -> ToolChoice:
        if data in ("auto", "none", "required"):
            return ToolChoice(mode=data)
        if isinstance(data, dict) and data.get("type") == "function" and isinstance(data.get("name"), str):
            return ToolChoice(mode="function", name=data["name"])
        raise serializers.ValidationError('"auto", "none", "required" or {"type": "function", "name": ...}.')

    def to_representation(self, value: ToolChoice) -> Any:
        return value.mode if value.mode != "function" else {"type": "function", "name": value.name}


class TextFormatInput(JSONSchemaFormatInput):
    type = serializers.ChoiceField(choices=RESPONSE_FORMAT_TYPES)
    name = serializers.RegexField(TOOL_NAME, required=False, default="response")
    schema = serializers.JSONField(required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs["type"] == "json_schema" and "schema" not in attrs:
            raise serializers.ValidationError({"schema": ["Required with type json_schema."]})
        return attrs


class TextInput(serializers.Serializer):
    format = TextFormatInput(required=False)
    verbosity = serializers.ChoiceField(choices=["medium"], required=False, allow_null=True,
                                        help_text="Only the default.")


class ReasoningInput(serializers.Serializer):
    effort = serializers.ChoiceField(choices=["none", "minimal", "low", "medium", "high", "xhigh"], required=False,
                                     allow_null=True)
    summary = serializers.ChoiceField(choices=REASONING_SUMMARY, required=False, allow_null=True)
    generate_summary = serializers.ChoiceField(choices=REASONING_SUMMARY, required=False, allow_null=True)


class ResponsesInput(GenerationParamsInput):
    max_tokens = None  # not the Responses API's names: max_output_tokens; no stop sequences
    stop = None
    model = serializers.CharField(max_length=100, required=False, allow_blank=True)
    input = serializers.JSONField()
    instructions = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=MAX_OUTPUT_CHARS,
                                         trim_whitespace=False)
    previous_response_id = serializers.CharField(required=False, allow_null=True, max_length=80)
    store = serializers.BooleanField(required=False, allow_null=True, default=True)
    stream = serializers.BooleanField(required=False, allow_null=True, default=False)
    stream_options = serializers.DictField(required=False, allow_null=True)
    tools = ResponsesToolInput(many=True, required=False, allow_null=True, max_length=MAX_TOOLS)
    tool_choice = ResponsesToolChoiceField(required=False, allow_null=True)
    parallel_tool_calls = serializers.BooleanField(required=False, allow_null=True)
    text = TextInput(required=False, allow_null=True)
    reasoning = ReasoningInput(required=False, allow_null=True)
    max_output_tokens = serializers.IntegerField(min_value=1, max_value=MAX_TOKENS_LIMIT, required=False,
                                                 allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField(max_length=512, allow_blank=True), required=False,
                                     allow_null=True, help_text="Up to 16 keys (64 characters) of strings.")
    user = serializers.CharField(required=False, allow_blank=True, max_length=256)
    safety_identifier = serializers.CharField(required=False, allow_blank=True, max_length=256)
    service_tier = serializers.ChoiceField(choices=["auto", "default"], required=False, allow_null=True)
    background = serializers.JSONField(required=False, allow_null=True)
    conversation = serializers.JSONField(required=False, allow_null=True)
    include = serializers.JSONField(required=False, allow_null=True)
    max_tool_calls = serializers.JSONField(required=False, allow_null=True)
    prompt = serializers.JSONField(required=False, allow_null=True)
    prompt_cache_key = serializers.JSONField(required=False, allow_null=True)
    prompt_cache_retention = serializers.JSONField(required=False, allow_null=True)
    top_logprobs = serializers.JSONField(required=False, allow_null=True)
    truncation = serializers.JSONField(required=False, allow_null=True)
    context_management = serializers.JSONField(required=False, allow_null=True)

    def validate_metadata(self, value: dict | None) -> dict | None:
        if value and (len(value) > 16 or any(len(key) > 64 for key in value)):
            raise serializers.ValidationError("At most 16 keys of at most 64 characters.")
        return value

    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise _refuse(unknown[0], f"Unsupported parameter: '{unknown[0]}'.")
        for name, allowed in REFUSED_UNLESS_UNSET.items():
            if attrs.get(name) not in allowed:
                raise _refuse(name, f"Unsupported parameter: '{name}' (see the README's Responses API table).")
        for option in attrs.get("stream_options") or {}:
            if option != "include_obfuscation":
                raise _refuse("stream_options", f"Unsupported stream option '{option}'.")
        names = [t["name"] for t in attrs.get("tools") or []]
        if len(set(names)) != len(names):
            raise serializers.ValidationError({"tools": ["Tool names must be unique."]})
        choice = attrs.get("tool_choice")
        if choice is not None and choice.mode == "function" and choice.name not in names:
            raise serializers.ValidationError({"tool_choice": [f"No tool named {choice.name!r}."]})
        if choice is not None and choice.mode == "required" and not names:
            raise serializers.ValidationError({"tool_choice": ["Needs tools."]})
        attrs["items"] = input_messages(attrs["input"])
        if not attrs["items"] and not attrs.get("previous_response_id"):
            raise serializers.ValidationError({"input": ["Give at least one input item."]})
        return super().validate(attrs)


def params_of(data: dict):
    """The :class:`GenerationParams` of validated data."""
    fmt = (data.get("text") or {}).get("format") or {"type": "text"}
    effort = (data.get("reasoning") or {}).get("effort")
    return GenerationParamsInput.params(
        {**data, "max_tokens": data.get("max_output_tokens")},
        thinking=bool(effort and effort not in ("none", "minimal")),
        tools=tuple(Tool(name=t["name"], description=t.get("description") or "", parameters=t["parameters"],
                         strict=bool(t.get("strict"))) for t in data.get("tools") or []),
        tool_choice=data.get("tool_choice"), parallel_tool_calls=data.get("parallel_tool_calls"),
        response_format=None if fmt["type"] == "text" else ResponseFormat(
            type=fmt["type"], schema=fmt.get("schema"), name=fmt.get("name") or "response",
            strict=bool(fmt.get("strict"))))


# --- input items -------------------------------------------------------------------------------


def input_messages(value: Any) -> list[ChatMessage]:
    """``input`` as chat messages: consecutive ``function_call`` items become one assistant turn."""
    if isinstance(value, str):
        if not value.strip():
            raise serializers.ValidationError({"input": ["May not be blank."]})
        return [ChatMessage("user", value)]
    if not isinstance(value, list):
        raise serializers.ValidationError({"input": ["A string or a list of input items."]})
    if len(value) > MAX_HISTORY_ITEMS:
        raise serializers.ValidationError({"input": [f"At most {MAX_HISTORY_ITEMS} items."]})
    messages: list[ChatMessage] = []
    for index, item in enumerate(value):
        try:
            message = _item(item)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({f"input[{index}]": exc.detail}) from None
        if message is None:
            continue
        if message.role == "assistant" and message.tool_calls and messages and messages[-1].role == "assistant":
            last = messages.pop()  # a call after text or another call: the same assistant turn
            message = ChatMessage("assistant", last.content, tool_calls=(*last.tool_calls, *message.tool_calls))
        messages.append(message)
    return messages


def _item(item: Any) -> ChatMessage | None:
    if not isinstance(item, dict):
        raise serializers.ValidationError("An input item is an object.")
    kind = item.get("type") or "message"
    if kind == "message":
        role = MESSAGE_ROLES.get(item.get("role"))
        if role is None:
            raise serializers.ValidationError({"role": ["user, assistant, system or developer."]})
        text, images = content_of(item.get("content"), role)
        return ChatMessage(role, text, images=images)
    if kind == "function_call":
        call_id, name = item.get("call_id"), item.get("name")
        if not isinstance(call_id, str) or not call_id or len(call_id) > 100:
            raise serializers.ValidationError({"call_id": ["Required."]})
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise serializers.ValidationError({"name": ["Letters, digits, '_' and '-', 1-64."]})
        arguments = _json_object_text(item.get("arguments", "{}"), "arguments")
        return ChatMessage("assistant", "", tool_calls=(ToolCall(id=call_id, name=name, arguments=arguments),))
    if kind == "function_call_output":
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise serializers.ValidationError({"call_id": ["Required."]})
        output = item.get("output")
        text = output if isinstance(output, str) else content_of(output, "tool")[0] if isinstance(output, list) \
            else None
        if text is None or len(text) > MAX_OUTPUT_CHARS:
            raise serializers.ValidationError({"output": ["A string (or text parts) of at most "
                                                          f"{MAX_OUTPUT_CHARS} characters."]})
        return ChatMessage("tool", text, tool_call_id=call_id)
    if kind == "reasoning":
        return None
    raise serializers.ValidationError({"type": [f"Unsupported input item type {kind!r}: messages, function_call, "
                                                "function_call_output and reasoning items are."]})
