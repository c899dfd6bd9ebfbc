"""Verified credentials kept in process for a few seconds, dropped everywhere on any change.

Looking an API key or a token's session up cost a query on every request (a quarter of a
``/v1/chat/completions`` request's CPU in the profile, ``bench/results.md``). Here a credential that
checked out is remembered per worker for ``CREDENTIAL_CACHE_SECONDS`` (0 turns this off), tagged
with the shared *credentials version*: a token in the shared cache (Redis in production) that every
change to an API key, a session or a user replaces (:func:`invalidate`, wired to the models' save
and delete signals and called by the services that update rows in bulk). Each lookup reads the
version, so a revoked key, an ended session or a deactivated user is refused by every worker on its
next request, not after the entry expires. The expiry only bounds edits made behind the
application's back (SQL by hand).

Without the shared cache (Redis away) nothing is remembered and every request asks the database,
as before. Only successful checks are kept: a wrong, unknown or revoked credential is looked up
every time.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

VERSION_KEY = "credentials:version"
MAX_ENTRIES = 10_000  # per worker; the whole map is dropped when it is full

T = TypeVar("T")
_entries: dict[str, tuple[str, float, object]] = {}


def _version() -> str | None:
    """The shared credentials version (made when missing, e.g. after Redis restarted empty), or
    None when the shared cache cannot be read."""
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            cache.add(VERSION_KEY, secrets.token_hex(8), timeout=None)
            version = cache.get(VERSION_KEY)
        return version
    except Exception:  # Redis away: nothing is remembered until it answers again
        return None


def remembered(key: str, load: Callable[[], T | None]) -> T | None:
    """The value ``load()`` gave for ``key`` while the credentials version is unchanged and the
    entry is younger than ``CREDENTIAL_CACHE_SECONDS``; else ``load()`` again (kept when not None).
    The caller must not change the returned object: other requests get the same one."""
    ttl = settings.CREDENTIAL_CACHE_SECONDS
    version = _version() if ttl > 0 else None
    if version is None:
        return load()
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and entry[0] == version and entry[1] > now:
        return entry[2]  # type: ignore[return-value]
    # The version was read before the lookup: a change committed meanwhile replaces it, so an entry
    # loaded from the old rows is never served after that change.
    value = load()
    if value is not None:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[key] = (version, now + ttl, value)
    return value


def _new_version() -> None:
    _entries.clear()
    try:
        cache.set(VERSION_KEY, secrets.token_hex(8), timeout=None)
    except Exception as exc:  # the other workers cannot read the version either: they ask the database
        logger.warning("Could not publish a credentials change (%s); other workers' entries expire in %ss",
                       type(exc).__name__, settings.CREDENTIAL_CACHE_SECONDS)


def invalidate() -> None:
    """Forget every remembered credential, in every worker: now, and again when the surrounding
    transaction commits (a lookup that read the rows before the commit must not be kept)."""
    _new_version()
    transaction.on_commit(_new_version)


def _changed(sender, **kwargs) -> None:
    invalidate()


def watch(*models) -> None:
    """Invalidate on every save and delete of ``models`` (API keys, sessions, users)."""
    from django.db.models.signals import post_delete, post_save

    for model in models:
        post_save.connect(_changed, sender=model, dispatch_uid=f"credentials-{model._meta.label}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"credentials-{model._meta.label}-delete")
