"""The operator dashboard in the Django admin (``/admin/usage/``): requests, tokens, cost and
latency over time by model, provider and user, cache hit rate and errors, drawn as SVG on the
server from the usage records, messages and the request log."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.contrib import admin
from django.db.models import Avg, Count, F, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from adminpanel import svg
from adminpanel.models import RequestLog
from adminpanel.request_log import request_log_flush

RANGES = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}
TOP = 6


def _buckets(hours: int) -> tuple[list[datetime], type, str]:
    now = timezone.now()
    if hours <= 48:
        start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
        return [start + timedelta(hours=i) for i in range(hours)], TruncHour, "%H:00"
    days = hours // 24
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    return [start + timedelta(days=i) for i in range(days)], TruncDay, "%m-%d"


def _over_time(rows, buckets: list[datetime], *, group: str | None, value: str) -> dict[str, list[float]]:
    """``{group value: [value per bucket]}`` for the top groups (by total), others summed in "other"."""
    index = {b: i for i, b in enumerate(buckets)}
    series: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(buckets))
    for row in rows:
        i = index.get(row["bucket"])
        if i is not None:
            series[str(row[group] or "-") if group else "all"][i] += float(row[value] or 0)
    ranked = sorted(series, key=lambda k: -sum(series[k]))
    top = {name: series[name] for name in ranked[:TOP]}
    rest = ranked[TOP:]
    if rest:
        top["other"] = [sum(series[name][i] for name in rest) for i in range(len(buckets))]
    return top


def usage_charts(*, hours: int) -> dict:
    """Every chart of the page (SVG) and the headline totals over the last ``hours``."""
    from chats.models import Message
    from providers.models import UsageRecord
    from providers.services import usage_flush

    request_log_flush()
    usage_flush()
    buckets, trunc, label_format = _buckets(hours)
    labels = [timezone.localtime(b).strftime(label_format) for b in buckets]
    usage = UsageRecord.objects.filter(created_at__gte=buckets[0]).annotate(bucket=trunc("created_at"))

    def by(group: str | None, value: str, aggregate) -> dict[str, list[float]]:
        fields = ["bucket", group] if group else ["bucket"]
        return _over_time(usage.values(*fields).annotate(v=aggregate).order_by(), buckets, group=group, value="v")

    replies = Message.objects.filter(role="assistant", created_at__gte=buckets[0]).annotate(bucket=trunc("created_at"))
    hits = {r["bucket"]: r for r in replies.values("bucket").annotate(
        n=Count("id"), cached=Count("id", filter=Q(metadata__cached=True))).order_by()}
    hit_rate = {"cache hit rate": [100.0 * hits[b]["cached"] / hits[b]["n"] if b in hits and hits[b]["n"] else 0.0
                                   for b in buckets]}
    log = RequestLog.objects.filter(created_at__gte=buckets[0]).annotate(bucket=trunc("created_at"))
    errors = by(None, "v", Count("id", filter=Q(status="error")))
    errors = {"provider errors": errors.get("all", [0.0] * len(buckets)),
              **{"HTTP 5xx" if k == "all" else k: v for k, v in _over_time(
                  log.filter(status__gte=500).values("bucket").annotate(v=Count("id")).order_by(), buckets,
                  group=None, value="v").items()}}
    users = list(usage.values(name=F("user__username")).annotate(tokens=Sum("total_tokens"), cost=Sum("cost"))
                 .order_by("-tokens")[:10])
    totals = usage.aggregate(requests=Count("id"), tokens=Sum("total_tokens"), cost=Sum("cost"),
                             latency=Avg("latency_ms"), errors=Count("id", filter=Q(status="error")))
    answered = sum(h["n"] for h in hits.values())
    line = svg.line_chart
    return {
        "totals": {"requests": totals["requests"], "tokens": totals["tokens"] or 0,
                   "cost": float(totals["cost"] or 0), "latency_ms": round(totals["latency"] or 0, 1),
                   "errors": totals["errors"],
                   "cache_hit_rate": round(100.0 * sum(h["cached"] for h in hits.values()) / answered, 1)
                   if answered else 0.0,
                   "api_requests": log.count()},
        "charts": [
            ("Requests by model", line(labels=labels, series=by("model", "v", Count("id")), title="Requests by model")),
            ("Tokens by provider", line(labels=labels, series=by("provider", "v", Sum("total_tokens")),
                                        title="Tokens by provider")),
            ("Cost by model (USD)", line(labels=labels, series=by("model", "v", Sum("cost")), title="Cost by model",
                                         unit="$")),
            ("Average latency by provider (ms)", line(labels=labels, series=by("provider", "v", Avg("latency_ms")),
                                                      title="Latency by provider", unit="ms")),
            ("Cache hit rate (% of replies)", line(labels=labels, series=hit_rate, title="Cache hit rate", unit="%")),
            ("Errors", line(labels=labels, series=errors, title="Errors")),
            ("Tokens by user (top 10)", svg.bar_chart(items=[(u["name"] or "anonymous", float(u["tokens"] or 0))
                                                             for u in users], title="Tokens by user")),
            ("Cost by user (top 10, USD)", svg.bar_chart(
                items=sorted(((u["name"] or "anonymous", float(u["cost"] or 0)) for u in users), key=lambda i: -i[1]),
                title="Cost by user", unit="$")),
        ],
    }


def usage_view(request: HttpRequest) -> HttpResponse:
    """The page; ``?range=24h|7d|30d`` (default 7d)."""
    chosen = request.GET.get("range", "7d")
    if chosen not in RANGES:
        chosen = "7d"
    context = {**admin.site.each_context(request), "title": "Usage", "is_nav_sidebar_enabled": False, "ranges": list(RANGES), "range": chosen,
               **usage_charts(hours=RANGES[chosen])}
    return TemplateResponse(request, "adminpanel/usage_dashboard.html", context)
