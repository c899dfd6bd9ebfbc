"""The request of Anthropic's Messages API (``POST /v1/messages``, ``/v1/messages/count_tokens``)
and how it becomes a turn.

``messages`` alternate ``user`` and ``assistant`` turns whose ``content`` is a string or blocks:
``text``, ``image`` (``base64`` or ``url`` sources), ``tool_use`` (assistant) and ``tool_result``
(user), plus earlier ``thinking``/``redacted_thinking`` blocks (accepted and not sent on: another
provider could not read them, and without the signature Anthropic would refuse them). They become
the provider layer's :class:`ChatMessage` turns (a ``tool_result`` is a ``tool`` turn), so every
catalogue model answers. Every other parameter is honoured or refused with a 400 naming it; the
README has the table.
"""

from __future__ import annotations

import json
import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chatplatform.api import fields
from chatplatform.api.exceptions import AppError
from chats.inputs import MAX_HISTORY_ITEMS
from chats.openai_inputs import MAX_CONTENT_CHARS, MAX_TOOLS, TOOL_NAME, _schema
from providers.adapters.base import ChatMessage, Image, ToolCall
from providers.images import MAX_IMAGES_PER_REQUEST, image_from_url
from providers.params import (
    MAX_STOP_CHARS,
    MAX_STOP_SEQUENCES,
    MAX_TOKENS_LIMIT,
    THINKING_BUDGET_LIMIT,
    TOP_P_MAX,
    GenerationParams,
    ResponseFormat,
    Tool,
    ToolChoice,
)

MEDIA_TYPE = re.compile(r"image/[\w.+-]{1,50}")
TOOL_ERROR_PREFIX = "Error: "  # a tool_result with is_error: the text the model reads (no provider-neutral flag)
# Prior reasoning in assistant turns: accepted, not sent on (see the module docstring).
SKIPPED_BLOCKS = {"thinking", "redacted_thinking"}
BLOCK_KEYS = {
    "text": {"type", "text", "cache_control", "citations"},
    "image": {"type", "source", "cache_control"},
    "tool_use": {"type", "id", "name", "input", "cache_control"},
    "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control"},
    "thinking": {"type", "thinking", "signature"},
    "redacted_thinking": {"type", "data"},
}


def refuse(name: str, message: str) -> AppError:
    """400 naming ``name`` (the Anthropic error's message says which)."""
    return AppError(message, status_code=400, code="UNSUPPORTED_PARAMETER", details={name: [message]})


def invalid(where: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError({where: [message]})


# --- fields ------------------------------------------------------------------------------------


class AnthropicToolInput(serializers.Serializer):
    name = serializers.RegexField(TOOL_NAME, error_messages={"invalid": "Letters, digits, '_' and '-', 1-64."})
    description = serializers.CharField(required=False, allow_blank=True, max_length=4096, default="")
    input_schema = serializers.JSONField()
    type = serializers.ChoiceField(choices=["custom"], required=False,
                                   help_text="Client tools only; server tools (web search, ...) are refused.")
    cache_control = serializers.JSONField(required=False, allow_null=True, help_text="Accepted; not forwarded.")
    strict = serializers.BooleanField(required=False, default=False)

    def validate_input_schema(self, value: Any) -> dict:
        schema = _schema(value, "input_schema")
        if schema.get("type") != "object":
            raise serializers.ValidationError("input_schema must have type 'object'.")
        return schema

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if data.get("type") not in (None, "custom"):
                raise serializers.ValidationError({"type": [
                    f"Only client tools are supported, not server tools ({str(data['type'])[:60]!r})."]})
            if unknown:
                raise serializers.ValidationError({unknown[0]: ["Not supported on tools."]})
        return super().to_internal_value(data)


TOOL_CHOICE_SCHEMA = {"type": "object", "description": '{"type": "auto"|"any"|"none"} or {"type": "tool", "name"}; '
                      "optional disable_parallel_tool_use."}


@extend_schema_field(TOOL_CHOICE_SCHEMA)
class AnthropicToolChoiceField(serializers.Field):
    """``{"type": "auto" | "any" | "none"}`` or ``{"type": "tool", "name": ...}`` -> (ToolChoice, parallel)."""

    def to_internal_value(self, data: Any) -> tuple[ToolChoice, bool | None]:
        kind = data.get("type") if isinstance(data, dict) else None
        if kind not in ("auto", "any", "tool", "none") or set(data) - {"type", "name", "disable_parallel_tool_use"}:
            raise serializers.ValidationError('{"type": "auto"}, {"type": "any"}, {"type": "none"} or '
                                              '{"type": "tool", "name": ...}.')
        if kind == "tool" and not isinstance(data.get("name"), str):
            raise serializers.ValidationError('{"type": "tool"} needs the tool\'s name.')
        disable = data.get("disable_parallel_tool_use")
        if disable is not None and not isinstance(disable, bool):
            raise serializers.ValidationError("disable_parallel_tool_use must be a boolean.")
        mode = {"auto": "auto", "any": "required", "none": "none", "tool": "function"}[kind]
        return ToolChoice(mode=mode, name=data.get("name") if kind == "tool" else None), (
            None if disable is None else not disable)

    def to_representation(self, value: Any) -> Any:  # pragma: no cover - input only
        return value


class ThinkingInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["enabled", "disabled", "adaptive"])
    budget_tokens = fields.IntegerField(min_value=1024, max_value=THINKING_BUDGET_LIMIT, required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs["type"] == "enabled" and "budget_tokens" not in attrs:
            raise serializers.ValidationError({"budget_tokens": ["Required with type enabled."]})
        return attrs


class MetadataInput(serializers.Serializer):
    user_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=256)

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, dict) and set(data) - {"user_id"}:
            raise serializers.ValidationError("Only user_id is supported in metadata.")
        return super().to_internal_value(data)


class OutputFormatInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["json_schema"])
    schema = serializers.JSONField()

    def validate_schema(self, value: Any) -> dict:
        return _schema(value, "schema")


class OutputConfigInput(serializers.Serializer):
    format = OutputFormatInput(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, dict) and set(data) - {"format"}:
            raise serializers.ValidationError(f"Unsupported output_config option '{sorted(set(data) - {'format'})[0]}'.")
        return super().to_internal_value(data)


# --- the request -------------------------------------------------------------------------------


class CountTokensInput(serializers.Serializer):
    """``POST /v1/messages/count_tokens``: the prompt parts of a Messages request."""

    model = serializers.CharField(max_length=100)
    messages = serializers.JSONField(help_text="user/assistant turns: a string or content blocks (text, image, "
                                               "tool_use, tool_result).")
    system = serializers.JSONField(required=False, allow_null=True, help_text="A string or text blocks.")
    tools = AnthropicToolInput(many=True, required=False, allow_null=True, max_length=MAX_TOOLS)
    tool_choice = AnthropicToolChoiceField(required=False, allow_null=True)
    thinking = ThinkingInput(required=False, allow_null=True)
    output_config = OutputConfigInput(required=False, allow_null=True)
    cache_control = serializers.JSONField(required=False, allow_null=True, help_text="Accepted; not forwarded.")

    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise refuse(unknown[0], f"{unknown[0]}: Extra inputs are not permitted (not supported by this gateway).")
        attrs = super().validate(attrs)
        names = [t["name"] for t in attrs.get("tools") or []]
        if len(set(names)) != len(names):
            raise invalid("tools", "Tool names must be unique.")
        choice = (attrs.get("tool_choice") or (None, None))[0]
        if choice is not None and choice.mode in ("required", "function") and not names:
            raise invalid("tool_choice", "Needs tools.")
        if choice is not None and choice.mode == "function" and choice.name not in names:
            raise invalid("tool_choice", f"No tool named {choice.name!r}.")
        attrs["system_text"] = system_text(attrs.get("system"))
        attrs["chat"] = chat_messages(attrs["messages"])
        return attrs


class MessagesInput(CountTokensInput):
    """``POST /v1/messages``."""

    max_tokens = fields.IntegerField(min_value=1, max_value=MAX_TOKENS_LIMIT,
                                     help_text="Required; also bounded by the model's output limit.")
    temperature = fields.NumberField(min_value=0.0, max_value=1.0, required=False, allow_null=True)
    top_p = fields.NumberField(min_value=0.0, max_value=TOP_P_MAX, required=False, allow_null=True)
    top_k = fields.IntegerField(min_value=1, max_value=1000, required=False, allow_null=True,
                                help_text="Claude, Gemini and the local model; GPT models answer 400.")
    stop_sequences = serializers.ListField(
        child=serializers.CharField(max_length=MAX_STOP_CHARS, trim_whitespace=False), required=False,
        allow_null=True, max_length=MAX_STOP_SEQUENCES)
    metadata = MetadataInput(required=False, allow_null=True)
    stream = serializers.BooleanField(required=False, allow_null=True, default=False)
    service_tier = serializers.CharField(required=False, allow_null=True, max_length=20,
                                         help_text="auto or standard_only: every request is served at the one "
                                                   "tier there is.")

    def validate_service_tier(self, value: str | None) -> str | None:
        if value not in (None, "auto", "standard_only"):
            raise serializers.ValidationError("auto or standard_only.")
        return value

    def validate_stop_sequences(self, value: list[str] | None) -> list[str] | None:
        if value and any(not s.strip() for s in value):
            raise serializers.ValidationError("Each stop sequence must contain non-whitespace.")
        return value


def system_text(value: Any) -> str | None:
    """``system``: a string or a list of text blocks."""
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if not isinstance(value, list):
        raise invalid("system", "A string or a list of text blocks.")
    texts = []
    for index, block in enumerate(value):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise invalid(f"system[{index}]", "System blocks are text blocks.")
        _check_keys(block, f"system[{index}]")
        texts.append(block["text"])
    return "\n\n".join(t for t in texts if t) or None


def _check_keys(block: dict, where: str) -> None:
    extra = sorted(set(block) - BLOCK_KEYS.get(str(block.get("type")), set()))
    if extra:
        raise invalid(where, f"{extra[0]}: not supported on {block.get('type')} blocks.")


def _image(block: dict, where: str) -> Image:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source.get("data"), str) and isinstance(source.get("media_type"), str) \
            and MEDIA_TYPE.fullmatch(source["media_type"]):
        return image_from_url(f"data:{source['media_type']};base64,{source['data']}", field=where)
    if kind == "url" and isinstance(source.get("url"), str) and source["url"].startswith(("http://", "https://")):
        return Image(url=source["url"])  # fetched by the turn, through the outbound-URL guard
    raise invalid(where, "Image sources are {\"type\": \"base64\", \"media_type\", \"data\"} or "
                         "{\"type\": \"url\", \"url\": \"https://...\"}.")


def _tool_result(block: dict, where: str) -> ChatMessage:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id or len(call_id) > 100:
        raise invalid(where, "tool_use_id is required.")
    content = block.get("content", "")
    if isinstance(content, list):
        if any(not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str)
               for b in content):
            raise invalid(where, "Tool results are text (a string or text blocks); images in results are not "
                                 "supported.")
        content = "".join(b["text"] for b in content)
    if not isinstance(content, str):
        raise invalid(where, "content must be a string or text blocks.")
    if block.get("is_error") is True:
        content = TOOL_ERROR_PREFIX + content
    return ChatMessage("tool", content, tool_call_id=call_id)


def _turn(role: str, content: Any, index: int) -> list[ChatMessage]:
    """One Anthropic turn as chat messages: a user turn's tool results first (as ``tool`` turns),
    then its text and images; an assistant turn's text and tool calls."""
    where = f"messages[{index}]"
    if isinstance(content, str):
        return [ChatMessage(role, content)]  # type: ignore[arg-type]
    if not isinstance(content, list) or not content:
        raise invalid(where, "content is a string or a non-empty list of blocks.")
    texts: list[str] = []
    images: list[Image] = []
    calls: list[ToolCall] = []
    results: list[ChatMessage] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(kind, str) or kind not in BLOCK_KEYS:
            raise invalid(at, f"Unsupported content block {kind!r}: text, image, tool_use, tool_result (and earlier "
                              "thinking) blocks are.")
        _check_keys(block, at)
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "image" and role == "user":
            images.append(_image(block, at))
        elif kind == "tool_use" and role == "assistant":
            if not isinstance(block.get("id"), str) or not block["id"] or not TOOL_NAME.match(str(block.get("name"))):
                raise invalid(at, "tool_use blocks need an id and a tool name.")
            if not isinstance(block.get("input"), dict):
                raise invalid(at, "tool_use input must be an object.")
            calls.append(ToolCall(id=block["id"], name=block["name"], arguments=json.dumps(block["input"])))
        elif kind == "tool_result" and role == "user":
            results.append(_tool_result(block, at))
        elif kind in SKIPPED_BLOCKS and role == "assistant":
            continue
        else:
            raise invalid(at, f"A {kind} block does not belong in a {role} turn.")
    text = "".join(texts)
    if role == "assistant":
        return [ChatMessage("assistant", text, tool_calls=tuple(calls))] if text or calls else []
    return [*results, *([ChatMessage("user", text, images=tuple(images))] if text or images else [])]


def chat_messages(value: Any) -> list[ChatMessage]:
    """``messages`` as chat messages (validated: roles, blocks, sizes)."""
    if not isinstance(value, list) or not value:
        raise invalid("messages", "A non-empty list of messages.")
    if len(value) > MAX_HISTORY_ITEMS:
        raise invalid("messages", f"At most {MAX_HISTORY_ITEMS} messages.")
    out: list[ChatMessage] = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise invalid(f"messages[{index}]", "role must be 'user' or 'assistant'.")
        extra = sorted(set(message) - {"role", "content"})
        if extra:
            raise invalid(f"messages[{index}]", f"{extra[0]}: not supported on messages.")
        out += _turn(message["role"], message.get("content"), index)
    if sum(len(m.content) for m in out) > MAX_CONTENT_CHARS * 4:
        raise invalid("messages", "The messages are too long.")
    if sum(len(m.images) for m in out) > MAX_IMAGES_PER_REQUEST:
        raise invalid("messages", f"At most {MAX_IMAGES_PER_REQUEST} images.")
    if not out or out[-1].role not in ("user", "tool"):
        raise invalid("messages", "The last message must be the user's (assistant prefill is not supported).")
    return out


def params_of(data: dict) -> GenerationParams:
    """The :class:`GenerationParams` of validated Messages (or count_tokens) data."""
    choice, parallel = data.get("tool_choice") or (None, None)
    thinking = data.get("thinking") or {}
    fmt = (data.get("output_config") or {}).get("format")
    return GenerationParams(
        temperature=data.get("temperature"), top_p=data.get("top_p"), top_k=data.get("top_k"),
        max_tokens=data.get("max_tokens"), stop=tuple(data["stop_sequences"]) if data.get("stop_sequences") else None,
        thinking=thinking.get("type") in ("enabled", "adaptive"), thinking_budget=thinking.get("budget_tokens"),
        tools=tuple(Tool(name=t["name"], description=t.get("description") or "", parameters=t["input_schema"],
                         strict=bool(t.get("strict"))) for t in data.get("tools") or []),
        tool_choice=choice, parallel_tool_calls=parallel,
        response_format=ResponseFormat(type="json_schema", schema=fmt["schema"], strict=True) if fmt else None)
