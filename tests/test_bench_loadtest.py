"""bench/loadtest.py (issue 14's ``make loadtest``): its database verification, and a tiny run end to end."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chats.models import Message
from providers.tests.fakeserver import Step

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "loadtest.py"


def _loadtest():
    if "bench_loadtest" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_loadtest", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_loadtest"] = module  # before running it: its dataclasses look themselves up
        spec.loader.exec_module(module)
    return sys.modules["bench_loadtest"]


def _port_args() -> list[str]:
    """Ports for the benchmark's servers from LOADTEST_PORT and LOADTEST_MOCK_PORT (else free ones)."""
    ports = [os.environ.get(name) for name in ("LOADTEST_PORT", "LOADTEST_MOCK_PORT")]
    return ["--port", ports[0], "--mock-port", ports[1]] if all(ports) else []


def test_verify_names_every_lost_or_altered_message(openai_configured, auth_client):
    loadtest = _loadtest()
    records = []
    for i in range(4):
        openai_configured.push(Step(text=f"Reply {i}."))
        text = f"loadtest check #{i}"
        response = auth_client.post("/api/v1/chat/message", {"message": text}, format="json")
        assert response.status_code == 200, response.content
        records.append(loadtest.record(text, response.json()))
    assert loadtest.verify(records) == []

    Message.objects.filter(id=records[0]["message_id"]).delete()  # the reply lost
    Message.objects.filter(id=records[1]["user_message_id"]).update(content="something else")
    records[2]["reply"] = "not what was saved"
    lost = loadtest.verify(records)
    assert [(entry["record"]["text"], entry["problems"]) for entry in lost] == [
        ("loadtest check #0", ["assistant message missing"]),
        ("loadtest check #1", ["user message differs"]),
        ("loadtest check #2", ["assistant message differs"]),
    ]
    unknown = {**records[3], "message_id": "msg_unknown", "user_message_id": None}
    assert loadtest.verify([unknown])[0]["problems"] == ["user message missing", "assistant message missing"]


def test_failures_name_errors_lost_messages_and_a_missed_target():
    loadtest = _loadtest()
    args = loadtest.argparse.Namespace(check_target=False, rate=300, p95_ms=100)
    clean = {"errors": 0, "errors_by_status": {}, "lost": 0, "ok": 10, "achieved_rps": 20, "p95_ms": 900,
             "missed": 5, "late": 1}
    assert loadtest.failures(args, clean) == []
    assert loadtest.failures(args, {**clean, "errors": 2, "errors_by_status": {"500": 2}}) == [
        "2 errors: {'500': 2}"]
    assert loadtest.failures(args, {**clean, "lost": 1}) == [
        "1 requests answered 200 without both messages in the database"]
    args.check_target = True
    assert loadtest.failures(args, clean) == [
        "target missed: 20 req/s < 300", "target missed: p95 900 ms > 100 ms",
        "target missed: 5 requests not sent, 1 late"]


@pytest.mark.slow
def test_loadtest_runs_and_verifies_every_message_on_sqlite(tmp_path):
    """``bench/loadtest.py --duration 3 --rate 5``: the mock, the server, the open loop and the
    database check, as ``make loadtest`` runs them (here on SQLite, one worker)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--duration", "3", "--rate", "5", "--warmup", "2",
                           "--json", str(out), *_port_args()], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["database"] == "sqlite" and result["workers"] == 1
    assert result["scheduled"] == result["sent"] == result["ok"] == result["verified"] == 15
    assert result["errors"] == 0 and result["lost"] == 0 and result["passed"] is True
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]
    assert result["server_cpu_ms_per_request"] > 0


@pytest.mark.slow
def test_idle_websockets_are_held_and_measured(tmp_path):
    """``bench/websockets_idle.py`` at a small size: every connection opens, answers, stays open
    through the hold, a chat over one of them comes back whole, and memory per connection is reported."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "websockets_idle.py"), "--connections", "20",
                           "--hold", "1", "--json", str(out), *_port_args()], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["opened"] == result["answering_after_open"] == result["open_after_hold"] == 20
    assert result["answering_after_hold"] == 20 and result["chat_while_held"] is True
    assert result["server_fds_after_hold"] - result["server_fds_before"] >= 20
    assert result["server_rss_after_hold_mib"] > 0 and "server_rss_per_connection_kib" in result


async def test_open_loop_misses_what_the_in_flight_bound_refuses(tmp_path):
    """The sender keeps its schedule: with one request allowed in flight and an upstream taking
    100 ms, most of 50 requests due within a second are missed, none is sent late in bulk."""
    loadtest = _loadtest()
    helpers = sys.modules["run"]  # bench/run.py, which the load test imports its helpers from
    port = int(os.environ.get("LOADTEST_MOCK_PORT") or helpers.free_port())
    mock = helpers.start_mock(port, 100)
    try:
        await asyncio.to_thread(helpers.wait_for, f"http://127.0.0.1:{port}/health")
        async with httpx.AsyncClient(timeout=10) as client:
            load = await loadtest.open_loop(client, f"http://127.0.0.1:{port}/v1/chat/completions", {}, rate=50,
                                            duration=1, max_in_flight=1, late_ms=1000, run_id="t")
    finally:
        helpers.stop_all([mock])
    assert load.scheduled == 50 and load.sent + load.missed == 50
    assert 1 <= load.sent <= 12 and load.missed >= 38
    assert load.ok == load.sent and load.errors == {} and len(load.latencies_ms) == load.sent
    assert all(latency >= 100 for latency in load.latencies_ms)
