"""Shared counters in the cache (Redis in production): rate-limit windows, budgets, statistics."""

from __future__ import annotations

from django.core.cache import cache


def counter_add(key: str, amount: int = 1, ttl: int | None = None) -> int:
    """Atomically add ``amount`` to the counter ``key`` and return its new value; a missing counter
    is created with ``ttl`` seconds to live (None: no expiry). One round trip once it exists."""
    try:
        return cache.incr(key, amount)
    except ValueError:  # no such counter yet
        if cache.add(key, amount, ttl):
            return amount
        return cache.incr(key, amount)  # another request created it meanwhile
