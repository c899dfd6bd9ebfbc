"""Retry timing and the circuit breaker.

Backoff is exponential with full jitter, never shorter than a provider's ``Retry-After``; a wait
longer than ``MAX_WAIT_SECONDS`` is not slept through, the caller falls back instead. The breaker
is per provider and per process: after ``threshold`` consecutive failures the provider is
skipped for ``cooldown`` seconds, then one trial call is let through (half-open). Unless given,
both come from the settings ``PROVIDER_BREAKER_THRESHOLD`` and ``PROVIDER_BREAKER_COOLDOWN_SECONDS``.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from django.conf import settings

BASE_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 4.0
MAX_WAIT_SECONDS = 10.0


def backoff_delay(attempt: int, retry_after: float | None = None) -> float | None:
    """Seconds to wait before retry number ``attempt`` (0-based); None: don't wait, fall back."""
    delay = random.uniform(0, min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * (2**attempt)))  # noqa: S311
    if retry_after is not None:
        if retry_after > MAX_WAIT_SECONDS:
            return None
        delay = max(delay, retry_after)
    return delay


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False


class CircuitBreaker:
    def __init__(self, threshold: int | None = None, cooldown: float | None = None) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    @property
    def threshold(self) -> int:
        return self._threshold if self._threshold is not None else settings.PROVIDER_BREAKER_THRESHOLD

    @property
    def cooldown(self) -> float:
        return self._cooldown if self._cooldown is not None else settings.PROVIDER_BREAKER_COOLDOWN_SECONDS

    def _state(self, name: str) -> _State:
        return self._states.setdefault(name, _State())

    def allows(self, name: str) -> bool:
        """Would a call to ``name`` be let through now? (No side effects.)"""
        with self._lock:
            state = self._state(name)
            if state.opened_at is None:
                return True
            return time.monotonic() - state.opened_at >= self.cooldown and not state.trial_in_flight

    def acquire(self, name: str) -> bool:
        """Take permission for a call; in half-open state only one trial goes through."""
        with self._lock:
            state = self._state(name)
            if state.opened_at is None:
                return True
            if time.monotonic() - state.opened_at < self.cooldown or state.trial_in_flight:
                return False
            state.trial_in_flight = True
            return True

    def success(self, name: str) -> None:
        with self._lock:
            self._states[name] = _State()

    def failure(self, name: str) -> None:
        with self._lock:
            state = self._state(name)
            state.failures += 1
            state.trial_in_flight = False
            if state.failures >= self.threshold or state.opened_at is not None:
                state.opened_at = time.monotonic()

    def release(self, name: str) -> None:
        """A call ended with no verdict (cancelled): let the next trial through."""
        with self._lock:
            if name in self._states:
                self._states[name].trial_in_flight = False

    def status(self, name: str) -> str:
        with self._lock:
            state = self._state(name)
            if state.opened_at is None:
                return "closed"
            return "half_open" if time.monotonic() - state.opened_at >= self.cooldown else "open"

    def reset(self) -> None:
        with self._lock:
            self._states.clear()


breaker = CircuitBreaker()
