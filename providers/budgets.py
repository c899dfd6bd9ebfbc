"""Token limits and budgets: tokens per minute and token/cost budgets per UTC day and month, for
each user, API key and chatbot key a turn is made for (streamed turns included).

Counters live in the shared cache (Redis in production: ``INCRBY`` is atomic, so every worker
counts together; local memory in embedded mode). A turn *reserves* its estimate (prompt plus
``max_tokens``) before the provider is called: the reservation is added to every counter and
rolled back if a counter goes over its limit, so two workers cannot both spend the last tokens.
When the reply ends (complete, failed or cancelled) the reservation is *settled* with the real
usage and cost. The limits themselves are runtime settings (``chatplatform.api.config``): env
defaults, changed by operators without a restart. 0 means no limit.

Over the tokens-per-minute limit: 429 with ``Retry-After``. Over a budget: 402.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache

from chatplatform.api import metrics
from chatplatform.api.config import setting
from chatplatform.api.counters import counter_add
from chatplatform.api.exceptions import AppError

logger = logging.getLogger(__name__)

MICRO = Decimal("1000000")  # costs are counted in micro-USD (integers, for INCRBY)


def scopes_for(*, user: Any = None, credential: Any = None, address: str = "") -> list[str]:
    """The budget scopes of a caller: the user, and the key it used (an API key or a chatbot key)."""
    scopes = []
    if getattr(user, "is_authenticated", False):
        scopes.append(f"user:{user.pk}")
    meta = getattr(credential, "_meta", None)
    if meta is not None and getattr(credential, "pk", None):
        scopes.append(f"{meta.model_name}:{credential.pk}")
    if not scopes and address:
        scopes.append(f"ip:{address}")
    return scopes


def _periods(now: float) -> dict[str, tuple[str, int]]:
    day = datetime.fromtimestamp(now, UTC)
    return {"minute": (str(int(now // 60)), 120), "day": (day.strftime("%Y%m%d"), 2 * 86400),
            "month": (day.strftime("%Y%m"), 32 * 86400)}


def _key(scope: str, what: str, period: str, stamp: str) -> str:
    return f"budget:{scope}:{what}:{period}:{stamp}"


def _add(key: str, amount: int, ttl: int) -> int:
    """Atomically add ``amount`` to the counter ``key`` (created with ``ttl``); the new value."""
    return counter_add(key, amount, ttl)


def _read(key: str) -> int:
    return int(cache.get(key) or 0)


@dataclass
class Limits:
    tokens_per_minute: int
    daily_tokens: int
    monthly_tokens: int
    daily_cost: Decimal
    monthly_cost: Decimal

    @classmethod
    def current(cls) -> Limits:
        return cls(int(setting("tokens_per_minute") or 0), int(setting("daily_token_budget") or 0),
                   int(setting("monthly_token_budget") or 0), Decimal(str(setting("daily_cost_budget") or 0)),
                   Decimal(str(setting("monthly_cost_budget") or 0)))

    def token_limits(self) -> dict[str, int]:
        return {"minute": self.tokens_per_minute, "day": self.daily_tokens, "month": self.monthly_tokens}

    def cost_limits(self) -> dict[str, Decimal]:
        return {"day": self.daily_cost, "month": self.monthly_cost}


@dataclass
class Reservation:
    """Tokens held on a turn's counters until :meth:`settle` replaces them with the real usage."""

    tokens: int
    counters: list[tuple[str, int]] = field(default_factory=list)  # token counters (key, ttl)
    cost_counters: list[tuple[str, int]] = field(default_factory=list)
    settled: bool = False

    def settle(self, *, tokens: int, cost: Decimal) -> None:
        """Replace the estimate with what the reply used (once; never raises)."""
        if self.settled:
            return
        self.settled = True
        try:
            delta = int(tokens) - self.tokens
            if delta:
                for key, ttl in self.counters:
                    _add(key, delta, ttl)
            micro = int(Decimal(cost) * MICRO)
            if micro:
                for key, ttl in self.cost_counters:
                    _add(key, micro, ttl)
        except Exception:  # accounting must never break a reply
            logger.exception("Could not settle a token reservation")


def _refuse_budget(scope: str, period: str, what: str, limit: Any) -> AppError:
    metrics.limit_rejection(kind=f"{what}_budget")
    noun = "token" if what == "token" else "cost"
    unit = f"{limit} tokens" if what == "token" else f"${limit}"
    return AppError(f"The {'daily' if period == 'day' else 'monthly'} {noun} budget ({unit}) is used up "
                    f"for this {scope.split(':')[0].replace('apikey', 'API key').replace('chatbotkey', 'chatbot key')}."
                    f" It renews at the start of the next UTC {period}.",
                    status_code=402, code="budget_exceeded",
                    details={"scope": scope.split(":")[0], "period": period, "budget": str(limit), "kind": what})


def reserve(scopes: list[str], tokens: int, *, now: float | None = None) -> Reservation | None:
    """Hold ``tokens`` on every scope's counters, or refuse (429 over tokens per minute, 402 over a
    budget) leaving the counters as they were. ``None`` when no limit is set."""
    limits = Limits.current()
    token_limits = {p: v for p, v in limits.token_limits().items() if v > 0}
    cost_limits = {p: v for p, v in limits.cost_limits().items() if v > 0}
    if not scopes or not (token_limits or cost_limits):
        return None
    now = time.time() if now is None else now
    periods = _periods(now)
    tokens = max(1, int(tokens))
    # Cost is known only afterwards: a cost budget refuses once what was spent reaches it.
    for scope in scopes:
        for period, limit in cost_limits.items():
            stamp, _ttl = periods[period]
            if Decimal(_read(_key(scope, "cost", period, stamp))) / MICRO >= limit:
                raise _refuse_budget(scope, period, "cost", limit)
    reservation = Reservation(tokens=tokens)
    held: list[tuple[str, int]] = []
    try:
        for scope in scopes:
            for period, (stamp, ttl) in periods.items():
                key = _key(scope, "tokens", period, stamp)
                value = _add(key, tokens, ttl)
                held.append((key, ttl))
                limit = token_limits.get(period, 0)
                if limit and value > limit:
                    if period == "minute":
                        metrics.limit_rejection(kind="tokens_per_minute")
                        retry = max(1, 60 - int(now) % 60)
                        raise AppError(f"Token rate limit exceeded: {limit} tokens per minute. Retry later.",
                                       status_code=429, code="token_rate_limited",
                                       headers={"Retry-After": str(retry)},
                                       details={"retry_after": retry, "limit": limit, "scope": scope.split(":")[0],
                                                "requested_tokens": tokens})
                    raise _refuse_budget(scope, period, "token", limit)
            reservation.cost_counters += [(_key(scope, "cost", p, periods[p][0]), periods[p][1])
                                          for p in ("day", "month")]
    except BaseException:
        for key, ttl in held:
            _add(key, -tokens, ttl)
        raise
    reservation.counters = held
    return reservation


def usage_now(scope: str, *, now: float | None = None) -> dict[str, Any]:
    """A scope's counters in the current minute, day and month, with the limits and what remains."""
    limits = Limits.current()
    periods = _periods(time.time() if now is None else now)
    out: dict[str, Any] = {}
    for period, (stamp, _ttl) in periods.items():
        used = _read(_key(scope, "tokens", period, stamp))
        limit = limits.token_limits()[period]
        entry: dict[str, Any] = {"tokens": used, "token_limit": limit or None,
                                 "tokens_remaining": max(0, limit - used) if limit else None}
        if period != "minute":
            cost = Decimal(_read(_key(scope, "cost", period, stamp))) / MICRO
            cost_limit = limits.cost_limits()[period]
            entry.update(cost=float(cost), cost_limit=float(cost_limit) if cost_limit else None,
                         cost_remaining=float(max(Decimal(0), cost_limit - cost)) if cost_limit else None)
        out[period] = entry
    return out


def capped_max_tokens(requested: int | None) -> int | None:
    """The operator's ``max_tokens`` cap (runtime setting; 0: none) applied to a request's value."""
    cap = int(setting("max_tokens") or 0)
    if not cap:
        return requested
    return cap if requested is None else min(requested, cap)
