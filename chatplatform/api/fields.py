"""Input fields that do not coerce types.

DRF's ``CharField`` turns ``123`` into ``"123"`` and its number fields accept ``"0.7"`` and
``true``; the seeds' own validators (pydantic) refuse a number as text, and a client that sends the
wrong type has a bug it should hear about. Free text takes JSON strings only; generation
parameters take JSON numbers only. Identifiers stay lenient (seed 003 sends ``conversation_id: 123``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework import serializers

from chatplatform.api.exceptions import AppError


class TextField(serializers.CharField):
    """A string, never a number, boolean, list or object (422 "Not a valid string.")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class NumberField(serializers.FloatField):
    """A JSON number (int or float), never a string or boolean."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class IntegerField(serializers.IntegerField):
    """A JSON integer (``150`` or ``150.0``), never a string, boolean or fraction."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, (int, float)) or (
                isinstance(data, float) and not data.is_integer()):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictInput(serializers.Serializer):
    """Refuses fields it does not know (422 naming them), so nothing sent is silently ignored;
    ``unknown_message`` is what each gets."""

    unknown_message = "Unknown field."

    def validate(self, attrs):
        unknown = set(getattr(self, "initial_data", {}) or {}) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({k: [self.unknown_message] for k in sorted(unknown)})
        return attrs


class KnownFieldsInput(serializers.Serializer):
    """A request body (or a nested object of one) whose unknown fields are a 400 naming them
    (``UNSUPPORTED_FIELD``, see :func:`refuse_unsupported`), refused before anything is validated;
    a nested one names them under its own field (``model_parameters.temprature``). ``transport_fields``:
    names the caller reads itself (a WebSocket frame's ``type`` and ``id``)."""

    transport_fields: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            prefix = f"{self.field_name}." if getattr(self, "field_name", None) else ""
            refuse_unsupported((f"{prefix}{name}" for name in set(data) - set(self.transport_fields)),
                               (f"{prefix}{name}" for name in self.fields), what="field", code="UNSUPPORTED_FIELD")
        return super().to_internal_value(data)


def refuse_unsupported(given: Iterable[str], allowed: Iterable[str], *, what: str = "query parameter",
                       code: str = "UNSUPPORTED_PARAMETER") -> None:
    """A 400 naming each of ``given`` not in ``allowed`` (never silently dropped)."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise AppError(f"Unsupported {what}: {', '.join(unknown)}.", status_code=400, code=code,
                       details={name: [f"Unsupported {what}."] for name in unknown})


def validated_known(serializer_class: type[serializers.Serializer], data: Any, *, what: str = "query parameter",
                    code: str = "UNSUPPORTED_PARAMETER") -> dict:
    """``data`` (query parameters, a form or a JSON object) validated by ``serializer_class``; a name
    it does not know is a 400 naming it (see :func:`refuse_unsupported`)."""
    refuse_unsupported(data.keys() if hasattr(data, "keys") else (), serializer_class().fields, what=what, code=code)
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
