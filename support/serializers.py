"""Support input validation and output shapes (seed 003's FAQ and log objects, seed 002's chatbots)."""

from __future__ import annotations

from rest_framework import serializers

from chatplatform.api import fields
from chatplatform.api.pagination import OffsetPageInput
from support.models import FAQ, Chatbot, ChatbotAPIKey, CustomerLog
from support.selectors import FAQ_SEARCH_MIN_SCORE

CATEGORY_PATTERN = r"^[\w .\-]{1,50}$"
MAX_HOURS = 24 * 365 * 10


def category_field(**kwargs) -> serializers.RegexField:
    return serializers.RegexField(CATEGORY_PATTERN, max_length=50,
                                  error_messages={"invalid": "1-50 letters, digits, spaces, '_', '.' or '-'."},
                                  **kwargs)


PageInput = OffsetPageInput  # seed 003's skip/limit, shared with the other apps' lists


# --- FAQs ---------------------------------------------------------------------------------------------


class FAQListInput(PageInput):
    category = serializers.CharField(max_length=50, required=False, allow_blank=True)
    include_unpublished = serializers.BooleanField(required=False, default=False,
                                                   help_text="Staff only: list unpublished FAQs too.")


class FAQSearchInput(serializers.Serializer):
    q = serializers.CharField(max_length=500)
    limit = serializers.IntegerField(min_value=1, max_value=50, required=False, default=5)
    category = serializers.CharField(max_length=50, required=False, allow_blank=True)
    min_score = serializers.FloatField(min_value=-1.0, max_value=1.0, required=False, default=FAQ_SEARCH_MIN_SCORE)


class FAQInput(serializers.Serializer):
    question = fields.TextField(max_length=500)
    answer = fields.TextField(max_length=10000)
    category = category_field(required=False, default="general")
    published = serializers.BooleanField(required=False, default=True)
    order = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000, required=False, default=0)


class FAQOutput(serializers.ModelSerializer):
    class Meta:
        model = FAQ
        fields = ["id", "question", "answer", "category", "view_count", "published", "order",
                  "created_at", "updated_at"]
        read_only_fields = fields


class FAQSearchOutput(FAQOutput):
    score = serializers.FloatField(read_only=True)

    class Meta(FAQOutput.Meta):
        fields = [*FAQOutput.Meta.fields, "score"]
        read_only_fields = fields


# --- customer logs ----------------------------------------------------------------------------------


class LogFilterInput(PageInput):
    status = serializers.ChoiceField(choices=CustomerLog.Status.choices, required=False, allow_blank=True)
    category = serializers.CharField(max_length=50, required=False, allow_blank=True)
    priority = serializers.ChoiceField(choices=CustomerLog.Priority.choices, required=False, allow_blank=True)
    hours = serializers.IntegerField(min_value=1, max_value=MAX_HOURS, required=False, default=24)


class HoursInput(serializers.Serializer):
    hours = serializers.IntegerField(min_value=1, max_value=MAX_HOURS, required=False, default=24)


class TrendingInput(HoursInput):
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False, default=10)


class LogCreateInput(serializers.Serializer):
    title = fields.TextField(max_length=200)
    description = fields.TextField(max_length=10000, required=False, allow_blank=True, default="")
    log_type = serializers.ChoiceField(choices=CustomerLog.LogType.choices, required=False,
                                       default=CustomerLog.LogType.INQUIRY)
    priority = serializers.ChoiceField(choices=CustomerLog.Priority.choices, required=False,
                                       default=CustomerLog.Priority.MEDIUM)
    category = category_field(required=False, default="general")


class LogUpdateInput(serializers.Serializer):
    title = fields.TextField(max_length=200, required=False)
    description = fields.TextField(max_length=10000, required=False, allow_blank=True)
    log_type = serializers.ChoiceField(choices=CustomerLog.LogType.choices, required=False)
    priority = serializers.ChoiceField(choices=CustomerLog.Priority.choices, required=False)
    category = category_field(required=False)
    status = serializers.ChoiceField(choices=CustomerLog.Status.choices, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                {"non_field_errors": ["Send at least one of: " + ", ".join(self.fields) + "."]})
        return attrs


class LogOutput(serializers.ModelSerializer):
    user_id = serializers.CharField(read_only=True)

    class Meta:
        model = CustomerLog
        fields = ["id", "user_id", "title", "description", "log_type", "status", "priority", "category",
                  "conversation_id", "created_at", "updated_at", "resolved_at"]
        read_only_fields = fields


class LogSummaryOutput(serializers.Serializer):
    timeframe_hours = serializers.IntegerField()
    total_logs = serializers.IntegerField()
    status_breakdown = serializers.DictField(child=serializers.IntegerField())
    category_breakdown = serializers.DictField(child=serializers.IntegerField())
    priority_breakdown = serializers.DictField(child=serializers.IntegerField())


class TrendingOutput(serializers.Serializer):
    issue = serializers.CharField()
    count = serializers.IntegerField()


# --- chatbots (seed 002) ------------------------------------------------------------------------------


class ChatbotInput(serializers.Serializer):
    name = fields.TextField(max_length=100)
    llm_endpoint_url = serializers.CharField(max_length=2048, required=False, allow_blank=True, allow_null=True,
                                             default="")
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    system_prompt = fields.TextField(max_length=8000, required=False, allow_blank=True, default="",
                                          trim_whitespace=False)
    owner_id = serializers.CharField(max_length=40, required=False,
                                     help_text="Admins only: create the chatbot for this user.")
    team_id = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True,
                                    help_text="Share with this team (you need its admin role); null or \"\" "
                                              "stops sharing; left out, sharing stays as it is.")

    def validate_llm_endpoint_url(self, value):
        return value or ""


class ChatbotOutput(serializers.ModelSerializer):
    owner_id = serializers.CharField(read_only=True)
    team_id = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = Chatbot
        fields = ["id", "name", "owner_id", "team_id", "llm_endpoint_url", "model", "system_prompt", "created_at",
                  "updated_at"]
        read_only_fields = fields


class ChatbotKeyCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, default="default")


class ChatbotKeyOutput(serializers.ModelSerializer):
    """A key as listed: masked, never the hash."""

    key_id = serializers.CharField(source="id", read_only=True)
    chatbot_id = serializers.CharField(read_only=True)
    masked_key = serializers.CharField(source="masked", read_only=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ChatbotAPIKey
        fields = ["id", "key_id", "chatbot_id", "name", "prefix", "masked_key", "revoked", "is_active",
                  "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ChatbotKeyCreatedOutput(ChatbotKeyOutput):
    api_key = serializers.CharField(read_only=True)
    message = serializers.CharField(read_only=True)

    class Meta(ChatbotKeyOutput.Meta):
        fields = ["api_key", "message", *ChatbotKeyOutput.Meta.fields]
        read_only_fields = fields


class DbStatusOutput(serializers.Serializer):
    status = serializers.CharField(help_text="`connected` or `disconnected`.")
    database = serializers.CharField()
    engine = serializers.CharField()
    latency_ms = serializers.FloatField(allow_null=True)
    users_count = serializers.IntegerField(required=False)
    chatbots_count = serializers.IntegerField(required=False)
    api_keys_count = serializers.IntegerField(required=False)
    record_counts = serializers.DictField(child=serializers.IntegerField())
    timestamp = serializers.DateTimeField(required=False)
