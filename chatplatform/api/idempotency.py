"""``Idempotency-Key`` for chat POSTs: a retry with the same key returns the first result and makes
no second provider call.

Keys are scoped to the caller (user, API key or client address) and the route, kept for 24 hours
in the shared cache (Redis in production). A retry while the first request is still running gets
409; the same key with a different body gets 422.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import cache

from chatplatform.api.exceptions import AppError
from chatplatform.api.net import client_ip

TTL_SECONDS = 24 * 3600
LOCK_SECONDS = 600
MAX_KEY_LENGTH = 255


@dataclass
class Idempotency:
    key: str | None
    fingerprint: str = ""

    @property
    def active(self) -> bool:
        return self.key is not None


def _scope(request, user) -> str:
    if getattr(user, "pk", None):
        return f"user:{user.pk}"
    return f"ip:{client_ip(request)}"


def requested(request) -> bool:
    """Whether the request carries an ``Idempotency-Key``."""
    return bool(request.headers.get("Idempotency-Key"))


def idempotency_for(request, user, body: Any) -> Idempotency:
    """Read the header (None when absent). 422 if the key is too long."""
    raw = request.headers.get("Idempotency-Key")
    if not raw:
        return Idempotency(None)
    if len(raw) > MAX_KEY_LENGTH:
        raise AppError("Idempotency-Key is too long.", status_code=422,
                       details={"Idempotency-Key": [f"At most {MAX_KEY_LENGTH} characters."]})
    digest = hashlib.sha256(f"{_scope(request, user)}|{request.path}|{raw}".encode()).hexdigest()
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return Idempotency(f"idem:{digest}", fingerprint)


def begin(idem: Idempotency) -> dict | None:
    """The stored result of an earlier request with this key, or None after taking the lock.

    Raises 409 while the earlier request is still running, 422 if the body differs."""
    if not idem.active:
        return None
    stored = cache.get(idem.key)
    if stored is not None:
        if stored.get("fingerprint") != idem.fingerprint:
            raise AppError("This Idempotency-Key was used with a different request body.", status_code=422,
                           code="IDEMPOTENCY_KEY_REUSED", details={"Idempotency-Key": ["Used with another body."]})
        return stored
    if not cache.add(f"{idem.key}:lock", 1, timeout=LOCK_SECONDS):
        raise AppError("A request with this Idempotency-Key is still in progress.", status_code=409,
                       code="IDEMPOTENCY_IN_PROGRESS")
    return None


def finish(idem: Idempotency, *, status: int, body: Any = None, stream_id: str | None = None) -> None:
    """Store the outcome (success or client error) and release the lock; 5xx are not stored so
    the client may retry them."""
    if not idem.active:
        return
    if status < 500:
        cache.set(idem.key, {"fingerprint": idem.fingerprint, "status": status, "body": body,
                             "stream_id": stream_id}, timeout=TTL_SECONDS)
    cache.delete(f"{idem.key}:lock")


_abegin = sync_to_async(begin)
_afinish = sync_to_async(finish)


async def abegin(idem: Idempotency) -> dict | None:
    """:func:`begin` from async code (a thread only when there is a key to look up)."""
    return await _abegin(idem) if idem.active else None


async def afinish(idem: Idempotency, *, status: int, body: Any = None, stream_id: str | None = None) -> None:
    """:func:`finish` from async code (a thread only when there is a key to keep)."""
    if idem.active:
        await _afinish(idem, status=status, body=body, stream_id=stream_id)
