"""Request and response shapes of the document routes (seed 004) and of RAG citations."""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from chatplatform.api.pagination import MAX_OFFSET
from knowledge.models import Document

METADATA_MAX_BYTES = 16 * 1024
CONTENT_MAX_CHARS = 4 * 1024 * 1024


def _bounded_metadata(value: dict) -> dict:
    if len(json.dumps(value)) > METADATA_MAX_BYTES:
        raise serializers.ValidationError(f"At most {METADATA_MAX_BYTES} bytes of JSON.")
    return value


class MetadataField(serializers.DictField):
    """A JSON object; in a multipart form, a JSON-encoded string."""

    def get_value(self, dictionary: Any) -> Any:
        return dictionary.get(self.field_name, serializers.empty)  # not DRF's ``metadata.key`` form fields

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except ValueError as exc:
                raise serializers.ValidationError("Not valid JSON.") from exc
        return super().to_internal_value(data)


class DocumentCreateInput(serializers.Serializer):
    """JSON: the document's text in ``content`` (seed 004)."""

    title = serializers.CharField(max_length=300)
    content = serializers.CharField(trim_whitespace=False, max_length=CONTENT_MAX_CHARS)
    mime_type = serializers.CharField(max_length=100, required=False, default="text/plain")
    metadata = MetadataField(required=False, default=dict, validators=[_bounded_metadata])


class DocumentUploadInput(serializers.Serializer):
    """Multipart: a ``file`` (text, Markdown, HTML or PDF); ``title`` defaults to the file's name."""

    file = serializers.FileField(allow_empty_file=False, max_length=300)
    title = serializers.CharField(max_length=300, required=False)
    mime_type = serializers.CharField(max_length=100, required=False,
                                      help_text="Default: the part's Content-Type, else the file name's extension.")
    metadata = MetadataField(required=False, default=dict, validators=[_bounded_metadata])


class DocumentOutput(serializers.ModelSerializer):
    user_id = serializers.CharField(source="owner_id")

    class Meta:
        model = Document
        fields = ["id", "user_id", "title", "mime_type", "metadata", "status", "error", "chunk_count", "size_bytes",
                  "created_at", "updated_at"]


class DocumentListQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)
    status = serializers.ChoiceField(choices=Document.Status.choices, required=False)


class DocumentSearchInput(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    limit = serializers.IntegerField(min_value=1, max_value=50, default=5)
    document_ids = serializers.ListField(child=serializers.CharField(max_length=40), required=False,
                                         max_length=100, help_text="Only these documents (yours).")


class CitationOutput(serializers.Serializer):
    document_id = serializers.CharField()
    title = serializers.CharField()
    chunk_index = serializers.IntegerField()
    score = serializers.FloatField(help_text="Reciprocal-rank-fusion score (vector and keyword rankings).")
    snippet = serializers.CharField()


class SearchHitOutput(CitationOutput):
    similarity = serializers.FloatField(allow_null=True, help_text="Cosine similarity (null: keyword match only).")
    text = serializers.CharField()


class DocumentSearchOutput(serializers.Serializer):
    query = serializers.CharField()
    results = SearchHitOutput(many=True)
