"""Redis commands per request, by command, on the production setup (PostgreSQL + Redis).

Counts are exact and need no quiet machine: the difference of Redis's ``INFO commandstats`` over a
series of sequential requests, divided by their number. Other clients of the same Redis server
count too, so use one nothing else talks to. Routes: a persisted chat (``/api/v1/chat/message``,
answered as JSON) and seed 001's stateless stream (``/api/v1/chat/stream``, SSE).

Usage: ``DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/redis_ops.py [--requests 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import running_stack  # noqa: E402  (bench/ is no package)


def command_calls(url: str) -> dict[str, int]:
    client = redis.Redis.from_url(url)
    try:
        return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}
    finally:
        client.close()


async def measure(url: str, key: str, redis_url: str, requests: int) -> dict[str, dict[str, float]]:
    auth = {"Authorization": f"Bearer {key}"}
    routes = {
        "persisted": lambda c: c.post(f"{url}/api/v1/chat/message", json={"message": "Say hello."}, headers=auth),
        "sse": lambda c: c.post(f"{url}/api/v1/chat/stream", json={"message": "Say hello."}, headers=auth),
    }
    results = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for name, send in routes.items():
            for _ in range(10):  # warm-up: memos filled, connections open
                (await send(client)).raise_for_status()
            await asyncio.sleep(0.5)
            before = command_calls(redis_url)
            for _ in range(requests):
                (await send(client)).raise_for_status()
            await asyncio.sleep(0.5)  # writes behind the last reply
            after = command_calls(redis_url)
            per = {cmd: (after[cmd] - before.get(cmd, 0)) / requests for cmd in after
                   if cmd != "info" and after[cmd] != before.get(cmd, 0)}
            results[name] = per
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url or not os.environ.get("DATABASE_URL"):
        sys.exit("bench/redis_ops.py measures the production setup: set DATABASE_URL and REDIS_URL")
    with running_stack(delay=0) as stack:
        results = asyncio.run(measure(stack.url, stack.api_key, redis_url, args.requests))
    for name, per in results.items():
        detail = ", ".join(f"{cmd} {count:.2f}" for cmd, count in sorted(per.items()))
        print(f"{name:10} {sum(per.values()):5.1f} Redis commands per request ({detail})")


if __name__ == "__main__":
    main()
