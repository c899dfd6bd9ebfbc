"""OpenAI's chat request shapes, shared by ``/v1/chat/completions`` and seed 004's
``/api/v1/chat/completions``: messages with content parts (text, images), assistant tool calls and
tool results; ``tools``, ``tool_choice``, ``parallel_tool_calls`` and ``response_format``. Each
validates what it can here (names, JSON arguments, JSON Schemas) and becomes the provider layer's
types (:class:`ChatMessage`, :class:`Tool`, :class:`ToolChoice`, :class:`ResponseFormat`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chatplatform.api.fields import SparseInput
from providers.adapters.base import ChatMessage, Image, ToolCall
from providers.images import MAX_IMAGES_PER_REQUEST, image_from_url
from providers.params import ResponseFormat, Tool, ToolChoice

MAX_CONTENT_CHARS = 500_000
MAX_TOOLS = 128
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
FUNCTION_TYPE = ["function"]
RESPONSE_FORMAT_TYPES = ["text", "json_object", "json_schema"]
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _schema(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise serializers.ValidationError(f"{field} must be a JSON Schema object.")
    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError as exc:
        raise serializers.ValidationError(f"{field} is not a valid JSON Schema: {exc.message[:200]}") from None
    return value


def _json_object_text(value: Any, field: str) -> str:
    """Tool call arguments: JSON text of an object (as OpenAI sends them)."""
    if not isinstance(value, str):
        raise serializers.ValidationError(f"{field} must be a string of JSON.")
    try:
        parsed = json.loads(value or "{}")
    except ValueError:
        raise serializers.ValidationError(f"{field} is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise serializers.ValidationError(f"{field} must be a JSON object.")
    return value or "{}"


class ToolFunctionInput(serializers.Serializer):
    name = serializers.RegexField(TOOL_NAME, error_messages={"invalid": "Letters, digits, '_' and '-', 1-64."})
    description = serializers.CharField(required=False, allow_blank=True, max_length=4096, default="")
    parameters = serializers.JSONField(required=False, default=dict)
    strict = serializers.BooleanField(required=False, allow_null=True, default=False)

    def validate_parameters(self, value: Any) -> dict:
        return _schema(value or {"type": "object", "properties": {}}, "parameters")


class ToolInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=FUNCTION_TYPE)
    function = ToolFunctionInput()

    def to_tool(self, data: dict) -> Tool:
        function = data["function"]
        return Tool(name=function["name"], description=function.get("description") or "",
                    parameters=function["parameters"], strict=bool(function.get("strict")))


TOOL_CHOICE_SCHEMA = {"oneOf": [{"type": "string", "enum": ["auto", "none", "required"]},
                                {"type": "object", "description": "A named function."}]}


@extend_schema_field(TOOL_CHOICE_SCHEMA)
class ToolChoiceField(serializers.Field):
    """``"auto"``, ``"none"``, ``"required"`` or ``{"type": "function", "function": {"name": ...}}``."""

    def to_internal_value(self, data: Any) -> ToolChoice:
        if data in ("auto", "none", "required"):
            return ToolChoice(mode=data)
        if isinstance(data, dict) and data.get("type") == "function" and isinstance(data.get("function"), dict) \
                and isinstance(data["function"].get("name"), str):
            return ToolChoice(mode="function", name=data["function"]["name"])
        raise serializers.ValidationError('"auto", "none", "required" or {"type": "function", "function": '
                                          '{"name": ...}}.')

    def to_representation(self, value: ToolChoice) -> Any:  # pragma: no cover - input only
        return value.mode if value.mode != "function" else {"type": "function", "function": {"name": value.name}}


class JSONSchemaFormatInput(serializers.Serializer):
    name = serializers.RegexField(TOOL_NAME, required=False, default="response")
    description = serializers.CharField(required=False, allow_blank=True, max_length=4096)
    schema = serializers.JSONField()
    strict = serializers.BooleanField(required=False, allow_null=True, default=False)

    def validate_schema(self, value: Any) -> dict:
        return _schema(value, "schema")


class ResponseFormatInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=RESPONSE_FORMAT_TYPES)
    json_schema = JSONSchemaFormatInput(required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs["type"] == "json_schema" and "json_schema" not in attrs:
            raise serializers.ValidationError({"json_schema": ["Required with type json_schema."]})
        return attrs

    @staticmethod
    def to_format(data: dict | None) -> ResponseFormat | None:
        if not data or data["type"] == "text":
            return None
        schema = data.get("json_schema") or {}
        return ResponseFormat(type=data["type"], schema=schema.get("schema"), name=schema.get("name") or "response",
                              strict=bool(schema.get("strict")))


class ToolCallFunctionInput(serializers.Serializer):
    name = serializers.RegexField(TOOL_NAME)
    arguments = serializers.JSONField(required=False, default="{}")

    def validate_arguments(self, value: Any) -> str:
        return _json_object_text(value, "arguments")


class ToolCallInput(serializers.Serializer):
    id = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=FUNCTION_TYPE, required=False, default="function")
    function = ToolCallFunctionInput()


class OpenAIMessageInput(SparseInput):
    role = serializers.CharField(max_length=20, help_text="system, developer, user, assistant or tool.")
    content = serializers.JSONField(required=False, allow_null=True,
                                    help_text="A string, or parts: text and (user turns) image_url.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=256)
    tool_calls = ToolCallInput(many=True, required=False, max_length=MAX_TOOLS)
    tool_call_id = serializers.CharField(required=False, max_length=100)

    def validate_role(self, value: str) -> str:
        if value not in ROLES:
            raise serializers.ValidationError(f"Unsupported role '{value}': use system, developer, user, assistant "
                                              "or tool.")
        return ROLES[value]

    def validate(self, attrs: dict) -> dict:
        role = attrs["role"]
        text, images = self._content(attrs.get("content"), role)
        if attrs.get("name") and role != "tool" and not TOOL_NAME.match(attrs["name"]):
            raise serializers.ValidationError({"name": ["Letters, digits, '_' and '-', 1-64."]})
        if role == "tool" and not attrs.get("tool_call_id"):
            raise serializers.ValidationError({"tool_call_id": ["Required on tool messages."]})
        if attrs.get("tool_calls") and role != "assistant":
            raise serializers.ValidationError({"tool_calls": ["Only assistant messages carry tool calls."]})
        attrs["message"] = ChatMessage(
            role=role, content=text, images=images, tool_call_id=attrs.get("tool_call_id") if role == "tool" else None,
            name=attrs.get("name") or None,
            tool_calls=tuple(ToolCall(id=c["id"], name=c["function"]["name"], arguments=c["function"]["arguments"])
                             for c in attrs.get("tool_calls") or []))
        return attrs

    @staticmethod
    def _content(value: Any, role: str) -> tuple[str, tuple[Image, ...]]:
        return content_of(value, role)


def _image_url(part: dict) -> str | None:
    """The URL of a Chat Completions ``image_url`` part or a Responses ``input_image`` part."""
    if part.get("type") == "image_url":
        inner = part.get("image_url")
        return inner.get("url") if isinstance(inner, dict) else None
    return part.get("image_url")


def content_of(value: Any, role: str) -> tuple[str, tuple[Image, ...]]:
    """(text, images) of a string or a list of content parts: Chat Completions' ``text`` and
    ``image_url``, the Responses API's ``input_text``, ``output_text`` and ``input_image`` (images
    on user turns and in tool results only; remote ones are fetched later, off the event loop)."""
    if value is None:
        return "", ()
    if isinstance(value, str):
        parts: list[Any] = [{"type": "text", "text": value}]
    elif isinstance(value, list):
        parts = value
    else:
        raise serializers.ValidationError({"content": ["A string or a list of content parts."]})
    texts: list[str] = []
    images: list[Image] = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("image_url", "input_image") and role in ("user", "tool"):
            url = _image_url(part)
            if not isinstance(url, str) or not url:
                raise serializers.ValidationError({"content": [
                    "Image parts need a URL (data: or http(s)); file ids are not supported."]})
            images.append(Image(url=url) if url.startswith(("http://", "https://")) else image_from_url(url))
        else:
            raise serializers.ValidationError({"content": [
                f"Unsupported content part {kind!r}: parts are text, or images on user and tool messages."]})
    text = "".join(texts)
    if len(text) > MAX_CONTENT_CHARS:
        raise serializers.ValidationError({"content": [f"At most {MAX_CONTENT_CHARS} characters."]})
    if len(images) > MAX_IMAGES_PER_REQUEST:
        raise serializers.ValidationError({"content": [f"At most {MAX_IMAGES_PER_REQUEST} images."]})
    return text, tuple(images)


class ToolParamsInput(serializers.Serializer):
    """``tools``, ``tool_choice``, ``parallel_tool_calls``, ``response_format`` (OpenAI's names)."""

    tools = ToolInput(many=True, required=False, allow_null=True, max_length=MAX_TOOLS)
    tool_choice = ToolChoiceField(required=False, allow_null=True)
    parallel_tool_calls = serializers.BooleanField(required=False, allow_null=True)
    response_format = ResponseFormatInput(required=False, allow_null=True)

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        names = [t["function"]["name"] for t in attrs.get("tools") or []]
        if len(set(names)) != len(names):
            raise serializers.ValidationError({"tools": ["Tool names must be unique."]})
        choice = attrs.get("tool_choice")
        if choice is not None and choice.mode in ("required", "function") and not names:
            raise serializers.ValidationError({"tool_choice": ["Needs tools."]})
        if choice is not None and choice.mode == "function" and choice.name not in names:
            raise serializers.ValidationError({"tool_choice": [f"No tool named {choice.name!r}."]})
        return attrs

    @staticmethod
    def tool_params(data: dict) -> dict[str, Any]:
        """The :class:`GenerationParams` fields of validated data."""
        return {"tools": tuple(ToolInput().to_tool(t) for t in data.get("tools") or []),
                "tool_choice": data.get("tool_choice"), "parallel_tool_calls": data.get("parallel_tool_calls"),
                "response_format": ResponseFormatInput.to_format(data.get("response_format"))}


def split_inputs(messages: list[ChatMessage]) -> tuple[list[ChatMessage], list[ChatMessage]]:
    """(earlier messages, this turn's new ones: the trailing user and tool messages)."""
    index = len(messages)
    while index > 0 and messages[index - 1].role in ("user", "tool"):
        index -= 1
    return messages[:index], messages[index:]
