"""The runtime configuration store: settings an operator changes while the server runs.

Each setting has an environment default (Django settings, upper case). An override is a
:class:`~accounts.models.RuntimeSetting` row, written by :func:`runtime_update` (the operator
route ``PUT /api/v1/admin/system/config``) or the Django admin. Every write also publishes the
whole effective configuration with a new version number in the shared cache (Redis in
production); each worker keeps the values in process and looks at the shared entry at most every
``RUNTIME_CONFIG_RECHECK_SECONDS``, so a change is effective everywhere within about a second,
without a restart and without a database query per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from accounts.models import RuntimeSetting
from chatplatform.api.exceptions import AppError

logger = logging.getLogger(__name__)

SHARED_KEY = "runtime:config"
VERSION_KEY = "runtime:config:version"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Definition:
    name: str
    kind: type
    minimum: float = 0
    choices: tuple[str, ...] = ()
    help: str = ""

    def default(self) -> Any:
        return getattr(settings, self.name.upper())

    def clean(self, value: Any) -> Any:
        """The value, checked; raises ``ValueError`` with a reason."""
        if self.choices:
            if not isinstance(value, str) or value.upper() not in self.choices:
                raise ValueError(f"One of {', '.join(self.choices)}.")
            return value.upper()
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("A number." if self.kind is float else "An integer.")
        if self.kind is int and int(value) != value:
            raise ValueError("An integer.")
        if value < self.minimum:
            raise ValueError(f"At least {self.minimum:g}.")
        return self.kind(value)


DEFINITIONS: dict[str, Definition] = {d.name: d for d in (
    Definition("log_level", str, choices=LOG_LEVELS, help="The application's log level."),
    Definition("rate_limit_per_minute", int, 1, help="Requests per minute per user or API key."),
    Definition("rate_limit_per_hour", int, 1, help="Requests per hour per user or API key."),
    Definition("anonymous_rate_limit_per_minute", int, 1, help="Requests per minute per address, anonymous."),
    Definition("max_tokens", int, 0, help="A cap on any request's max_tokens (0: the model's own)."),
    Definition("tokens_per_minute", int, 0, help="Tokens per minute per user, API key and chatbot key (0: none)."),
    Definition("daily_token_budget", int, 0, help="Tokens per UTC day per user, API key and chatbot key (0: none)."),
    Definition("monthly_token_budget", int, 0, help="Tokens per UTC month (0: none)."),
    Definition("daily_cost_budget", float, 0, help="USD per UTC day per user, API key and chatbot key (0: none)."),
    Definition("monthly_cost_budget", float, 0, help="USD per UTC month (0: none)."),
)}


class _Local:
    values: dict[str, Any] | None = None
    version: int = -1
    checked: float = 0.0
    lock = threading.Lock()


def _overrides() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for row in RuntimeSetting.objects.filter(key__in=DEFINITIONS):
        try:
            values[row.key] = DEFINITIONS[row.key].clean(row.value)
        except ValueError:
            logger.warning("Ignoring invalid runtime setting %s=%r", row.key, row.value)
    return values


def _publish() -> dict[str, Any]:
    """Write the effective configuration with a new version to the shared cache."""
    values = _overrides()
    try:
        version = cache.incr(VERSION_KEY)
    except ValueError:
        cache.add(VERSION_KEY, 0, timeout=None)
        version = cache.incr(VERSION_KEY)
    cache.set(SHARED_KEY, {"version": version, "values": values}, timeout=None)
    return values


def _apply(overrides: dict[str, Any]) -> None:
    level = overrides.get("log_level") or settings.LOG_LEVEL
    if logging.getLogger().level != logging.getLevelName(level):
        logging.getLogger().setLevel(level)


def _load() -> dict[str, Any]:
    now = time.monotonic()
    local = _Local
    if local.values is not None and now - local.checked < settings.RUNTIME_CONFIG_RECHECK_SECONDS:
        return local.values
    with local.lock:
        try:
            entry = cache.get(SHARED_KEY)
        except Exception:  # the shared cache is down: keep what this worker knows
            entry = None
            if local.values is not None:
                local.checked = now
                return local.values
        if entry is None:
            try:
                values = _publish()
                entry = cache.get(SHARED_KEY) or {"version": 0, "values": values}
            except Exception:  # no database here (an event loop) or no cache: defaults until the next look
                return local.values or {}
        if entry["version"] != local.version or local.values is None:
            values = dict(entry["values"])
            _apply(values)
            local.values, local.version = values, entry["version"]
        local.checked = now
        return local.values


def runtime_value(name: str) -> Any:
    """The current value of one setting (see :data:`DEFINITIONS`)."""
    overrides = _load()
    return overrides[name] if name in overrides else getattr(settings, name.upper())


def runtime_values() -> dict[str, Any]:
    """Every setting's current value."""
    overrides = _load()
    return {name: overrides.get(name, d.default()) for name, d in DEFINITIONS.items()}


def runtime_validate(values: dict[str, Any]) -> dict[str, Any]:
    """Checked values, or a 400 naming every unknown or invalid field."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        definition = DEFINITIONS.get(name)
        if definition is None:
            errors[name] = ["Unknown setting."]
            continue
        try:
            cleaned[name] = definition.clean(value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        unknown = [name for name in errors if name not in DEFINITIONS]
        message = (f"Unsupported field(s): {', '.join(unknown)}." if unknown
                   else f"Invalid value(s): {', '.join(errors)}.")
        raise AppError(message, status_code=400, code="validation_error", details=errors)
    return cleaned


def runtime_update(*, values: dict[str, Any]) -> dict[str, Any]:
    """Persist ``values`` (validated) and publish them to every worker; returns the effective set."""
    cleaned = runtime_validate(values)
    with transaction.atomic():
        for name, value in cleaned.items():
            RuntimeSetting.objects.update_or_create(key=name, defaults={"value": value})
    return runtime_refresh()


def runtime_refresh() -> dict[str, Any]:
    """Publish the stored configuration now (after an edit in the Django admin, too)."""
    _publish()
    _Local.checked = 0.0
    return runtime_values()


def runtime_clear() -> None:
    """Drop every override (tests; back to the environment defaults everywhere)."""
    RuntimeSetting.objects.all().delete()
    runtime_refresh()


def runtime_reset_local() -> None:
    """Forget this process's copy (tests; a fresh worker)."""
    _Local.values, _Local.version, _Local.checked = None, -1, 0.0
    _apply({})


source: Callable[[str], Any] = runtime_value
