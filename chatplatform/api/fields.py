"""Input fields that do not coerce types.

DRF's ``CharField`` turns ``123`` into ``"123"`` and its number fields accept ``"0.7"`` and
``true``; the seeds' own validators (pydantic) refuse a number as text, and a client that sends the
wrong type has a bug it should hear about. Free text takes JSON strings only; generation
parameters take JSON numbers only. Identifiers stay lenient (seed 003 sends ``conversation_id: 123``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from rest_framework import serializers
from rest_framework.fields import empty

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


# What DRF does with a field a JSON body leaves out, in the methods it calls for it: the value is
# ``empty`` (``get_value``), and ``run_validation`` / ``validate_empty_values`` / ``get_default``
# then raise ``SkipField`` for an optional field without a default.
_ABSENT_PATH = ("get_value", "run_validation", "validate_empty_values", "get_default")


def _skipped_when_absent(field: serializers.Field) -> bool:
    """Whether DRF would skip ``field`` when a body leaves it out: optional, no default, and every
    method on that path DRF's own (a class of ours overriding one is walked as DRF does)."""
    if field.read_only or field.required or field.default is not empty:
        return False
    for name in _ABSENT_PATH:
        owner = next(klass for klass in type(field).__mro__ if name in vars(klass))
        if not owner.__module__.startswith("rest_framework."):
            return False
    return True


class SparseInput(serializers.Serializer):
    """An input serializer that walks only the fields a JSON body has, and those it must see when
    absent (required ones, ones with a default, any whose absence a class of ours handles).

    DRF's ``to_internal_value`` runs every writable field, and an optional one the body leaves out
    only ends in ``SkipField``: a ``/v1/chat/completions`` body with two keys walked 32 fields
    (``bench/results.md``, eighth pass). Leaving those out changes nothing DRF returns or reports;
    a body that is no plain ``dict`` (HTML form input) is walked DRF's way."""

    def to_internal_value(self, data: Any) -> Any:
        self._given = data if type(data) is dict else None
        try:
            return super().to_internal_value(data)
        finally:
            self._given = None

    @property
    def _writable_fields(self):
        given = self.__dict__.get("_given")
        shape = _shape(type(self), self.fields) if given is not None else None
        if shape is None:
            yield from super()._writable_fields
            return
        for name, field in self.fields.fields.items():  # the BindingDict's own dict: no ABC walk
            if not field.read_only and (name in given or name not in shape.skipped):
                yield field

    def _read_only_defaults(self):
        """DRF's, skipped for a class without read-only fields (every input here): it walked them all."""
        shape = _shape(type(self), self.fields)
        if shape is not None and not shape.has_read_only:
            return {}
        return super()._read_only_defaults()


class _Shape(NamedTuple):
    skipped: frozenset[str]  # the names of its _skipped_when_absent fields
    has_read_only: bool


_shapes: dict[type, _Shape] = {}


def _shape(serializer_class: type[serializers.Serializer], fields) -> _Shape | None:
    """What :class:`SparseInput` needs of ``serializer_class``'s fields, worked out once per class;
    None (DRF's way) for a class that builds its fields itself."""
    if serializer_class.get_fields is not serializers.Serializer.get_fields:
        return None
    shape = _shapes.get(serializer_class)
    if shape is None:
        shape = _shapes[serializer_class] = _Shape(
            frozenset(name for name, field in fields.items() if _skipped_when_absent(field)),
            any(field.read_only for field in fields.values()))
    return shape


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
