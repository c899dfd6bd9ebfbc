"""The request shapes of the routes and frames that start a turn. Generation parameters come
from the one serializer every transport shares (:class:`providers.serializers.GenerationParamsInput`):
at the top level (seeds 001 and 004, WebSocket frames) or nested as seed 000's ``model_parameters``.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from chatplatform.api import fields
from chats.openai_inputs import OpenAIMessageInput, ToolParamsInput
from chats.serializers import MAX_MESSAGE_CHARS, ConversationCreateInput
from chats.turns import Turn
from providers.serializers import GenerationParamsInput

COMPLETION_MESSAGE_MAX_CHARS = 32_000


def _not_blank(value: str) -> str:
    if not value.strip():
        raise serializers.ValidationError("This field may not be blank.")
    return value


MAX_HISTORY_ITEMS = 200


class HistoryTurnInput(serializers.Serializer):
    """One earlier turn a client sends (seed 001's ``conversation_history``, seed 004's ``messages``)."""

    role = serializers.ChoiceField(choices=["user", "assistant", "system"])
    content = fields.TextField(max_length=MAX_MESSAGE_CHARS, allow_blank=True, trim_whitespace=False)


class ModelParametersInput(fields.KnownFieldsInput, GenerationParamsInput):
    """Seed 000's nested ``model_parameters`` (a name it does not know is a 400 naming it)."""


class GenerationInput(fields.KnownFieldsInput):
    """Optional per-request choices for a generated reply (seed 000's shape). The turn routes' inputs
    (and the WebSocket frames' ``data``) refuse a field they do not know: a 400 naming it."""

    provider = serializers.CharField(max_length=50, required=False, allow_null=True, allow_blank=True)
    model = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    model_parameters = ModelParametersInput(required=False, allow_null=True)

    @staticmethod
    def choice(data: dict) -> dict:
        """The turn fields of validated data: model, provider, params."""
        return {"model": data.get("model") or None, "provider": data.get("provider") or None,
                "params": GenerationParamsInput.params(data.get("model_parameters"))}


class SendMessageInput(GenerationInput):
    message = fields.TextField(max_length=MAX_MESSAGE_CHARS, trim_whitespace=False)
    conversation_id = serializers.CharField(
        max_length=40, required=False, allow_null=True, allow_blank=True,
        help_text="Yours; an unknown id starts a conversation with that id; omitted starts a new one.")
    user_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200,
                                    help_text="Ignored: the caller is the user.")

    def validate_message(self, value: str) -> str:
        return _not_blank(value)


class ConversationStartInput(ConversationCreateInput, GenerationInput):
    initial_message = fields.TextField(max_length=MAX_MESSAGE_CHARS, required=False, allow_blank=True,
                                       allow_null=True, trim_whitespace=False)


class MessageEditInput(GenerationInput):
    content = fields.TextField(max_length=MAX_MESSAGE_CHARS, trim_whitespace=False)

    def validate_content(self, value: str) -> str:
        return _not_blank(value)


class RegenerateInput(GenerationInput):
    pass


class CompletionInput(fields.KnownFieldsInput, GenerationParamsInput):
    """Seed 001's chat completion request."""

    message = fields.TextField(max_length=COMPLETION_MESSAGE_MAX_CHARS, trim_whitespace=False, validators=[_not_blank])
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    stream = serializers.BooleanField(required=False, default=False)
    system_prompt = fields.TextField(max_length=COMPLETION_MESSAGE_MAX_CHARS, required=False, allow_blank=True,
                                     allow_null=True, trim_whitespace=False)
    conversation_history = HistoryTurnInput(many=True, required=False, max_length=MAX_HISTORY_ITEMS)
    cache = serializers.BooleanField(required=False, default=True,
                                     help_text="false: skip the response cache (as Cache-Control: no-cache).")


class ChatCompletionsInput(fields.KnownFieldsInput, GenerationParamsInput, ToolParamsInput):
    """Seed 004's completion request; ``messages`` in OpenAI's shape (tool calls, tool results and
    image parts included), with OpenAI's ``tools``/``tool_choice``/``response_format``."""

    chat_id = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    messages = OpenAIMessageInput(many=True, min_length=1, max_length=MAX_HISTORY_ITEMS)
    stream = serializers.BooleanField(required=False, default=False)
    use_web_grounding = serializers.BooleanField(required=False, default=False)
    use_extended_thinking = serializers.BooleanField(required=False, default=False)
    use_rag = serializers.BooleanField(required=False, default=False)
    cache = serializers.BooleanField(required=False, default=True,
                                     help_text="false: skip the response cache (as Cache-Control: no-cache).")

    def validate_messages(self, value: list[dict]) -> list[dict]:
        messages = [m["message"] for m in value if m["message"].role != "system"]
        if not any(m.role in ("user", "tool") for m in messages):
            raise serializers.ValidationError("At least one user message (or tool result) is required.")
        last = messages[-1]
        if last.role not in ("user", "tool"):
            raise serializers.ValidationError("The last message (other than system messages) must be the user's "
                                              "(or a tool's result).")
        if last.role == "user" and not last.content.strip() and not last.images:
            raise serializers.ValidationError("The last user message may not be blank.")
        return value

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("chat_id") and not any(m["message"].role == "user" for m in attrs["messages"]):
            raise serializers.ValidationError({"messages": ["A new chat needs a user message."]})
        return attrs


# --- WebSocket frames (seeds 000, 001, 003) -----------------------------------------------------


class ChatData(fields.KnownFieldsInput, GenerationParamsInput):
    """Seed 001's ``chat`` frame ``data``."""

    message = fields.TextField(trim_whitespace=False, validators=[_not_blank])
    model = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=100)
    stream = serializers.BooleanField(required=False, default=True)
    system_prompt = fields.TextField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    conversation_history = HistoryTurnInput(many=True, required=False, max_length=MAX_HISTORY_ITEMS)
    conversation_id = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=40)


class MessageFrame(fields.KnownFieldsInput, GenerationParamsInput):
    """Seed 000/003's ``message`` frame (``message`` is accepted for ``content``, as in REST);
    parameters at the top level or in ``model_parameters`` (the top level wins)."""

    transport_fields = ("type", "id")

    content = fields.TextField(required=False, allow_blank=True, trim_whitespace=False)
    message = fields.TextField(required=False, allow_blank=True, trim_whitespace=False)
    conversation_id = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=40)
    model = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=100)
    provider = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=50)
    system_prompt = fields.TextField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    model_parameters = ModelParametersInput(required=False, allow_null=True)
    stream = serializers.BooleanField(required=False, allow_null=True, default=None,
                                      help_text="Send the reply as it is made (delta frames) before the final frame.")

    def validate(self, attrs: dict) -> dict:
        text = attrs.get("content") or attrs.get("message") or ""
        if not text.strip():
            raise serializers.ValidationError({"content": ["This field is required."]})
        attrs["text"] = text
        return attrs

    @staticmethod
    def turn(values: dict, **where: Any) -> Turn:
        nested = values.get("model_parameters") or {}
        merged = {k: values[k] if values.get(k) is not None else nested.get(k) for k in ("temperature", "top_p",
                                                                                           "max_tokens", "stop")}
        return Turn(text=values["text"], model=values.get("model") or None, provider=values.get("provider") or None,
                    system=values.get("system_prompt") or None, params=GenerationParamsInput.params(merged), **where)
