"""Input serializers built once per thread: each instance still validates on its own."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from rest_framework import exceptions, serializers

from chatplatform.api.asyncviews import input_serializer, output_data, validated
from chatplatform.api.fields import StrictInput, TextField


class Part(serializers.Serializer):
    text = TextField(max_length=5)


class Body(StrictInput):
    name = TextField()
    parts = Part(many=True, required=False)


def test_fields_are_copied_once_per_class_and_thread():
    first, second = input_serializer(Body, {"name": "a"}), input_serializer(Body, {"name": "b"})

    assert first.fields["name"] is second.fields["name"]
    assert second.fields["name"].parent is second  # bound to the newest instance
    assert first.fields["name"] is not Body._declared_fields["name"]  # a copy: the class is untouched
    other: dict = {}
    thread = threading.Thread(target=lambda: other.update(field=input_serializer(Body, {}).fields["name"]))
    thread.start()
    thread.join()
    assert other["field"] is not first.fields["name"]


def test_each_instance_has_its_own_data_and_errors():
    good = validated(Body, {"name": "ok", "parts": [{"text": "hi"}]})
    with pytest.raises(exceptions.ValidationError) as bad:
        validated(Body, {"name": 1, "parts": [{"text": "too long"}]})
    with pytest.raises(exceptions.ValidationError) as unknown:
        validated(Body, {"name": "ok", "extra": True})
    again = validated(Body, {"name": "fine"})

    assert good == {"name": "ok", "parts": [{"text": "hi"}]}
    assert set(bad.value.detail) == {"name", "parts"}
    assert set(unknown.value.detail) == {"extra"}
    assert again == {"name": "fine"}


def test_serializers_that_build_their_own_fields_keep_drf_s_way():
    class Dynamic(serializers.Serializer):
        def get_fields(self):
            return {"x": serializers.IntegerField()}

    a, b = input_serializer(Dynamic, {"x": 1}), input_serializer(Dynamic, {"x": 2})

    assert a.fields["x"] is not b.fields["x"]


class Reply(serializers.Serializer):
    text = serializers.CharField()
    at = serializers.DateTimeField()
    usage = Part()


def test_output_data_shares_fields_and_renders_each_instance_alone():
    at = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    first = output_data(Reply, {"text": "one", "at": at, "usage": {"text": "a"}})
    second = output_data(Reply, {"text": "two", "at": at, "usage": {"text": "b"}})

    assert first == {"text": "one", "at": "2026-12-03T10:00:00Z", "usage": {"text": "a"}}
    assert second == {"text": "two", "at": "2026-12-03T10:00:00Z", "usage": {"text": "b"}}
    assert first.serializer.fields["text"] is second.serializer.fields["text"]  # copied once
    assert second.serializer.fields["text"].parent is second.serializer
