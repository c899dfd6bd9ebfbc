"""Gateway benchmarks: every figure is a ratio against a baseline measured in the same run.

Starts a mock OpenAI-compatible upstream (fixed delay, default 20 ms) and chatplatform (one
uvicorn worker, DEBUG off, rate limits off) pointing at it, then measures over loopback:

* latency: p50 of a chat request sent directly to the mock vs through us — without
  persistence (``/v1/chat/completions``: only a usage row is written) and with persistence
  (``/api/v1/chat/message``: conversation, both messages and usage saved);
* throughput: concurrent ``/api/v1/chat/message`` requests — requests/s, p95, errors;
* time to first token over SSE, direct vs through ``/v1/chat/completions`` with ``stream``, and vs our
  WebSocket chat (``/ws/chat``, seed 001's streamed ``chat``, ``bench/websocket_chat.py``);
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from websocket_chat import websocket_ttft

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TARGETS = {"server_cpu_ms_per_request": 3, "server_cpu_ms_per_request_persisted": 5,
           "overhead_ratio_p50": 1.12, "overhead_ratio_p50_persisted": 1.25, "min_rps_persisted": 300,
           "max_p95_ms_persisted": 100, "ttft_ratio": 1.06, "ttft_ratio_websocket": 1.06}


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a server process and its children (uvicorn workers), in seconds."""
    process = psutil.Process(pid)
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def cpu_per_request_ms(pid: int, client: httpx.AsyncClient, n: int, request) -> tuple[list[float], float]:
    """Latencies of n sequential requests and the server's CPU milliseconds per request over them."""
    before = cpu_seconds(pid)
    times = await timed_sequential(client, n, request)
    return times, (cpu_seconds(pid) - before) * 1000 / n


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


# Result key parts per measured series: ours keeps the historical names, peers get their own suffix.
LABELS = {"chatplatform": ("gateway", ""), "persisted": ("gateway_persisted", "_persisted")}


async def throughput(client: httpx.AsyncClient, n: int, concurrency: int, request) -> dict:
    """n requests, at most `concurrency` in flight: requests/s, p95 and errors."""
    latencies: list[float] = []
    errors = 0
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        nonlocal errors
        async with semaphore:
            started = time.perf_counter()
            try:
                response = await request(client)
                if response.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    elapsed = time.perf_counter() - started
    return {"rps": round(n / elapsed, 1), "p95_ms": round(percentile(latencies, 95), 2), "errors": errors}


async def measure(args, mock_url: str, gateways: dict[str, tuple[str, int, dict]]) -> dict:
    """`gateways`: name -> (base url, server pid, auth headers); "chatplatform" first, peers after."""
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}
    stream_body = {**chat, "stream": True}
    limits = httpx.Limits(max_connections=args.concurrency + 10, max_keepalive_connections=args.concurrency + 10)

    def completion(name):
        url, _, headers = gateways[name]
        return lambda c: c.post(f"{url}/v1/chat/completions", json=chat, headers=headers)

    ours_url, ours_pid, auth = gateways["chatplatform"]
    direct = lambda c: c.post(f"{mock_url}/v1/chat/completions", json=chat)  # noqa: E731
    persisted = lambda c: c.post(f"{ours_url}/api/v1/chat/message",  # noqa: E731
                                 json={"message": "Say hello.", "model": "gpt-4o-mini"}, headers=auth)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        for request in (direct, persisted, *map(completion, gateways)):  # warm-up: connections, code paths
            await timed_sequential(client, 20, request)
        # Interleave the baseline with the measured paths so drift on a noisy machine hits all of them.
        base: list[float] = []
        series: dict[str, list[float]] = {name: [] for name in [*gateways, "persisted"]}
        cpu: dict[str, list[float]] = {name: [] for name in series}
        per_round = args.requests // args.rounds
        for _ in range(args.rounds):
            for name in series:
                base += await timed_sequential(client, per_round, direct)
                pid = gateways[name][1] if name in gateways else ours_pid
                request = completion(name) if name in gateways else persisted
                times, cpu_ms = await cpu_per_request_ms(pid, client, per_round, request)
                series[name] += times
                cpu[name].append(cpu_ms)
        base_p50 = statistics.median(base)
        results: dict = {"upstream_delay_ms": args.delay, "direct_p50_ms": round(base_p50, 2)}
        for name, times in series.items():
            label, suffix = LABELS.get(name, (name, f"_{name}"))
            results[f"{label}_p50_ms"] = round(statistics.median(times), 2)
            results[f"overhead_ms_p50{suffix}"] = round(statistics.median(times) - base_p50, 2)
            results[f"overhead_ratio_p50{suffix}"] = round(statistics.median(times) / base_p50, 3)
            results[f"server_cpu_ms_per_request{suffix}"] = round(statistics.median(cpu[name]), 2)

        # Throughput: persisted chat on ours; the bare completion on every gateway.
        load = await throughput(client, args.load_requests, args.concurrency, persisted)
        results.update({"load_requests": args.load_requests, "concurrency": args.concurrency,
                        "rps_persisted": load["rps"], "p95_ms_persisted": load["p95_ms"], "errors": load["errors"]})
        for name in gateways:
            label = LABELS.get(name, (name,))[0]
            load = await throughput(client, args.load_requests // 2, args.concurrency, completion(name))
            results.update({f"rps_{label}": load["rps"], f"p95_ms_{label}": load["p95_ms"],
                            f"errors_{label}": load["errors"]})

        # Time to first token over SSE.
        ttft: dict[str, list[float]] = {"direct": [], **{name: [] for name in gateways}}
        for _ in range(args.stream_requests):
            ttft["direct"].append((await first_token_ms(client, f"{mock_url}/v1/chat/completions", stream_body, {}))[0])
            for name, (url, _, headers) in gateways.items():
                ttft[name].append((await first_token_ms(client, f"{url}/v1/chat/completions", stream_body,
                                                        headers))[0])
        direct_ttft = statistics.median(ttft["direct"])
        results["ttft_direct_p50_ms"] = round(direct_ttft, 2)
        for name in gateways:
            label, suffix = LABELS.get(name, (name, f"_{name}"))
            results[f"ttft_{label}_p50_ms"] = round(statistics.median(ttft[name]), 2)
            results[f"ttft_ratio{suffix}"] = round(statistics.median(ttft[name]) / direct_ttft, 3)

        # Time to first token over our WebSocket chat (seed 001, one held connection) against the same direct SSE.
        ws_ttft = await websocket_ttft(ours_url, auth["Authorization"].removeprefix("Bearer "), args.stream_requests)
        results["ttft_websocket_p50_ms"] = round(statistics.median(ws_ttft), 2)
        results["ttft_ratio_websocket"] = round(statistics.median(ws_ttft) / direct_ttft, 3)

        # 100 concurrent streams: every chunk arrives.
        outcomes = await asyncio.gather(*(
            first_token_ms(client, f"{ours_url}/v1/chat/completions", stream_body, auth) for _ in range(100)
        ), return_exceptions=True)
        complete = sum(1 for o in outcomes if not isinstance(o, BaseException) and o[1] == "Hello from the mock upstream.")
        results.update({"concurrent_streams": 100, "concurrent_streams_complete": complete})
    return results


def server_env(mock_url: str, workdir: Path, workers: int = 1) -> dict:
    """The server's environment: DEBUG and rate limits off, the mock as OpenAI's upstream, no response
    cache; ``DATABASE_URL``/``REDIS_URL`` when set, else a SQLite file in ``workdir``."""
    env = {
        **os.environ, "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "sk-bench-0000", "OPENAI_BASE_URL": f"{mock_url}/v1", "RATE_LIMIT_ENABLED": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "WEB_CONCURRENCY": str(workers), "DEFAULT_PROVIDER": "openai",
        "DEFAULT_MODEL": "gpt-4o-mini",
        "RESPONSE_CACHE_ENABLED": "false",  # the gateway itself is measured, not cache hits
        "WS_CONNECTS_PER_MINUTE": "1000000", "WS_MESSAGES_PER_MINUTE": "1000000",  # WebSocket limits off too
    }
    if not env.get("DATABASE_URL"):
        env["SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    return env


def start_mock(port: int, delay_ms: int) -> subprocess.Popen:
    """``bench/mock_upstream.py`` on 127.0.0.1:port, answering after ``delay_ms``."""
    return subprocess.Popen([PYTHON, str(ROOT / "bench" / "mock_upstream.py"), str(port), str(delay_ms)], cwd=ROOT)


def start_server(env: dict, port: int) -> subprocess.Popen:
    """``manage.py serve`` (uvicorn, ``WEB_CONCURRENCY`` workers when Redis is configured) on 127.0.0.1:port."""
    return subprocess.Popen([PYTHON, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL)


def stop_all(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Stack:
    """A running mock upstream and chatplatform server (see :func:`running_stack`)."""

    workdir: Path
    env: dict
    mock_url: str
    url: str
    mock: subprocess.Popen
    server: subprocess.Popen
    api_key: str
    processes: list[subprocess.Popen]  # stopped on exit: append what else the benchmark starts


@contextmanager
def running_stack(*, delay: int, workers: int = 1, prefix: str = "chatplatform-bench-",
                  mock_port: int | None = None, port: int | None = None) -> Iterator[Stack]:
    """The mock upstream (answering after ``delay`` ms) and our server on it, migrated, with a bench
    user's API key, both up; everything in ``processes`` is stopped on exit."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    mock_port, port = mock_port or free_port(), port or free_port()
    mock_url, url = f"http://127.0.0.1:{mock_port}", f"http://127.0.0.1:{port}"
    env = server_env(mock_url, workdir, workers=workers)
    processes: list[subprocess.Popen] = []
    try:
        mock = start_mock(mock_port, delay)
        processes.append(mock)
        api_key = prepare_database(env)
        server = start_server(env, port)
        processes.append(server)
        wait_for(f"{mock_url}/health")
        wait_for(f"{url}/health")
        yield Stack(workdir, env, mock_url, url, mock, server, api_key, processes)
    finally:
        stop_all(processes)


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark that runs the production setup (see :func:`stack_for`)."""
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (with Redis; one without)")
    parser.add_argument("--delay", type=int, default=20, help="upstream delay in ms")
    parser.add_argument("--port", type=int, default=0, help="server port (0: a free one)")
    parser.add_argument("--mock-port", type=int, default=0, help="mock upstream port (0: a free one)")
    parser.add_argument("--json", type=Path, help="also write the results here")


def stack_workers(args) -> int:
    return args.workers if os.environ.get("REDIS_URL") else 1  # several workers need Redis


def stack_for(args, prefix: str):
    """:func:`running_stack` as the options of :func:`add_stack_arguments` say."""
    return running_stack(delay=args.delay, workers=stack_workers(args), prefix=prefix,
                         mock_port=args.mock_port or None, port=args.port or None)


def report(args, result: dict, why: list[str], *, skip_empty: tuple[str, ...] = ()) -> int:
    """Print ``result`` (and write it to ``--json``), then each failure; the exit status."""
    result["passed"] = not why
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    width = max(map(len, result))
    for key, value in result.items():
        if key not in skip_empty or value:
            print(f"{key:<{width}}  {value}")
    for reason in why:
        print(f"FAIL: {reason}", file=sys.stderr)
    return 1 if why else 0


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


LITELLM = ROOT / "bench" / ".litellm" / "bin" / "litellm"


def start_litellm(mock_url: str, port: int, workdir: Path, master_key: str) -> subprocess.Popen:
    """The LiteLLM proxy (its own virtualenv in bench/.litellm: `make bench` installs it), one worker,
    no database, in front of the same mock upstream; it checks each request's key against its master key."""
    config = workdir / "litellm.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "model_list": [{"model_name": "gpt-4o-mini", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": f"{mock_url}/v1", "api_key": "sk-bench-0000"}}],
        "litellm_settings": {"telemetry": False, "drop_params": False},
        "general_settings": {"master_key": master_key},
    }))
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR"})
    return subprocess.Popen([str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                             "--num_workers", "1"], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=int, default=20, help="upstream delay in ms")
    parser.add_argument("--requests", type=int, default=400, help="sequential requests per latency series")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--load-requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--stream-requests", type=int, default=100)
    parser.add_argument("--litellm", choices=["auto", "yes", "no"], default="auto",
                        help="measure the LiteLLM proxy beside us (auto: when bench/.litellm is installed)")
    args = parser.parse_args()
    with_litellm = args.litellm == "yes" or (args.litellm == "auto" and LITELLM.exists())
    if with_litellm and not LITELLM.exists():
        parser.error("bench/.litellm is not installed: run `make bench-litellm` first")

    litellm_port = free_port()
    litellm_url = f"http://127.0.0.1:{litellm_port}"
    with running_stack(delay=args.delay) as stack:
        gateways = {"chatplatform": (stack.url, stack.server.pid, {"Authorization": f"Bearer {stack.api_key}"})}
        if with_litellm:
            litellm_key = f"sk-{secrets.token_urlsafe(32)}"
            litellm = start_litellm(stack.mock_url, litellm_port, stack.workdir, litellm_key)
            stack.processes.append(litellm)
            gateways["litellm"] = (litellm_url, litellm.pid, {"Authorization": f"Bearer {litellm_key}"})
            wait_for(f"{litellm_url}/health/liveliness", timeout=180)
        results = asyncio.run(measure(args, stack.mock_url, gateways))
    results["database"] = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
    results["cpu"] = f"{os.cpu_count()} cores"
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
