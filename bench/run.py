"""Gateway benchmarks: every figure is a ratio against a baseline measured in the same run.

Starts a mock OpenAI-compatible upstream (fixed delay, default 20 ms) and chatplatform (one
uvicorn worker, DEBUG off, rate limits off) pointing at it, then measures over loopback:

* latency: p50 of a chat request sent directly to the mock vs through us — without
  persistence (``/v1/chat/completions``: only a usage row is written) and with persistence
  (``/api/v1/chat/message``: conversation, both messages and usage saved);
* throughput: concurrent ``/api/v1/chat/message`` requests — requests/s, p95, errors;
* time to first token over SSE, direct vs through ``/v1/chat/completions`` with ``stream``;
* 100 concurrent streams, checking that no chunk is lost.

Usage: ``make bench`` (or ``python bench/run.py --requests 300 --concurrency 32``). Uses
``DATABASE_URL``/``REDIS_URL`` when set (PostgreSQL/Redis), else a temporary SQLite file.
Results are printed and written to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TARGETS = {"overhead_ratio_p50": 1.12, "overhead_ratio_p50_persisted": 1.25, "min_rps_persisted": 300,
           "max_p95_ms_persisted": 100, "ttft_ratio": 1.06}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


async def timed_sequential(client: httpx.AsyncClient, n: int, request) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = await request(client)
        response.raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def first_token_ms(client: httpx.AsyncClient, url: str, body: dict, headers: dict) -> tuple[float, str]:
    """Milliseconds until the first SSE chunk carrying content, and the full text."""
    started = time.perf_counter()
    first = None
    text = []
    async with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            for choice in data.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    if first is None:
                        first = (time.perf_counter() - started) * 1000
                    text.append(content)
    return first if first is not None else float("nan"), "".join(text)


async def measure(args, mock_url: str, server_url: str, api_key: str) -> dict:
    auth = {"Authorization": f"Bearer {api_key}"}
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}
    limits = httpx.Limits(max_connections=args.concurrency + 10, max_keepalive_connections=args.concurrency + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        direct = lambda c: c.post(f"{mock_url}/v1/chat/completions", json=chat)  # noqa: E731
        gateway = lambda c: c.post(f"{server_url}/v1/chat/completions", json=chat, headers=auth)  # noqa: E731
        persisted = lambda c: c.post(f"{server_url}/api/v1/chat/message",  # noqa: E731
                                     json={"message": "Say hello.", "model": "gpt-4o-mini"}, headers=auth)
        for request in (direct, gateway, persisted):  # warm-up: connections, model catalogue, code paths
            await timed_sequential(client, 20, request)
        # Interleave the baselines with the measured paths so drift on a noisy machine hits both.
        d1, g, d2, p = [], [], [], []
        for _ in range(args.rounds):
            d1 += await timed_sequential(client, args.requests // args.rounds, direct)
            g += await timed_sequential(client, args.requests // args.rounds, gateway)
            d2 += await timed_sequential(client, args.requests // args.rounds, direct)
            p += await timed_sequential(client, args.requests // args.rounds, persisted)
        base = statistics.median(d1 + d2)
        results = {
            "upstream_delay_ms": args.delay,
            "direct_p50_ms": round(base, 2),
            "gateway_p50_ms": round(statistics.median(g), 2),
            "gateway_persisted_p50_ms": round(statistics.median(p), 2),
            "overhead_ratio_p50": round(statistics.median(g) / base, 3),
            "overhead_ratio_p50_persisted": round(statistics.median(p) / base, 3),
        }

        # Throughput with persistence.
        latencies: list[float] = []
        errors = 0
        semaphore = asyncio.Semaphore(args.concurrency)

        async def one() -> None:
            nonlocal errors
            async with semaphore:
                started = time.perf_counter()
                try:
                    response = await persisted(client)
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(args.load_requests)))
        elapsed = time.perf_counter() - started
        results.update({
            "load_requests": args.load_requests, "concurrency": args.concurrency,
            "rps_persisted": round(args.load_requests / elapsed, 1),
            "p95_ms_persisted": round(percentile(latencies, 95), 2), "errors": errors,
        })

        # Time to first token over SSE.
        stream_body = {**chat, "stream": True}
        direct_ttft, gateway_ttft = [], []
        for _ in range(args.stream_requests):
            direct_ttft.append((await first_token_ms(client, f"{mock_url}/v1/chat/completions", stream_body, {}))[0])
            gateway_ttft.append((await first_token_ms(client, f"{server_url}/v1/chat/completions", stream_body,
                                                      auth))[0])
        results.update({
            "ttft_direct_p50_ms": round(statistics.median(direct_ttft), 2),
            "ttft_gateway_p50_ms": round(statistics.median(gateway_ttft), 2),
            "ttft_ratio": round(statistics.median(gateway_ttft) / statistics.median(direct_ttft), 3),
        })

        # 100 concurrent streams: every chunk arrives.
        outcomes = await asyncio.gather(*(
            first_token_ms(client, f"{server_url}/v1/chat/completions", stream_body, auth) for _ in range(100)
        ), return_exceptions=True)
        complete = sum(1 for o in outcomes if not isinstance(o, BaseException) and o[1] == "Hello from the mock upstream.")
        results.update({"concurrent_streams": 100, "concurrent_streams_complete": complete})
    return results


def prepare_database(env: dict) -> str:
    """Migrate and create a bench user with an API key; returns the raw key."""
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    code = (
        "from accounts.models import User; from accounts.services import api_key_create;"
        "u, _ = User.objects.get_or_create(username='bench', defaults={'email': 'bench@example.com'});"
        "print(api_key_create(user=u, name='bench')[1])"
    )
    out = subprocess.run([PYTHON, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=int, default=20, help="upstream delay in ms")
    parser.add_argument("--requests", type=int, default=400, help="sequential requests per latency series")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--load-requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--stream-requests", type=int, default=100)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="chatplatform-bench-"))
    mock_port, server_port = free_port(), free_port()
    mock_url, server_url = f"http://127.0.0.1:{mock_port}", f"http://127.0.0.1:{server_port}"
    env = {
        **os.environ, "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "sk-bench-0000", "OPENAI_BASE_URL": f"{mock_url}/v1", "RATE_LIMIT_ENABLED": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "WEB_CONCURRENCY": "1", "DEFAULT_PROVIDER": "openai",
        "DEFAULT_MODEL": "gpt-4o-mini",
        "RESPONSE_CACHE_ENABLED": "false",  # the gateway itself is measured, not cache hits
    }
    if not env.get("DATABASE_URL"):
        env["SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    processes = []
    try:
        processes.append(subprocess.Popen([PYTHON, str(ROOT / "bench" / "mock_upstream.py"), str(mock_port),
                                           str(args.delay)], cwd=ROOT))
        api_key = prepare_database(env)
        processes.append(subprocess.Popen([PYTHON, "manage.py", "serve", "--port", str(server_port)], cwd=ROOT,
                                          env=env, stdout=subprocess.DEVNULL))
        wait_for(f"{mock_url}/health")
        wait_for(f"{server_url}/health")
        results = asyncio.run(measure(args, mock_url, server_url, api_key))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    results["database"] = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
    results["targets"] = TARGETS
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    width = max(map(len, results))
    for key, value in results.items():
        if key != "targets":
            target = TARGETS.get(key)
            print(f"{key:<{width}}  {value}" + (f"   (target {target})" if target is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
