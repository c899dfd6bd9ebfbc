"""Conversation and message input validation and output shapes.

Outputs are supersets of the seeds' shapes: a conversation carries seed 000's
``conversation_id``, seed 003's ``id``/``user_id``/``is_active`` and seed 004's ``model``/``is_archived``;
a message carries seed 000's ``message_id``/``timestamp``, seed 003's ``tokens_used``/``response_time``
(ms) and seed 004's ``chat_id``/``created_at``/``model``, plus ``parent_message_id`` and ``status``.
"""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chatplatform.api import fields
from chatplatform.api.pagination import MAX_OFFSET
from chats.models import Conversation, Message
from chats.openai_inputs import TOOL_NAME
from knowledge.documents_serializers import CitationOutput
from providers import selectors as provider_selectors

MAX_MESSAGE_CHARS = 100_000
MAX_SYSTEM_PROMPT_CHARS = 20_000
MAX_JSON_BYTES = 64 * 1024
EXPORT_FORMAT = "chatplatform.conversation.v1"


class _BlankAsNull(serializers.CharField):
    """A string shown as ``null`` when empty (e.g. a user message has no model)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value or None


def _bounded_json(value: dict) -> dict:
    encoded = json.dumps(value, default=str)
    if len(encoded) > MAX_JSON_BYTES:
        raise serializers.ValidationError(f"At most {MAX_JSON_BYTES // 1024} KB of JSON.")
    if _has_nul(value):  # PostgreSQL cannot store a NUL character, in text or in JSON
        raise serializers.ValidationError("Null characters are not allowed.")
    return value


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


# --- outputs -----------------------------------------------------------------------------------


class StoredToolCallSerializer(serializers.Serializer):
    """A tool call as a message keeps it."""

    id = serializers.CharField(max_length=100)
    name = serializers.RegexField(TOOL_NAME)
    arguments = fields.TextField(max_length=MAX_MESSAGE_CHARS, allow_blank=True, trim_whitespace=False,
                                 required=False, default="{}")


class ConversationMessageOutput(serializers.Serializer):
    id = serializers.CharField()
    message_id = serializers.CharField(source="id")
    conversation_id = serializers.CharField()
    chat_id = serializers.CharField(source="conversation_id")
    parent_message_id = serializers.CharField(source="parent_id", allow_null=True)
    role = serializers.ChoiceField(choices=Message.Role.choices)
    content = serializers.CharField()
    status = serializers.CharField(help_text="complete, incomplete (cancelled or interrupted) or error.")
    finish_reason = _BlankAsNull()
    model = _BlankAsNull()
    model_used = _BlankAsNull(source="model")
    provider = _BlankAsNull()
    tokens_used = serializers.IntegerField(source="total_tokens")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    response_time = serializers.SerializerMethodField(help_text="Milliseconds the provider took (0 for user messages).")
    timestamp = serializers.DateTimeField(source="created_at")
    created_at = serializers.DateTimeField()
    tool_calls = StoredToolCallSerializer(many=True, help_text="The calls an assistant turn made (id, name, "
                                          "JSON arguments).")
    tool_call_id = _BlankAsNull(help_text="On a tool result: the call it answers.")
    tool_name = _BlankAsNull(help_text="On a tool result: the tool's name, when the client gave it.")

    def get_response_time(self, message: Message) -> int:
        return int(round(message.latency_ms or 0))


class ConversationOutput(serializers.Serializer):
    id = serializers.CharField()
    conversation_id = serializers.CharField(source="id")
    user_id = serializers.CharField()
    title = serializers.CharField()
    model = _BlankAsNull()
    provider = _BlankAsNull()
    system_prompt = serializers.CharField()
    metadata = serializers.DictField()
    settings = serializers.DictField()
    is_archived = serializers.BooleanField()
    is_active = serializers.BooleanField()
    message_count = serializers.IntegerField()
    active_leaf_id = serializers.CharField(allow_null=True,
                                           help_text="The last message of the branch the conversation follows.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ConversationListItemOutput(ConversationOutput):
    messages = serializers.SerializerMethodField(help_text="Always empty in lists (seed 003's shape); "
                                                           "GET the conversation for its messages.")

    @extend_schema_field(ConversationMessageOutput(many=True))
    def get_messages(self, conversation: Conversation) -> list:
        return []


class ConversationDetailOutput(ConversationOutput):
    messages = ConversationMessageOutput(many=True, help_text="The active branch, oldest first.")


def conversation_detail(conversation: Conversation, messages: list[Message]) -> dict:
    return {**ConversationOutput(conversation).data, "messages": ConversationMessageOutput(messages, many=True).data}


class ReplyUsageOutput(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class SendMessageOutput(serializers.Serializer):
    """Seed 000's reply to ``POST /chat/message`` (``message`` and ``response`` hold the same text)."""

    message = serializers.CharField()
    response = serializers.CharField()
    conversation_id = serializers.CharField()
    message_id = serializers.CharField(allow_null=True, help_text="The assistant message.")
    user_message_id = serializers.CharField()
    parent_message_id = serializers.CharField(allow_null=True)
    model_used = serializers.CharField()
    provider_used = serializers.CharField()
    tokens_used = serializers.IntegerField()
    usage = ReplyUsageOutput()
    processing_time = serializers.FloatField(help_text="Seconds.")
    timestamp = serializers.DateTimeField()
    finish_reason = serializers.CharField()
    status = serializers.CharField(help_text="complete or incomplete.")


class SupportChatOutput(SendMessageOutput):
    """Seed 003's ``POST /chat/chat`` reply: ``response_time`` in milliseconds, besides seed 000's fields."""

    response_time = serializers.IntegerField(help_text="Milliseconds.")
    grounded = serializers.BooleanField(help_text="Whether FAQ entries grounded the answer.")
    faqs = serializers.ListField(child=serializers.DictField(), help_text="FAQ entries used (id, question, score).")
    escalated = serializers.BooleanField(help_text="A customer log was opened for a person to follow up.")
    customer_log_id = serializers.CharField(allow_null=True)


class ConversationCreatedOutput(ConversationDetailOutput):
    reply = SendMessageOutput(allow_null=True, help_text="The reply to `initial_message`, when one was given.")


class BranchOutput(serializers.Serializer):
    """An edit or a regeneration: the user message answered and the new reply."""

    conversation_id = serializers.CharField()
    user_message = ConversationMessageOutput()
    assistant_message = ConversationMessageOutput()
    message = serializers.CharField(help_text="The reply's text.")
    response = serializers.CharField(help_text="The reply's text.")


class ConversationDeletedOutput(serializers.Serializer):
    message = serializers.CharField()
    conversation_id = serializers.CharField()


class AnalyticsTopicOutput(serializers.Serializer):
    topic = serializers.CharField()
    count = serializers.IntegerField()


class AnalyticsMonthOutput(serializers.Serializer):
    month = serializers.CharField()
    conversations = serializers.IntegerField()


class ConversationAnalyticsOutput(serializers.Serializer):
    total_conversations = serializers.IntegerField()
    total_messages = serializers.IntegerField()
    average_messages_per_conversation = serializers.FloatField()
    most_active_day = serializers.CharField(allow_null=True)
    conversation_topics = AnalyticsTopicOutput(many=True)
    monthly_usage = AnalyticsMonthOutput(many=True)


class ExportedMessageSerializer(serializers.Serializer):
    id = serializers.CharField(required=False)
    parent_message_id = serializers.CharField(required=False, allow_null=True)
    role = serializers.ChoiceField(choices=Message.Role.choices)
    content = fields.TextField(allow_blank=True, trim_whitespace=False, max_length=MAX_MESSAGE_CHARS)
    model = serializers.CharField(required=False, allow_blank=True)
    provider = serializers.CharField(required=False, allow_blank=True)
    status = serializers.CharField(required=False)
    prompt_tokens = serializers.IntegerField(required=False)
    completion_tokens = serializers.IntegerField(required=False)
    created_at = serializers.CharField(required=False)
    tool_calls = StoredToolCallSerializer(many=True, required=False, max_length=128)
    tool_call_id = serializers.CharField(required=False, allow_blank=True, max_length=100)
    tool_name = serializers.CharField(required=False, allow_blank=True, max_length=64)

    def validate(self, attrs: dict) -> dict:
        if attrs["role"] == Message.Role.TOOL and not attrs.get("tool_call_id"):
            raise serializers.ValidationError({"tool_call_id": ["Required on tool messages."]})
        if attrs.get("tool_calls") and attrs["role"] != Message.Role.ASSISTANT:
            raise serializers.ValidationError({"tool_calls": ["Only assistant messages carry tool calls."]})
        return attrs


class ConversationExportOutput(serializers.Serializer):
    format = serializers.CharField()
    id = serializers.CharField()
    title = serializers.CharField()
    model = serializers.CharField()
    provider = serializers.CharField()
    system_prompt = serializers.CharField()
    metadata = serializers.DictField()
    is_archived = serializers.BooleanField()
    created_at = serializers.CharField()
    updated_at = serializers.CharField()
    active_leaf_id = serializers.CharField(allow_null=True)
    messages = ExportedMessageSerializer(many=True)


# --- inputs ------------------------------------------------------------------------------------


class _ConversationFields(serializers.Serializer):
    """Optional fields; ``null`` means "not given" (the value is left as it is)."""

    title = fields.TextField(max_length=200, required=False, allow_blank=True, allow_null=True)
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    provider = serializers.CharField(max_length=50, required=False, allow_blank=True, allow_null=True)
    system_prompt = fields.TextField(max_length=MAX_SYSTEM_PROMPT_CHARS, required=False, allow_blank=True,
                                     allow_null=True, trim_whitespace=False)
    metadata = serializers.DictField(required=False, allow_null=True, validators=[_bounded_json])
    settings = serializers.DictField(required=False, allow_null=True, validators=[_bounded_json])

    def validate(self, attrs):
        model = attrs.get("model")
        if model and not attrs.get("provider") and provider_selectors.catalogue_model(model) is None:
            raise serializers.ValidationError(
                {"model": [f"Unknown model '{model}'. See GET /api/v1/models."]})
        return attrs


class ConversationCreateInput(_ConversationFields):
    """Seed 000 ``POST /chat/conversation`` and seed 004 ``POST /chats``."""


class ConversationUpdateInput(_ConversationFields):
    is_archived = serializers.BooleanField(required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False, allow_null=True)


class CompletionOutput(serializers.Serializer):
    response = serializers.CharField()
    model = serializers.CharField()
    provider = serializers.CharField()
    request_id = serializers.CharField()
    timestamp = serializers.DateTimeField()
    cached = serializers.BooleanField()
    cache_key = serializers.CharField(allow_null=True)
    similarity_score = serializers.FloatField(allow_null=True)
    finish_reason = serializers.CharField()
    usage = ReplyUsageOutput()


class AssistantMessageOutput(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()


class ChatCompletionsOutput(serializers.Serializer):
    id = serializers.CharField(help_text="The assistant message's id.")
    model = serializers.CharField()
    message = AssistantMessageOutput()
    tokens_used = serializers.IntegerField()
    finish_reason = serializers.CharField()
    chat_id = serializers.CharField()
    user_message_id = serializers.CharField()
    provider = serializers.CharField()
    usage = ReplyUsageOutput()
    thinking = serializers.CharField(required=False, help_text="Only when extended thinking produced some.")
    citations = CitationOutput(many=True, required=False,
                               help_text="Only with `use_rag`: the document chunks the prompt held.")
    created_at = serializers.DateTimeField()


class ConversationImportInput(serializers.Serializer):
    """The JSON export format (``GET /chats/{id}/export``)."""

    format = serializers.ChoiceField(choices=[EXPORT_FORMAT], required=False)
    title = fields.TextField(max_length=200, required=False, allow_blank=True)
    model = serializers.CharField(max_length=100, required=False, allow_blank=True)
    provider = serializers.CharField(max_length=50, required=False, allow_blank=True)
    system_prompt = fields.TextField(max_length=MAX_SYSTEM_PROMPT_CHARS, required=False, allow_blank=True,
                                     trim_whitespace=False)
    metadata = serializers.DictField(required=False, validators=[_bounded_json])
    active_leaf_id = serializers.CharField(required=False, allow_null=True)
    messages = ExportedMessageSerializer(many=True, max_length=2000)


# --- query parameters --------------------------------------------------------------------------


class _Page(serializers.Serializer):
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)


class ConversationListQuery(_Page):
    """Seed 000 (limit ≤ 100, default 20; offset) and seed 003 (``skip`` is offset)."""

    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    skip = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False,
                                    help_text="Seed 003's name for offset.")
    include_archived = serializers.BooleanField(default=False)


class ChatListQuery(_Page):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    include_archived = serializers.BooleanField(default=False)


class MessageListQuery(_Page):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=100)
    all_branches = serializers.BooleanField(
        default=False, help_text="Every message of every branch (oldest first) instead of the active branch.")


class ExportQuery(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "markdown"], default="json")
