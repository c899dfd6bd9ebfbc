"""Values kept in process, dropped in every worker at once when what they were read from changes.

A :class:`SharedVersionMemo` remembers what ``load()`` returned for a key, tagged with a *version*:
a random token in the shared cache (Redis in production) that :meth:`~SharedVersionMemo.invalidate`
replaces, now and again when the surrounding transaction commits. Each lookup reads the version,
so after a change every worker's next lookup loads again instead of waiting for its entry to
expire; the expiry (``ttl()`` seconds, 0 turns the memo off) only bounds changes made behind the
application's back (SQL by hand). Without the shared cache (Redis away) nothing is remembered and
every lookup loads. ``None`` is never kept.

Used for verified credentials (``accounts.credential_cache``), webhook subscriptions
(``knowledge.webhooks``) and whether a user has memories (``knowledge.memories_selectors``): a query
per request each, before.

Within a request (from :func:`begin_request`, which the request-context middleware calls) the versions
of every memo are read together, in one round trip, at the first lookup, and that reading serves the
request's later lookups for up to ``SNAPSHOT_SECONDS``: a persisted chat turn looks up credentials,
memories and webhook subscriptions (once per event it emits), four reads before. A change this
request makes itself is seen at once; one made elsewhere during the request, at its next reading.
Each WebSocket frame counts as a request; outside one (Celery tasks, commands) each lookup reads its
own version.
"""

from __future__ import annotations

import contextvars
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
SNAPSHOT_SECONDS = 1.0  # how long one reading of the versions serves a request's lookups

_READ_AT = "\0read_at"  # the snapshot's own entry: when its versions were read (monotonic)
# The versions read for the request being served, or None outside one: a one-item list shared by
# everything the request runs (its worker threads and tasks get a copy of the context, hence the same
# list), holding a dict that is replaced whole, never changed, so a thread reading it meanwhile
# sees one reading or the other.
_snapshot: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar("memo_versions",
                                                                                       default=None)
# The shared keys read together in a request: each memo's version (made when missing) and the
# version numbers other modules register with ``watch_shared_key`` (left missing).
_version_keys: dict[str, bool] = {}


def begin_request() -> contextvars.Token:
    """Serve the memos' lookups from here on (one request) from one reading of their versions,
    until :func:`end_request` with the token returned."""
    return _snapshot.set([{}])


def end_request(token: contextvars.Token) -> None:
    _snapshot.reset(token)


def watch_shared_key(key: str, *, make_missing: bool = False) -> None:
    """Read ``key`` of the shared cache with the memos' versions (see :func:`shared_value`)."""
    _version_keys.setdefault(key, make_missing)


def _read(keys: list[str]) -> dict[str, Any]:
    values = cache.get_many(keys)
    for key in keys:
        if key in values:
            continue
        if _version_keys.get(key):  # a memo's version: made, by whichever worker comes first
            cache.add(key, secrets.token_hex(8), timeout=None)
            values[key] = cache.get(key)
        else:
            values[key] = None
    return values


def shared_value(key: str) -> Any:
    """The shared cache's ``key`` (registered with :func:`watch_shared_key`; None when missing).
    In a request, read with every other registered key in one round trip and kept for the rest of
    the request while younger than ``SNAPSHOT_SECONDS``. Raises when the shared cache cannot be read."""
    watch_shared_key(key)
    holder = _snapshot.get()
    now = time.monotonic()
    if holder is None:
        return _read([key]).get(key)
    snapshot = holder[0]
    if key in snapshot and snapshot[_READ_AT] + SNAPSHOT_SECONDS > now:
        return snapshot[key]
    values = _read(list(_version_keys))
    holder[0] = {**values, _READ_AT: now}
    return values.get(key)


def _remember_own_change(key: str, value: Any) -> None:
    """This request changed ``key`` itself: its later lookups see the change at once."""
    holder = _snapshot.get()
    if holder and holder[0]:
        holder[0] = {**holder[0], key: value}


def _forget_snapshot() -> None:
    holder = _snapshot.get()
    if holder is not None:
        holder[0] = {}


class SharedVersionMemo:
    def __init__(self, name: str, ttl: Callable[[], float] = lambda: DEFAULT_SECONDS) -> None:
        self.name = name
        self.version_key = f"{name}:version"
        self.ttl = ttl
        self._entries: dict[str, tuple[str, float, Any]] = {}
        watch_shared_key(self.version_key, make_missing=True)

    def _version(self) -> str | None:
        """The shared version (made when missing, e.g. after Redis restarted empty), or None when
        the shared cache cannot be read."""
        try:
            return shared_value(self.version_key)
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
        version = secrets.token_hex(8)
        try:
            cache.set(self.version_key, version, timeout=None)
            _remember_own_change(self.version_key, version)
        except Exception as exc:  # the other workers cannot read the version either: they load
            _forget_snapshot()  # read again at the next lookup
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
