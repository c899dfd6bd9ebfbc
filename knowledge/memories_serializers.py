"""Memory input validation and output shapes (seed 004's fields)."""

from __future__ import annotations

import json

from rest_framework import serializers

from chatplatform.api import fields
from chatplatform.api.pagination import MAX_OFFSET

MAX_CONTENT_CHARS = 10_000
MAX_METADATA_BYTES = 16 * 1024
MEMORY_TYPE = r"^[a-z0-9][a-z0-9_-]{0,49}$"


def _metadata(value: dict) -> dict:
    encoded = json.dumps(value, default=str)
    if len(encoded) > MAX_METADATA_BYTES:
        raise serializers.ValidationError(f"At most {MAX_METADATA_BYTES // 1024} KB of JSON.")
    if "\\u0000" in encoded:
        raise serializers.ValidationError("Null characters are not allowed.")
    return value


def _content(value: str) -> str:
    if "\x00" in value:
        raise serializers.ValidationError("Null characters are not allowed.")
    return value


def _memory_type_field(**kwargs) -> serializers.RegexField:
    return serializers.RegexField(MEMORY_TYPE, help_text="A lowercase slug, e.g. global, preference, fact.",
                                  error_messages={"invalid": "A lowercase slug (letters, digits, _ and -)."},
                                  **kwargs)


class MemoryCreateInput(fields.StrictInput):
    content = fields.TextField(max_length=MAX_CONTENT_CHARS, validators=[_content])
    memory_type = _memory_type_field(required=False, default="global")
    importance_score = fields.NumberField(min_value=0.0, max_value=1.0, required=False, default=0.5)
    metadata = serializers.DictField(required=False, default=dict, validators=[_metadata])


class MemoryUpdateInput(fields.StrictInput):
    content = fields.TextField(max_length=MAX_CONTENT_CHARS, required=False, validators=[_content])
    memory_type = _memory_type_field(required=False)
    importance_score = fields.NumberField(min_value=0.0, max_value=1.0, required=False)
    metadata = serializers.DictField(required=False, validators=[_metadata])


class MemoryListQuery(fields.StrictInput):
    memory_type = _memory_type_field(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)


class MemorySearchInput(fields.StrictInput):
    query = fields.TextField(max_length=2000, validators=[_content])
    memory_type = _memory_type_field(required=False)
    limit = fields.IntegerField(min_value=1, max_value=100, required=False, default=10)


class MemoryOutput(serializers.Serializer):
    id = serializers.CharField()
    user_id = serializers.CharField()
    content = serializers.CharField()
    memory_type = serializers.CharField()
    importance_score = serializers.FloatField()
    metadata = serializers.DictField()
    source = serializers.CharField(help_text="user, or extracted (from a chat turn).")
    use_count = serializers.IntegerField(help_text="How many chat replies used it.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class MemorySearchResultOutput(MemoryOutput):
    score = serializers.FloatField(help_text="The blended score (similarity, importance, recency, keywords).")
    similarity = serializers.FloatField(help_text="Cosine similarity of the query and the memory (-1..1).")


class MemorySearchOutput(serializers.Serializer):
    query = serializers.CharField()
    results = MemorySearchResultOutput(many=True)
    total = serializers.IntegerField()
