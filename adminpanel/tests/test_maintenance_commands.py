"""``prune``, ``provider_health`` and ``usage_report`` against real rows and the fake upstream."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from adminpanel.models import RequestLog
from chats.models import Conversation
from providers.models import UsageRecord

pytestmark = pytest.mark.django_db


def _log(days_old: int) -> RequestLog:
    row = RequestLog.objects.create(request_id=f"r{days_old}", route="/x", path="/x", method="GET", status=200,
                                    duration_ms=1)
    RequestLog.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=days_old))
    return row


def test_prune_dry_run_counts_and_keeps(user):
    for age in (1, 10, 20):
        _log(age)
    out = io.StringIO()
    call_command("prune", "--older-than", "5", "--dry-run", stdout=out, stderr=io.StringIO())
    assert "Would delete 2 request-log rows" in out.getvalue()
    assert RequestLog.objects.count() == 3


def test_prune_deletes_old_rows_and_conversations(user):
    for age in (1, 10, 20):
        _log(age)
    old = Conversation.objects.create(user=user, title="old")
    Conversation.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=9))
    Conversation.objects.create(user=user, title="new")
    out, err = io.StringIO(), io.StringIO()
    call_command("prune", "--older-than", "5", "--conversations", stdout=out, stderr=err)
    assert "Deleted 2 request-log rows" in out.getvalue() and "Deleted 1 conversations" in out.getvalue()
    assert list(RequestLog.objects.values_list("request_id", flat=True)) == ["r1"]
    assert list(Conversation.objects.values_list("title", flat=True)) == ["new"]
    assert "request log" in err.getvalue()  # the progress bar


def test_provider_health_reports_the_fake_upstream(openai_configured):
    out = io.StringIO()
    call_command("provider_health", "--json", stdout=out, stderr=io.StringIO())
    assert json.loads(out.getvalue())["openai"]["status"] == "healthy"


def test_usage_report_rolls_up_by_day_and_model(user):
    UsageRecord.objects.create(user=user, provider="openai", model="gpt-4o-mini", total_tokens=30, cost="0.5")
    UsageRecord.objects.create(user=user, provider="openai", model="gpt-4o-mini", total_tokens=12, status="error")
    two_days = UsageRecord.objects.create(user=user, provider="anthropic", model="claude", total_tokens=7)
    UsageRecord.objects.filter(pk=two_days.pk).update(created_at=timezone.now() - timedelta(days=2))
    out = io.StringIO()
    call_command("usage_report", "--days", "3", "--json", stdout=out, stderr=io.StringIO())
    rollups = json.loads(out.getvalue())
    assert len(rollups) == 3
    today = rollups[-1]
    assert today["total"] == {"requests": 2, "errors": 1, "tokens": 42, "cost": 0.5, "avg_latency_ms": 0.0}
    assert today["by_user"]["alice"]["tokens"] == 42
    assert rollups[0]["by_model"]["claude"]["tokens"] == 7
