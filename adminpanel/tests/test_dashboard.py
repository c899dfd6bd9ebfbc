"""The usage dashboard in the Django admin: staff only, linked from the index, charts drawn from
real rows; and in headless Chromium, logged in as staff, with a screenshot for the docs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from adminpanel.models import RequestLog
from chats.models import Conversation, Message
from providers.models import UsageRecord

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The README shows docs/dashboard.png; a run refreshes it only when asked (UPDATE_SCREENSHOTS=1), so
# the test suite leaves the checkout as it found it. Otherwise the screenshot goes to the test's tmp_path.
SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "dashboard.png"
MODELS = [("openai", "gpt-4o-mini", 0.0004), ("anthropic", "claude-haiku", 0.001), ("gemini", "gemini-flash", 0.0002)]


def _seed(make_user) -> None:
    """A week of traffic from three users on three providers, with errors and cache hits."""
    users = [make_user(name) for name in ("alice", "bob", "carol")]
    now = timezone.now()
    conversation = Conversation.objects.create(user=users[0], title="demo")
    rows, replies, logs = [], [], []
    for hour in range(0, 24 * 6, 3):  # inside the 7d window (from midnight six days ago) at any time of day
        at = now - timedelta(hours=hour)
        for n, (provider, model, price) in enumerate(MODELS):
            calls = 1 + (hour // 3 + n) % 4
            for c in range(calls):
                tokens = 200 + 37 * ((hour + c + n) % 11)
                rows.append(UsageRecord(user=users[(hour + c) % 3], provider=provider, model=model,
                                        prompt_tokens=tokens // 2, completion_tokens=tokens - tokens // 2,
                                        total_tokens=tokens, cost=Decimal(str(round(tokens * price / 100, 8))),
                                        latency_ms=120 + 90 * n + 7 * ((hour + c) % 9),
                                        status="error" if (hour + c + n) % 17 == 0 else "success", created_at=at))
        replies.append(Message(conversation=conversation, role="assistant", content="hi", created_at=at,
                               metadata={"cached": hour % 2 == 0}))
        logs.append(RequestLog(request_id=f"r{hour}", route="/api/v1/chat/message", path="/api/v1/chat/message",
                               method="POST", status=500 if hour % 24 == 0 else 200, duration_ms=150, created_at=at))
    UsageRecord.objects.bulk_create(rows)
    Message.objects.bulk_create(replies)
    RequestLog.objects.bulk_create(logs)


@pytest.mark.django_db
def test_dashboard_is_staff_only_and_linked_from_the_admin_index(make_user):
    client = Client()
    assert client.get("/admin/usage/").status_code == 302  # to the login page
    client.force_login(make_user("plain"))
    assert client.get("/admin/usage/").status_code == 302
    client.force_login(make_user("ops", is_staff=True))
    assert 'href="/admin/usage/"' in client.get("/admin/").content.decode()


@pytest.mark.django_db
def test_dashboard_draws_every_chart_from_the_records(make_user):
    _seed(make_user)
    client = Client()
    client.force_login(make_user("ops", is_staff=True))
    page = client.get("/admin/usage/?range=7d").content.decode()
    assert page.count('class="chart ') == 8
    series = re.findall(r'<polyline class="series" data-series="([^"]+)"', page)
    for model in ("gpt-4o-mini", "claude-haiku", "gemini-flash"):
        assert series.count(model) == 2  # requests and cost by model
    for provider in ("openai", "anthropic", "gemini"):
        assert series.count(provider) == 2  # tokens and latency by provider
    assert {"cache hit rate", "provider errors", "HTTP 5xx"} <= set(series)
    assert len(re.findall(r'<rect class="bar"', page)) == 6  # three users, tokens and cost
    total = sum(UsageRecord.objects.values_list("total_tokens", flat=True))
    assert f"<strong>{total}</strong>" in page
    assert "Cache hit rate<strong>50.0%</strong>" in page
    day = client.get("/admin/usage/?range=24h").content.decode()
    assert day.count('class="chart ') == 8 and "No data" not in day


def _devtools(process: subprocess.Popen) -> str:
    deadline = time.monotonic() + 30
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            return match.group(1)
    raise AssertionError("chromium did not start its DevTools endpoint")


class _Page:
    """The smallest Chrome DevTools Protocol client: one page, commands answered in order."""

    def __init__(self, browser_ws: str) -> None:
        from websockets.sync.client import connect

        port = re.search(r":(\d+)/", browser_ws).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:  # noqa: S310
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10, legacy=True)
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"]["value"]


@pytest.mark.django_db(transaction=True)
def test_dashboard_renders_in_headless_chromium(make_user, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("LIVE_TESTS") == "required":
            pytest.fail("LIVE_TESTS=required, but chromium is not installed")
        pytest.skip("chromium is not installed")
    from pytest_django.live_server_helper import LiveServer

    _seed(make_user)
    staff = make_user("ops", is_staff=True)
    client = Client()
    client.force_login(staff)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    server = LiveServer("127.0.0.1:0")
    process = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                "--no-first-run", "--remote-debugging-port=0", f"--user-data-dir={tmp_path}",
                                "--window-size=1400,1700", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        page = _Page(_devtools(process))
        page.call("Network.enable")
        page.call("Network.setCookie", name=settings.SESSION_COOKIE_NAME, value=session, url=server.url)
        page.call("Emulation.setDeviceMetricsOverride", width=1400, height=1700, deviceScaleFactor=1, mobile=False)
        page.call("Page.enable")
        page.call("Page.navigate", url=f"{server.url}/admin/usage/?range=7d")
        deadline = time.monotonic() + 30
        while page.evaluate("document.readyState") != "complete" or "usage" not in page.evaluate("location.pathname"):
            assert time.monotonic() < deadline, "the page did not load"
            time.sleep(0.2)
        assert page.evaluate("location.pathname") == "/admin/usage/"  # logged in: not sent to the login page
        charts = page.evaluate("document.querySelectorAll('.usage-charts svg.chart').length")
        lines = page.evaluate("document.querySelectorAll('svg polyline.series').length")
        bars = page.evaluate("document.querySelectorAll('svg rect.bar').length")
        drawn = page.evaluate("Math.round(document.querySelector('svg polyline.series').getBBox().width)")
        assert charts == 8 and lines >= 14 and bars == 6 and drawn > 400
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        import base64

        png = base64.b64decode(shot)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
        target = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "dashboard.png"
        target.parent.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
            out.write(png)
        os.chmod(out.name, 0o644)
        os.replace(out.name, target)
        page.ws.close()
    finally:
        process.terminate()
        process.wait(timeout=20)
        server.stop()
