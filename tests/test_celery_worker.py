"""A real Celery worker (``celery -A chatplatform worker`` in a subprocess) computes the embedding
of an FAQ created, then edited, through the API: the tasks go through the Redis broker after the
commit, and the worker reads and writes the test's own database.

Needs what CI provides (``.ci/run``): ``REDIS_URL`` pointing at Redis and a database another
process can open (PostgreSQL via ``DATABASE_URL``); skipped otherwise. Self-contained: its
helpers are here, and its worker consumes a queue of its own, so other workers on the same
Redis (other test runs, a dev server) never take its tasks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from chatplatform.celery import app as celery_app
from support import services
from support.models import FAQ

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORKER_READY_SECONDS = 120.0
TASK_SECONDS = 120.0  # the worker's first task loads MiniLM


def _skip_reason() -> str:
    if not settings.REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        return f"REDIS_URL is not a Redis URL ({settings.REDIS_URL or 'unset'}): a worker needs a real broker"
    if connection.vendor == "sqlite":
        return "the test database is SQLite (in memory): a worker process cannot open it; CI uses PostgreSQL"
    return ""


def _test_database_url() -> str:
    """The URL of the database this test runs against (pytest-django's ``test_<name>``)."""
    db = connection.settings_dict
    scheme = {"postgresql": "postgres", "mysql": "mysql"}.get(connection.vendor, connection.vendor)
    credentials = f"{quote(db['USER'] or '', safe='')}:{quote(db['PASSWORD'] or '', safe='')}@" if db["USER"] else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"{scheme}://{credentials}{db['HOST'] or '127.0.0.1'}{port}/{db['NAME']}"


def _wait_for(condition: Callable[[], object], *, timeout: float, what: str, log: Path) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


@pytest.fixture
def worker(transactional_db, tmp_path) -> Iterator[Path]:
    """A worker on a queue of its own, against the test database; the tasks this test enqueues
    go to that queue instead of running in-process. Yields the worker's log file."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    queue = f"test-celery-worker-{uuid.uuid4().hex[:12]}"
    log = tmp_path / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatplatform.settings", "DATABASE_URL": _test_database_url(),
           "REDIS_URL": settings.REDIS_URL, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    command = [sys.executable, "-m", "celery", "-A", "chatplatform", "worker", "--pool=solo", "--concurrency=1",
               "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
               "--loglevel=INFO"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = False, queue
    try:
        _wait_for(lambda: " ready." in log.read_text() or process.poll() is not None,
                  timeout=WORKER_READY_SECONDS, what="the worker to start", log=log)
        if process.poll() is not None:
            pytest.fail(f"the worker exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        yield log
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = saved
        process.terminate()  # warm shutdown: closes its database connections before the test database goes
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        try:
            with celery_app.connection_for_write() as conn:
                conn.default_channel.queue_delete(queue)
        except Exception:  # cleanup only: the queue is empty and uniquely named anyway
            pass


def _embedding(faq_id: str) -> list[float] | None:
    return FAQ.objects.get(pk=faq_id).embedding


def test_worker_embeds_faqs_created_and_edited_through_the_api(worker, make_user, tokens_for, monkeypatch):
    # Proof that the vector comes from the worker: this process cannot compute one.
    monkeypatch.setattr(services, "_embed_faq", lambda *a: pytest.fail("embedded in the web process"))
    staff = make_user("agent", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(staff)['access_token']}")

    created = client.post("/api/v1/chat/faqs", {"question": "Do you offer student discounts?",
                                                 "answer": "Yes: 50% with a valid student email."}, format="json")
    assert created.status_code == 201, created.content
    faq_id = created.json()["id"]
    first = _wait_for(lambda: _embedding(faq_id), timeout=TASK_SECONDS, what="the FAQ's embedding", log=worker)
    assert len(first) == 384 and abs(sum(x * x for x in first) - 1.0) < 1e-3  # MiniLM, normalised

    edited = client.patch(f"/api/v1/chat/faqs/{faq_id}", {"answer": "Students get 50% off for a year."},
                          format="json")
    assert edited.status_code == 200, edited.content
    def recomputed() -> list[float] | None:
        vector = _embedding(faq_id)
        return vector if vector is not None and vector != first else None

    second = _wait_for(recomputed, timeout=TASK_SECONDS, what="the edited FAQ's new embedding", log=worker)
    assert len(second) == 384

    text = worker.read_text()
    assert text.count("Task support.tasks.faq_embed[") >= 2 and "succeeded" in text


@pytest.fixture
def retention_env(monkeypatch) -> None:
    """Retention settings the worker process reads from its environment (set before it starts)."""
    monkeypatch.setenv("REQUEST_LOG_RETENTION_DAYS", "7")
    monkeypatch.setenv("CONVERSATION_RETENTION_DAYS", "30")


def test_worker_runs_the_maintenance_tasks_enqueued_by_the_operator_route(retention_env, worker, make_user,
                                                                         settings):
    from datetime import timedelta

    from django.utils import timezone

    from adminpanel.models import RequestLog
    from chats.models import Conversation

    settings.ADMIN_SECRET_KEY = "worker-maintenance-secret-0123456789"
    owner = make_user("owner")
    stale_log = RequestLog.objects.create(request_id="stale", route="/x", path="/x", method="GET", status=200,
                                          duration_ms=1)
    RequestLog.objects.filter(pk=stale_log.pk).update(created_at=timezone.now() - timedelta(days=8))
    stale = Conversation.objects.create(user=owner, title="stale")
    Conversation.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(days=40))
    fresh = Conversation.objects.create(user=owner, title="fresh")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {settings.ADMIN_SECRET_KEY}")

    names = ["cleanup_logs", "prune_conversations", "refresh_cache", "usage_rollup"]
    for name in names:
        response = client.post(f"/api/v1/admin/system/maintenance?task={name}")
        assert response.status_code == 202, response.content
        assert response.json()["status"] == "queued" and response.json()["result"] is None

    _wait_for(lambda: not RequestLog.objects.filter(pk=stale_log.pk).exists(), timeout=TASK_SECONDS,
              what="cleanup_logs to prune the stale request-log row", log=worker)
    _wait_for(lambda: not Conversation.objects.filter(pk=stale.pk).exists(), timeout=TASK_SECONDS,
              what="prune_conversations to delete the stale conversation", log=worker)
    assert Conversation.objects.filter(pk=fresh.pk).exists()
    _wait_for(lambda: worker.read_text().count("Task adminpanel.tasks.maintenance_run[") >= 2 * len(names)
              and worker.read_text().count("succeeded") >= len(names),
              timeout=TASK_SECONDS, what="every maintenance task to succeed", log=worker)
    assert "raised" not in worker.read_text()
