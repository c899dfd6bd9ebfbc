"""Reads of a user's usage (``GET /api/v1/users/usage``): requests, tokens and cost from the usage
records by period and by model, with the limits and what remains of each budget (the shared
counters of :mod:`providers.budgets`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Sum
from django.utils import timezone

from chatplatform.api.config import setting
from providers import budgets
from providers.models import UsageRecord
from providers.services import usage_flush

LIMIT_SETTINGS = ("tokens_per_minute", "daily_token_budget", "monthly_token_budget", "daily_cost_budget",
                  "monthly_cost_budget", "max_tokens")


def _totals(rows) -> dict[str, Any]:
    agg = rows.aggregate(requests=Count("id"), prompt_tokens=Sum("prompt_tokens"),
                         completion_tokens=Sum("completion_tokens"), total_tokens=Sum("total_tokens"),
                         cost=Sum("cost"))
    return {"requests": agg["requests"], "prompt_tokens": agg["prompt_tokens"] or 0,
            "completion_tokens": agg["completion_tokens"] or 0, "total_tokens": agg["total_tokens"] or 0,
            "cost": float(agg["cost"] or 0)}


def usage_for_user(*, user: Any, days: int = 30) -> dict[str, Any]:
    """``user``'s usage today, this month and over the last ``days`` days (by model), with limits."""
    now = timezone.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    since = now - timedelta(days=days)
    usage_flush()  # this worker's held rows count too
    records = UsageRecord.objects.filter(user=user)
    recent = records.filter(created_at__gte=since)
    by_model = [
        {"model": row["model"], "provider": row["provider"], "requests": row["requests"],
         "prompt_tokens": row["prompt_tokens"] or 0, "completion_tokens": row["completion_tokens"] or 0,
         "total_tokens": row["total_tokens"] or 0, "cost": float(row["cost"] or 0)}
        for row in recent.values("model", "provider").annotate(
            requests=Count("id"), prompt_tokens=Sum("prompt_tokens"), completion_tokens=Sum("completion_tokens"),
            total_tokens=Sum("total_tokens"), cost=Sum("cost")).order_by("-total_tokens", "model")
    ]
    counters = budgets.usage_now(f"user:{user.pk}")
    return {
        "user_id": user.pk,
        "username": user.get_username(),
        "periods": {"today": _totals(records.filter(created_at__gte=day_start)),
                    "this_month": _totals(records.filter(created_at__gte=month_start)),
                    f"last_{days}_days": _totals(recent),
                    "all_time": _totals(records)},
        "by_model": by_model,
        "limits": {name: setting(name) or None for name in LIMIT_SETTINGS},
        "current": counters,
        "remaining": {"tokens_this_minute": counters["minute"]["tokens_remaining"],
                      "daily_tokens": counters["day"]["tokens_remaining"],
                      "monthly_tokens": counters["month"]["tokens_remaining"],
                      "daily_cost": counters["day"]["cost_remaining"],
                      "monthly_cost": counters["month"]["cost_remaining"]},
    }
