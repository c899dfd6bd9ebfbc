"""Open-loop load test of persisted chat (issue 14): ``POST /api/v1/chat/message`` at a fixed rate.

Starts ``bench/mock_upstream.py`` and ``manage.py serve`` (two uvicorn workers with Redis, as in
production; one on SQLite) through ``bench/run.py``'s helpers, then sends requests at a fixed
arrival rate (``--rate`` per second for ``--duration`` seconds), whatever the server's pace: a
request is due at ``start + i / rate``. At most ``--max-in-flight`` requests are open at once; a
request due while that many are open is *missed* (not sent), one sent more than ``--late-ms``
after it was due is *late*. Latencies are measured from when a request was due, so a slow server
cannot hide its queue by slowing the sender (no coordinated omission).

Afterwards every request that got a 200 is checked in the database by the ids its response
returned: the user message (its text, role, conversation) and the assistant message (the reply
returned, its parent the user message) must both be there.

Exit status: 1 on any error (non-200 or transport failure) or any lost message; with
``--check-target`` also when the target is missed (achieved rate below ``--rate``, p95 above
``--p95-ms``, or any missed or late request). ``make loadtest`` runs it on PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402  (bench/run.py: one set of helpers for every benchmark)
    ROOT,
    add_stack_arguments,
    cpu_seconds,
    percentile,
    report,
    stack_for,
    stack_workers,
)

MOCK_REPLY = "Hello from the mock upstream."


@dataclass
class Load:
    """What an open-loop run saw."""

    scheduled: int = 0
    sent: int = 0
    missed: int = 0  # due while --max-in-flight requests were open: not sent
    late: int = 0  # sent more than --late-ms after it was due
    latencies_ms: list[float] = field(default_factory=list)  # of the 200s, from when each was due
    statuses: Counter = field(default_factory=Counter)  # HTTP status or exception name -> count
    records: list[dict] = field(default_factory=list)  # per 200: the ids to verify
    elapsed_s: float = 0.0
    max_lag_ms: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def errors(self) -> dict:
        return {str(k): v for k, v in sorted(self.statuses.items(), key=str) if k != 200}


async def open_loop(client: httpx.AsyncClient, url: str, headers: dict, *, rate: float, duration: float,
                    max_in_flight: int, late_ms: float, run_id: str) -> Load:
    """Send ``rate * duration`` chat requests, request ``i`` due at ``start + i / rate``."""
    loop = asyncio.get_running_loop()
    load = Load(scheduled=int(rate * duration))
    in_flight: set[asyncio.Task] = set()

    async def one(i: int, due: float) -> None:
        text = f"loadtest {run_id} #{i}"
        try:
            response = await client.post(url, json={"message": text, "model": "gpt-4o-mini"}, headers=headers)
            body = response.json() if response.status_code == 200 else None
        except httpx.HTTPError as exc:
            load.statuses[type(exc).__name__] += 1
            return
        except ValueError:  # a 200 whose body is not JSON
            load.statuses["200 without a JSON body"] += 1
            return
        load.statuses[response.status_code] += 1
        if body is not None:
            load.latencies_ms.append((loop.time() - due) * 1000)
            load.records.append(record(text, body))

    start = loop.time() + 0.05
    for i in range(load.scheduled):
        due = start + i / rate
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if len(in_flight) >= max_in_flight:
            load.missed += 1
            continue
        lag_ms = (loop.time() - due) * 1000
        load.max_lag_ms = max(load.max_lag_ms, lag_ms)
        if lag_ms > late_ms:
            load.late += 1
        task = asyncio.create_task(one(i, due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        load.sent += 1
    if in_flight:
        await asyncio.wait(set(in_flight))
    load.elapsed_s = loop.time() - start
    return load


def record(text: str, body: dict) -> dict:
    """What to verify of a 200 from ``/api/v1/chat/message`` that was sent ``text``."""
    return {"conversation_id": body.get("conversation_id"), "message_id": body.get("message_id"),
            "user_message_id": body.get("user_message_id"), "text": text, "reply": body.get("message")}


def setup_django(env: dict) -> None:
    """This process reads the server's database (the same settings the server got)."""
    os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH",
                                                             "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatplatform.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def verify(records: list[dict]) -> list[dict]:
    """The problems of each record whose messages are not in the database as its response said:
    ``[{"record": ..., "problems": [...]}]`` (empty: every message is there). Needs Django set up."""
    from chats.models import Message

    ids = [r[k] for r in records for k in ("message_id", "user_message_id") if r.get(k)]
    found: dict[str, Message] = {}
    for start in range(0, len(ids), 500):  # SQLite's bound-variable limit
        for message in Message.objects.filter(id__in=ids[start:start + 500]).only(
                "id", "conversation_id", "parent_id", "role", "content", "status"):
            found[message.id] = message
    lost = []
    for sent in records:
        problems = []
        user, assistant = found.get(sent.get("user_message_id")), found.get(sent.get("message_id"))
        if user is None:
            problems.append("user message missing")
        elif user.role != "user" or user.content != sent["text"] or user.conversation_id != sent["conversation_id"]:
            problems.append("user message differs")
        if assistant is None:
            problems.append("assistant message missing")
        elif (assistant.role != "assistant" or assistant.content != sent["reply"] or assistant.status != "complete"
              or assistant.conversation_id != sent["conversation_id"] or assistant.parent_id != sent["user_message_id"]):
            problems.append("assistant message differs")
        if problems:
            lost.append({"record": sent, "problems": problems})
    return lost


def verify_settled(records: list[dict], settle_s: float) -> tuple[list[dict], float]:
    """``verify``, asking again for up to ``settle_s`` seconds about what is not there yet (a
    write the server finishes after answering); returns the problems left and the seconds waited."""
    started = time.monotonic()
    lost = verify(records)
    while lost and time.monotonic() - started < settle_s:
        time.sleep(0.5)
        lost = verify([entry["record"] for entry in lost])
    return lost, round(time.monotonic() - started, 2)


def summary(args, load: Load, server_cpu_s: float, client_cpu_s: float, lost: list[dict], settled_s: float,
            workers: int) -> dict:
    lat = load.latencies_ms or [float("nan")]
    return {
        "database": "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite",
        "redis": bool(os.environ.get("REDIS_URL")), "workers": workers, "cpu": f"{os.cpu_count()} cores",
        "target_rate": args.rate, "duration_s": args.duration, "max_in_flight": args.max_in_flight,
        "upstream_delay_ms": args.delay,
        "scheduled": load.scheduled, "sent": load.sent, "missed": load.missed, "late": load.late,
        "max_send_lag_ms": round(load.max_lag_ms, 1),
        "ok": load.ok, "errors": sum(load.errors.values()), "errors_by_status": load.errors,
        "achieved_rps": round(load.ok / load.elapsed_s, 1) if load.elapsed_s else 0.0,
        "p50_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(percentile(lat, 99), 1), "max_ms": round(max(lat), 1),
        "server_cpu_ms_per_request": round(server_cpu_s * 1000 / load.ok, 2) if load.ok else None,
        "client_cpu_ms_per_request": round(client_cpu_s * 1000 / load.sent, 2) if load.sent else None,
        "verified": len(load.records) - len(lost), "lost": len(lost), "verify_settle_s": settled_s,
        "lost_examples": lost[:5],
    }


def failures(args, result: dict) -> list[str]:
    """Why this run fails (empty: it passed)."""
    why = []
    if result["errors"]:
        why.append(f"{result['errors']} errors: {result['errors_by_status']}")
    if result["lost"]:
        why.append(f"{result['lost']} requests answered 200 without both messages in the database")
    if not result["ok"]:
        why.append("no request succeeded")
    if args.check_target:
        if result["achieved_rps"] < args.rate * 0.99:
            why.append(f"target missed: {result['achieved_rps']} req/s < {args.rate}")
        if result["p95_ms"] > args.p95_ms:
            why.append(f"target missed: p95 {result['p95_ms']} ms > {args.p95_ms} ms")
        if result["missed"] or result["late"]:
            why.append(f"target missed: {result['missed']} requests not sent, {result['late']} late")
    return why


async def measure(args, server_url: str, api_key: str, server_pid: int) -> tuple[Load, float, float]:
    headers = {"Authorization": f"Bearer {api_key}"}
    url = f"{server_url}/api/v1/chat/message"
    limits = httpx.Limits(max_connections=args.max_in_flight, max_keepalive_connections=args.max_in_flight)
    async with httpx.AsyncClient(timeout=args.timeout, limits=limits) as client:
        for _ in range(args.warmup):  # connections, code paths, the pool (not counted, not verified)
            (await client.post(url, json={"message": "warm-up", "model": "gpt-4o-mini"}, headers=headers)
             ).raise_for_status()
        me = psutil.Process()
        server_before, client_before = cpu_seconds(server_pid), sum(me.cpu_times()[:2])
        load = await open_loop(client, url, headers, rate=args.rate, duration=args.duration,
                               max_in_flight=args.max_in_flight, late_ms=args.late_ms,
                               run_id=secrets.token_hex(4))
        return load, cpu_seconds(server_pid) - server_before, sum(me.cpu_times()[:2]) - client_before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300, help="requests per second, sent whatever the server's pace")
    parser.add_argument("--duration", type=float, default=120, help="seconds")
    parser.add_argument("--max-in-flight", type=int, default=64, help="open requests at most; one due past it is missed")
    parser.add_argument("--late-ms", type=float, default=10, help="a request sent later than this after due is late")
    parser.add_argument("--p95-ms", type=float, default=100, help="p95 target (with --check-target)")
    parser.add_argument("--check-target", action="store_true",
                        help="also fail when the rate, the p95 or any request's schedule is missed")
    parser.add_argument("--timeout", type=float, default=30, help="seconds per request")
    parser.add_argument("--warmup", type=int, default=20, help="sequential requests before the run")
    parser.add_argument("--settle", type=float, default=5, help="seconds to wait for messages not yet saved")
    add_stack_arguments(parser)
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.max_in_flight < 1:
        parser.error("--rate and --duration must be positive, --max-in-flight at least 1")

    workers = stack_workers(args)
    with stack_for(args, "chatplatform-loadtest-") as stack:
        load, server_cpu, client_cpu = asyncio.run(measure(args, stack.url, stack.api_key, stack.server.pid))
        setup_django(stack.env)  # checked while the server runs: a write it finishes after answering still counts
        lost, settled = verify_settled(load.records, args.settle)
    result = summary(args, load, server_cpu, client_cpu, lost, settled, workers)
    why = failures(args, result)
    return report(args, result, why, skip_empty=("lost_examples",))


if __name__ == "__main__":
    sys.exit(main())
