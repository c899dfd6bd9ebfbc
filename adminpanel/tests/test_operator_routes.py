"""Seed 000's operator routes: who may call them, their shapes, figures from real traffic, query
validation, the maintenance registry and the application log."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.helpers import assert_envelope
from adminpanel import maintenance
from adminpanel.models import RequestLog
from adminpanel.request_log import request_log_flush
from chats.models import Conversation
from providers.models import UsageRecord

pytestmark = pytest.mark.django_db

SECRET = "operator-routes-secret-0123456789"
ROUTES = [("get", "/api/v1/admin/system/status"), ("get", "/api/v1/admin/system/metrics"),
          ("get", "/api/v1/admin/users/overview"), ("post", "/api/v1/admin/system/maintenance?task=refresh_cache"),
          ("get", "/api/v1/admin/logs")]


@pytest.fixture
def operator(settings) -> APIClient:
    settings.ADMIN_SECRET_KEY = SECRET
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {SECRET}")
    return client


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.parametrize(("method", "url"), ROUTES)
def test_operator_routes_refuse_users_and_anonymous_callers(method, url, operator, user, make_user, tokens_for):
    assert_envelope(getattr(APIClient(), method)(url), 401)
    assert_envelope(getattr(_bearer(tokens_for(user)["access_token"]), method)(url), 403)
    staff = _bearer(tokens_for(make_user("ops", is_staff=True))["access_token"])
    assert getattr(staff, method)(url).status_code in (200, 202)
    assert getattr(operator, method)(url).status_code in (200, 202)


def test_system_status_has_seed_000s_shape(operator, settings):
    body = operator.get("/api/v1/admin/system/status").json()
    assert body["status"] in ("healthy", "degraded")
    assert set(body["admin_info"]["settings"]) >= {"debug_mode", "log_level", "api_version"}
    assert body["admin_info"]["settings"]["api_version"] == "/api/v1"
    assert set(body["admin_info"]["environment"]) >= {"app_name", "version", "host", "port"}
    assert body["admin_info"]["environment"]["port"] == settings.PORT


def test_metrics_come_from_real_traffic(operator, openai_configured, auth_client):
    for text in ("Hello!", "And again"):
        assert auth_client.post("/api/v1/chat/message", {"message": text}, format="json").status_code == 200
    auth_client.get("/api/v1/chat/no-such-route")  # a failed request
    old = UsageRecord.objects.create(provider="openai", model="old-model", total_tokens=999)
    UsageRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=30))

    body = operator.get("/api/v1/admin/system/metrics?hours=24").json()
    assert body["period"]["hours"] == 24
    api = body["api_metrics"]
    assert api["total_requests"] >= 3 and api["failed_requests"] >= 1
    assert api["successful_requests"] + api["failed_requests"] == api["total_requests"]
    assert api["average_response_time_ms"] > 0
    assert body["chat_metrics"] == {"total_messages": 4, "total_conversations": 2, "unique_users": 1}
    usage = UsageRecord.objects.filter(created_at__gte=timezone.now() - timedelta(hours=24))
    assert body["llm_metrics"]["total_tokens_used"] == sum(u.total_tokens for u in usage) > 0
    assert "old-model" not in body["llm_metrics"]["model_usage"]  # outside the window
    assert abs(sum(body["llm_metrics"]["model_usage"].values()) - 1.0) < 1e-6
    wide = operator.get("/api/v1/admin/system/metrics?hours=48").json()
    assert wide["llm_metrics"]["model_usage"]["old-model"] > 0


@pytest.mark.parametrize(("query", "status"), [("hours=0", 422), ("hours=169", 422), ("hours=abc", 422),
                                               ("limit=5", 400)])
def test_metrics_query_is_validated(operator, query, status):
    body = assert_envelope(operator.get(f"/api/v1/admin/system/metrics?{query}"), status)
    assert query.split("=")[0] in body["details"]


def test_users_overview_lists_users_with_activity(operator, make_user, user):
    for n in range(3):
        make_user(f"extra{n}", created_at=timezone.now() + timedelta(minutes=n + 1))
    Conversation.objects.create(user=user, title="t", message_count=5)
    UsageRecord.objects.create(user=user, provider="openai", model="gpt-4o-mini", total_tokens=42)
    response = operator.get("/api/v1/admin/users/overview?limit=2")
    body = response.json()
    assert response["X-Total-Count"] == "4" and body["total_users"] == 4
    assert [u["username"] for u in body["users"]] == ["extra2", "extra1"]  # the newest first
    full = {u["username"]: u for u in operator.get("/api/v1/admin/users/overview").json()["users"]}
    assert full["alice"]["conversation_count"] == 1 and full["alice"]["message_count"] == 5
    assert full["alice"]["total_tokens"] == 42
    assert "password" not in full["alice"]
    for bad in ("limit=0", "limit=1001"):
        assert_envelope(operator.get(f"/api/v1/admin/users/overview?{bad}"), 422)


def test_unknown_maintenance_task_lists_the_valid_ones(operator):
    body = assert_envelope(operator.post("/api/v1/admin/system/maintenance?task=format_disk"), 400)
    message = " ".join(body["details"]["task"])
    for name in ("cleanup_logs", "refresh_cache", "health_check", "prune_conversations"):
        assert name in message
    assert body["details"]["valid_tasks"] == sorted(maintenance.TASKS)
    assert_envelope(operator.post("/api/v1/admin/system/maintenance"), 422)


def test_cleanup_logs_prunes_the_request_log_by_age(operator, settings):
    settings.REQUEST_LOG_RETENTION_DAYS = 7
    old = RequestLog.objects.create(request_id="r-old", route="/x", path="/x", method="GET", status=200,
                                    duration_ms=1)
    RequestLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    recent = RequestLog.objects.create(request_id="r-new", route="/x", path="/x", method="GET", status=200,
                                       duration_ms=1)
    response = operator.post("/api/v1/admin/system/maintenance?task=cleanup_logs")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "completed" and body["result"]["request_log_rows_deleted"] == 1
    assert not RequestLog.objects.filter(pk=old.pk).exists() and RequestLog.objects.filter(pk=recent.pk).exists()
    again = operator.post("/api/v1/admin/system/maintenance?task=cleanup_logs").json()  # idempotent
    assert again["result"]["request_log_rows_deleted"] == 0


def test_prune_conversations_uses_the_retention_setting(operator, settings, user):
    stale = Conversation.objects.create(user=user, title="stale")
    Conversation.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(days=40))
    fresh = Conversation.objects.create(user=user, title="fresh")
    settings.CONVERSATION_RETENTION_DAYS = 0
    off = operator.post("/api/v1/admin/system/maintenance?task=prune_conversations").json()
    assert off["result"]["conversations_deleted"] == 0 and Conversation.objects.count() == 2
    settings.CONVERSATION_RETENTION_DAYS = 30
    on = operator.post("/api/v1/admin/system/maintenance?task=prune_conversations").json()
    assert on["result"]["conversations_deleted"] == 1
    assert list(Conversation.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_health_check_task_asks_the_configured_provider(operator, openai_configured):
    body = operator.post("/api/v1/admin/system/maintenance?task=health_check").json()
    assert body["result"]["providers"]["providers"]["openai"]["status"] == "healthy"
    assert body["result"]["status"] in ("healthy", "degraded")


def test_every_registered_task_runs(operator, openai_configured):
    for name in maintenance.task_names():
        response = operator.post(f"/api/v1/admin/system/maintenance?task={name}")
        assert response.status_code == 202, (name, response.content)
        assert isinstance(response.json()["result"], dict)


def test_logs_filter_by_level_and_service(operator):
    logging.getLogger("chats.tests_probe").warning("probe warning 7f3a")
    logging.getLogger("providers.tests_probe").error("probe error 7f3a")
    logging.getLogger("chats.tests_probe").info("probe info 7f3a")
    body = operator.get("/api/v1/admin/logs?level=warning&service=chats&lines=1000").json()
    messages = [r["message"] for r in body["logs"]]
    assert "probe warning 7f3a" in messages
    assert "probe error 7f3a" not in messages and "probe info 7f3a" not in messages
    assert all(r["logger"].startswith("chats") for r in body["logs"])
    tail = operator.get("/api/v1/admin/logs?lines=1").json()
    assert tail["count"] == 1
    for bad in ("level=LOUD", "lines=0", "lines=1001"):
        assert_envelope(operator.get(f"/api/v1/admin/logs?{bad}"), 422)
    assert "colour" in assert_envelope(operator.get("/api/v1/admin/logs?colour=red"), 400)["details"]


def test_logs_read_the_shared_log_file_when_configured(operator, settings, tmp_path):
    from logging.handlers import RotatingFileHandler

    from pythonjsonlogger.json import JsonFormatter

    path = tmp_path / "app.log"
    handler = RotatingFileHandler(path, maxBytes=1_000_000)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"}))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logging.getLogger("support.file_probe").error("written to the file 91c")
    finally:
        root.removeHandler(handler)
        handler.close()
    settings.LOG_FILE = str(path)
    body = operator.get("/api/v1/admin/logs?service=support").json()
    assert body["source"] == "file"
    assert [r["message"] for r in body["logs"]] == ["written to the file 91c"]
    assert body["logs"][0]["level"] == "ERROR"


def test_request_log_records_route_status_user_and_no_query(auth_client, user):
    auth_client.get("/api/v1/users/profile?token=hunter2", HTTP_X_REQUEST_ID="req-log-probe-1")
    assert request_log_flush() >= 1
    row = RequestLog.objects.get(request_id="req-log-probe-1")
    assert row.user_id == user.pk and row.method == "GET" and row.status == 200
    assert row.path == "/api/v1/users/profile" and row.route == "/api/v1/users/profile"
    assert row.duration_ms > 0
    assert not RequestLog.objects.filter(path__contains="hunter2").exists()


def test_reindex_documents_and_refresh_cache_run_as_maintenance(operator, make_user,
                                                               django_capture_on_commit_callbacks):
    from knowledge import documents

    owner = make_user("dora")
    with django_capture_on_commit_callbacks(execute=True):
        documents.document_create(owner=owner, title="Notes", data=b"Basalt is a volcanic rock.",
                                  mime_type="text/plain")
    body = operator.post("/api/v1/admin/system/maintenance?task=reindex_documents").json()
    assert body["status"] == "completed", body
    assert body["result"] == {"documents_reindexed": 1, "documents_failed": 0}
    refreshed = operator.post("/api/v1/admin/system/maintenance?task=refresh_cache").json()["result"]
    assert refreshed["provider_configuration_reloaded"] is True and refreshed["response_cache_entries_evicted"] == 0
