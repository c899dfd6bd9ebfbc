"""Idle WebSocket connections (issue 14): hold N authenticated chat sockets, report memory per connection.

Starts ``bench/mock_upstream.py`` and ``manage.py serve`` through ``bench/run.py``'s helpers (two
uvicorn workers with ``REDIS_URL``, PostgreSQL with ``DATABASE_URL``; else one worker on SQLite),
then opens ``--connections`` (default 1000) connections to seed 001's ``/ws/chat?token=<API key>``,
checks each answers an application ``ping`` with ``pong`` (so none was refused after its handshake),
holds them idle for ``--hold`` seconds, then sends ``--chats`` streamed ``chat`` frames over one of
them (each must come back whole while the others are held) and checks that every connection is
still open and answers. Reports the server's RSS (the uvicorn supervisor and its workers)
and open file descriptors before and after, and their growth per connection.

Each connection needs a descriptor on both sides: this process raises its own soft
``RLIMIT_NOFILE`` up to the hard limit (the server, started from here, inherits it) and says so
when the server's limit is still too low. Exit status 1 when any connection failed to open, was
closed, stopped answering, or the chat failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import add_stack_arguments, report, stack_for, stack_workers  # noqa: E402  (bench/run.py: one set of helpers for every benchmark)
from websocket_chat import chat_over, chat_url, websocket_ttft  # noqa: E402

MOCK_REPLY = "Hello from the mock upstream."
FD_MARGIN = 200  # descriptors a process needs besides its sockets (files, pools, pipes)


def raise_nofile(needed: int) -> tuple[int, int]:
    """Raise this process's soft descriptor limit towards ``needed`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def server_processes(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def server_footprint(pid: int) -> dict:
    """RSS (bytes) and open descriptors of the server and each of its processes, and the lowest
    soft descriptor limit among them."""
    per = []
    for proc in server_processes(pid):
        try:
            with proc.oneshot():
                per.append({"pid": proc.pid, "rss": proc.memory_info().rss, "fds": proc.num_fds(),
                            "nofile": proc.rlimit(psutil.RLIMIT_NOFILE)[0]})
        except psutil.NoSuchProcess:
            continue
    return {"rss": sum(p["rss"] for p in per), "fds": sum(p["fds"] for p in per),
            "nofile": min((p["nofile"] for p in per), default=0), "processes": per}


async def answers(ws: ClientConnection, i: int, timeout: float) -> bool:
    """Whether the connection answers an application ``ping`` with its ``pong``."""
    try:
        await ws.send(json.dumps({"type": "ping", "id": f"idle-{i}"}))
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "pong" and frame.get("id") == f"idle-{i}":
                    return True
    except Exception:
        return False


async def ping_all(sockets: list[ClientConnection], concurrency: int, timeout: float) -> int:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int, ws: ClientConnection) -> bool:
        async with semaphore:
            return await answers(ws, i, timeout)

    return sum(await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets))))


async def hold(args, server_url: str, api_key: str, server_pid: int) -> dict:
    result: dict = {"connections": args.connections, "hold_s": args.hold}
    url = chat_url(server_url, api_key)
    for _ in range(2 * args.workers):  # warm the chat path (imports, SDK client) before the baseline
        await websocket_ttft(server_url, api_key, 0)
    await asyncio.sleep(1)
    before = server_footprint(server_pid)
    failures: Counter = Counter()
    sockets: list[ClientConnection] = []
    semaphore = asyncio.Semaphore(args.open_concurrency)

    async def open_one() -> None:
        async with semaphore:
            try:
                sockets.append(await connect(url, open_timeout=60, max_queue=4))
            except Exception as exc:
                failures[type(exc).__name__] += 1

    started = time.perf_counter()
    await asyncio.gather(*(open_one() for _ in range(args.connections)))
    result["open_s"] = round(time.perf_counter() - started, 1)
    result["opened"] = len(sockets)
    result["open_failures"] = dict(failures)
    try:
        result["answering_after_open"] = await ping_all(sockets, args.open_concurrency, args.ping_timeout)
        opened = server_footprint(server_pid)

        await asyncio.sleep(args.hold)
        after = server_footprint(server_pid)  # idle: before the chat below allocates anything
        result["open_after_hold"] = sum(1 for ws in sockets if ws.state is State.OPEN)
        closes = Counter(ws.close_code for ws in sockets if ws.state is not State.OPEN)
        result["closed_during_hold"] = {str(code): n for code, n in closes.items()}

        # Chats over the first connection while all the others are held, then every one answers.
        # (The first may be its worker's first chat: the warm-up cannot choose its worker.)
        try:
            chats = [await asyncio.wait_for(chat_over(sockets[0]), timeout=60) for _ in range(args.chats)]
            result["chat_while_held"] = all(reply == MOCK_REPLY for _, reply in chats)
            result["chat_first_token_ms"] = [round(ttft_ms, 1) for ttft_ms, _ in chats]
        except Exception as exc:
            result["chat_while_held"] = False
            result["chat_error"] = f"{type(exc).__name__}: {exc}"
        result["answering_after_hold"] = await ping_all(sockets, args.open_concurrency, args.ping_timeout)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    n = max(1, len(sockets))
    mib = 1024 * 1024
    result.update({
        "server_processes": len(before["processes"]),
        "server_rss_before_mib": round(before["rss"] / mib, 1),
        "server_rss_opened_mib": round(opened["rss"] / mib, 1),
        "server_rss_after_hold_mib": round(after["rss"] / mib, 1),
        "server_rss_per_connection_kib": round((after["rss"] - before["rss"]) / n / 1024, 1),
        "server_fds_before": before["fds"], "server_fds_after_hold": after["fds"],
        "server_fds_per_connection": round((after["fds"] - before["fds"]) / n, 2),
        "server_nofile_soft_limit": before["nofile"],
        # Descriptors each server process gained (the supervisor first, then its workers): how the
        # kernel spread the connections.
        "server_fds_gained_per_process": [a["fds"] - b["fds"] for a, b in zip(after["processes"], before["processes"],
                                                                              strict=False)],
    })
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=60, help="seconds to hold them idle")
    parser.add_argument("--open-concurrency", type=int, default=50, help="handshakes under way at once")
    parser.add_argument("--chats", type=int, default=5, help="streamed chats over a held connection after the hold")
    parser.add_argument("--ping-timeout", type=float, default=30, help="seconds for each pong")
    add_stack_arguments(parser)
    args = parser.parse_args(argv)
    if args.connections < 1 or args.hold < 0 or args.chats < 1:
        parser.error("--connections and --chats must be at least 1, --hold not negative")

    soft, hard = raise_nofile(args.connections + FD_MARGIN)
    workers = stack_workers(args)
    with stack_for(args, "chatplatform-wsidle-") as stack:
        result = asyncio.run(hold(args, stack.url, stack.api_key, stack.server.pid))
    result = {"database": "postgresql" if stack.env.get("DATABASE_URL", "").startswith("postgres") else "sqlite",
              "workers": workers, "cpu": f"{os.cpu_count()} cores", "client_nofile_soft_limit": soft,
              "client_nofile_hard_limit": hard, **result}
    why = []
    if soft < args.connections + FD_MARGIN:
        why.append(f"this process's descriptor limit ({soft}, hard {hard}) is below {args.connections} connections "
                   f"+ {FD_MARGIN}: raise the hard limit (ulimit -Hn) first")
    if result["server_nofile_soft_limit"] < args.connections / workers + FD_MARGIN:
        why.append(f"the server's descriptor limit ({result['server_nofile_soft_limit']}) is too low for "
                   f"{args.connections} connections over {workers} worker(s)")
    for key in ("opened", "answering_after_open", "open_after_hold", "answering_after_hold"):
        if result[key] != args.connections:
            why.append(f"{key}: {result[key]} of {args.connections}")
    if not result.get("chat_while_held"):
        why.append(f"the chat over a held connection failed: {result.get('chat_error', 'wrong reply')}")
    return report(args, result, why)


if __name__ == "__main__":
    sys.exit(main())
