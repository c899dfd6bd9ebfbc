"""``SparseInput`` walks only the fields a JSON body has (and those it must see when absent): what
every input serializer built on it returns, or reports, must be exactly what DRF's full walk gives.

DRF's own walk is what it does for a body that is not a plain ``dict``, so each generated body is
also validated as such (``Walked``, nested objects included) and the two outcomes compared."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from chatplatform.api.exceptions import AppError
from chatplatform.api.fields import SparseInput, _skipped_when_absent
from chats.inputs import ChatCompletionsInput, ChatData, CompletionInput, MessageFrame, ModelParametersInput
from chats.openai_inputs import OpenAIMessageInput
from chats.responses_inputs import ResponsesInput
from chats.transports.openai import OpenAIChatInput
from providers.serializers import GenerationParamsInput


class Walked(dict):
    """A JSON object SparseInput leaves to DRF's full walk (it is no plain ``dict``)."""


Walked.__name__ = "dict"  # DRF names a wrong type in its message: the same name on both sides


def walked(value):
    if isinstance(value, dict):
        return Walked({key: walked(item) for key, item in value.items()})
    if isinstance(value, list):
        return [walked(item) for item in value]
    return value


SCALARS = (st.none() | st.booleans() | st.integers(-3, 70000) | st.floats(-3, 3, allow_nan=False)
           | st.sampled_from(["", " ", "hi", "gpt-4o-mini", "user", "auto", "text", "json_object"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["type", "text", "name", "include_usage", "x"]), inner,
                                      max_size=3), max_leaves=6)
MESSAGE = st.dictionaries(
    st.sampled_from(["role", "content", "name", "tool_calls", "tool_call_id", "bogus"]),
    st.sampled_from(["user", "assistant", "system", "tool", "nobody"]) | JSON, max_size=4)


def bodies(serializer_class):
    names = sorted(serializer_class().fields) + ["not_a_field"]
    value = st.lists(MESSAGE, max_size=3) | JSON
    return st.dictionaries(st.sampled_from(names), value, max_size=6)


def outcome(serializer_class, data):
    serializer = serializer_class(data=data)
    try:
        valid = serializer.is_valid()
    except AppError as exc:
        return "refused", exc.status_code, str(exc), exc.details
    return ("valid", dict(serializer.validated_data)) if valid else ("invalid", serializer.errors)


INPUTS = [OpenAIChatInput, OpenAIMessageInput, ResponsesInput, ChatCompletionsInput, CompletionInput, ChatData,
          MessageFrame, ModelParametersInput, GenerationParamsInput]


@pytest.mark.parametrize("serializer_class", INPUTS, ids=lambda c: c.__name__)
def test_the_sparse_walk_returns_and_reports_what_drf_walking_every_field_does(serializer_class):
    assert issubclass(serializer_class, SparseInput)

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(bodies(serializer_class))
    def check(body):
        assert outcome(serializer_class, body) == outcome(serializer_class, walked(body))

    check()


def test_a_class_of_ours_handling_absence_is_still_walked():
    class Remembers(serializers.CharField):
        def validate_empty_values(self, data):  # absent means "default", its own way
            return (True, "remembered") if data is serializers.empty else super().validate_empty_values(data)

    class Body(SparseInput):
        plain = serializers.CharField(required=False)
        mine = Remembers(required=False)

    assert not _skipped_when_absent(Body().fields["mine"]) and _skipped_when_absent(Body().fields["plain"])
    serializer = Body(data={})
    assert serializer.is_valid() and serializer.validated_data == {"mine": "remembered"}


def test_required_fields_and_defaults_are_seen_when_absent():
    class Body(SparseInput):
        needed = serializers.CharField()
        flag = serializers.BooleanField(default=False)
        optional = serializers.IntegerField(required=False)

    serializer = Body(data={"optional": 3})
    assert not serializer.is_valid()
    assert serializer.errors == {"needed": ["This field is required."]}
    serializer = Body(data={"needed": "x"})
    assert serializer.is_valid() and serializer.validated_data == {"needed": "x", "flag": False}
