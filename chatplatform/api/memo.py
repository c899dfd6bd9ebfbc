"""Values kept in process, dropped in every worker at once when what they were read from changes.

A :class:`SharedVersionMemo` remembers what ``load()`` returned for a key, tagged with a *version*:
a random token in the shared cache (Redis in production) that :meth:`~SharedVersionMemo.invalidate`
replaces, now and again when the surrounding transaction commits. Each lookup reads the version,
so after a change every worker's next lookup loads again instead of waiting for its entry to
expire; the expiry (``ttl()`` seconds, 0 turns the memo off) only bounds changes made behind the
application's back (SQL by hand). Without the shared cache (Redis away) nothing is remembered and
every lookup loads. ``None`` is never kept.

Used for verified credentials (``accounts.credential_cache``) and webhook subscriptions
(``knowledge.webhooks``): a query per request each, before.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ENTRIES = 10_000  # per worker and memo; the whole map is dropped when it is full
DEFAULT_SECONDS = 30.0  # how long an entry lives when the memo's owner sets no expiry of its own


class SharedVersionMemo:
    def __init__(self, name: str, ttl: Callable[[], float] = lambda: DEFAULT_SECONDS) -> None:
        self.name = name
        self.version_key = f"{name}:version"
        self.ttl = ttl
        self._entries: dict[str, tuple[str, float, Any]] = {}

    def _version(self) -> str | None:
        """The shared version (made when missing, e.g. after Redis restarted empty), or None when
        the shared cache cannot be read."""
        try:
            version = cache.get(self.version_key)
            if version is None:
                cache.add(self.version_key, secrets.token_hex(8), timeout=None)
                version = cache.get(self.version_key)
            return version
        except Exception:  # Redis away: nothing is remembered until it answers again
            return None

    def remembered(self, key: str, load: Callable[[], T | None]) -> T | None:
        """What ``load()`` gave for ``key`` while the version is unchanged and the entry is younger
        than ``ttl()``; else ``load()`` again. The caller must not change the returned object:
        other requests get the same one."""
        ttl = self.ttl()
        version = self._version() if ttl > 0 else None
        if version is None:
            return load()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version and entry[1] > now:
            return entry[2]
        # The version was read before loading: a change committed meanwhile replaces it, so a value
        # loaded from the old rows is never served after that change.
        value = load()
        if value is not None:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (version, now + ttl, value)
        return value

    def _new_version(self) -> None:
        self._entries.clear()
        try:
            cache.set(self.version_key, secrets.token_hex(8), timeout=None)
        except Exception as exc:  # the other workers cannot read the version either: they load
            logger.warning("Could not publish a change of %s (%s); other workers' entries expire in %ss",
                           self.name, type(exc).__name__, self.ttl())

    def invalidate(self) -> None:
        """Forget every entry, in every worker: now, and again when the surrounding transaction
        commits (a value loaded from the rows before the commit must not be kept)."""
        self._new_version()
        transaction.on_commit(self._new_version)

    def _changed(self, sender, **kwargs) -> None:
        self.invalidate()

    def watch(self, *models) -> None:
        """Invalidate on every save and delete of ``models``."""
        from django.db.models.signals import post_delete, post_save

        for model in models:
            uid = f"{self.name}-{model._meta.label}"
            post_save.connect(self._changed, sender=model, weak=False, dispatch_uid=f"{uid}-save")
            post_delete.connect(self._changed, sender=model, weak=False, dispatch_uid=f"{uid}-delete")
