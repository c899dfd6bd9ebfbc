"""Runtime settings as every layer reads them: :func:`setting` asks the runtime store
(``accounts.runtime``, which registers itself at start-up) and falls back to Django settings.

This module imports no app, so the lowest layer (rate limits, middleware) can read values an
operator changes at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

_source: Callable[[str], Any] | None = None


def register(source: Callable[[str], Any]) -> None:
    """Install the runtime store: ``source(name)`` returns a setting's current value."""
    global _source
    _source = source


def setting(name: str) -> Any:
    """The current value of runtime setting ``name`` (lower case, e.g. ``rate_limit_per_minute``)."""
    if _source is not None:
        return _source(name)
    return getattr(settings, name.upper())
