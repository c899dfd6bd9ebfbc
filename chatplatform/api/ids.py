"""Public identifiers: random, prefixed, never sequential (``user_…``, ``conv_…``, ``key_…``)."""

from __future__ import annotations

import secrets
import string

from django.db import models
from django.utils.deconstruct import deconstructible

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 22) -> str:
    """Return ``<prefix>_<random base62>``; 22 base62 characters carry ~131 bits."""
    # One draw of random bits, then base62 digits (secrets.choice per character cost ~4% of a
    # chat request).
    number = int.from_bytes(secrets.token_bytes(17), "big")
    digits = []
    for _ in range(length):
        number, index = divmod(number, 62)
        digits.append(_ALPHABET[index])
    return f"{prefix}_{''.join(digits)}"


@deconstructible
class PrefixedId:
    """Callable default for :class:`PublicIdField` (deconstructible so migrations can store it)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrefixedId) and other.prefix == self.prefix


class PublicIdField(models.CharField):
    """Primary key holding a random prefixed id."""

    def __init__(self, prefix: str = "obj", *args, **kwargs) -> None:
        self.prefix = prefix
        kwargs.setdefault("max_length", 40)
        kwargs["primary_key"] = True
        kwargs["editable"] = False
        kwargs["default"] = PrefixedId(prefix)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        for key in ("primary_key", "editable", "default"):
            kwargs.pop(key, None)
        return name, path, args, kwargs
