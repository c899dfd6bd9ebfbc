"""Server CPU per request of two versions of the code, measured side by side: an A/B on a noisy machine.

``bench/gate.py`` runs one version at a time, so the machine's drift between two runs (on the shared
2-core machines here: 20-40% within minutes) hides any change smaller than that. This starts two
stacks at once (each a mock upstream and ``manage.py serve``, as :func:`run.running_stack` does): A
from a git revision (checked out into a temporary worktree) or a directory, B from this checkout.
Requests then alternate one by one between A and B (A first in even rounds, B first in odd ones), and
each server's CPU is read over the same block, so drift hits both alike. It prints each block's CPU
per request and the ratio B/A, and their medians; two copies of the same code read 1.00 ± 0.01.

Usage: ``python bench/compare.py REV [--route v1|stream|persisted|models|notfound] [--blocks 4] [--requests 300]``
(``--b-env K=V`` / ``--a-env K=V``, repeatable, add environment variables to one side, e.g. a setting
to compare with itself). Embedded mode unless DATABASE_URL/REDIS_URL are set (both stacks then share
the database and Redis).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/ is no package)

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}


def request_for(route: str, stack: run.Stack):
    auth = {"Authorization": f"Bearer {stack.api_key}"}
    if route == "v1":
        return lambda c: c.post(f"{stack.url}/v1/chat/completions", json=CHAT, headers=auth)
    if route == "stream":
        return lambda c: c.post(f"{stack.url}/v1/chat/completions", json={**CHAT, "stream": True}, headers=auth)
    if route == "models":
        return lambda c: c.get(f"{stack.url}/v1/models", headers=auth)
    if route == "notfound":  # an error response: Django's handler, our middleware and the envelope
        return lambda c: c.get(f"{stack.url}/v1/no-such-route", headers=auth)
    return lambda c: c.post(f"{stack.url}/api/v1/chat/message", json={"message": "Say hello.", "model": "gpt-4o-mini"},
                            headers=auth)


async def measure(stacks: list[run.Stack], route: str, blocks: int, requests: int) -> dict:
    sends = [request_for(route, stack) for stack in stacks]
    per: list[list[float]] = [[], []]
    ratios: list[float] = []
    async with httpx.AsyncClient(timeout=60) as client:
        for send in sends:
            for _ in range(50):  # warm-up
                await send(client)
        for block in range(blocks):
            before = [run.cpu_seconds(stack.server.pid) for stack in stacks]
            for i in range(requests):
                for send in (sends if i % 2 == 0 else sends[::-1]):
                    response = await send(client)
                    if response.status_code != (404 if route == "notfound" else 200):
                        raise SystemExit(f"{response.status_code}: {response.text[:300]}")
            after = [run.cpu_seconds(stack.server.pid) for stack in stacks]
            ms = [(after[k] - before[k]) * 1000 / requests for k in range(2)]
            for k in range(2):
                per[k].append(ms[k])
            ratios.append(ms[1] / ms[0])
            print(f"block {block}: A {ms[0]:.2f} ms, B {ms[1]:.2f} ms, B/A {ratios[-1]:.3f}", flush=True)
    return {"route": route, "a_cpu_ms_per_request": round(statistics.median(per[0]), 2),
            "b_cpu_ms_per_request": round(statistics.median(per[1]), 2),
            "b_over_a": round(statistics.median(ratios), 3)}


@contextlib.contextmanager
def tree_of(rev: str):
    """A directory holding ``rev``: itself when it is one, else a temporary git worktree."""
    if Path(rev).is_dir():
        yield Path(rev).resolve()
        return
    git = shutil.which("git") or "git"
    path = Path(tempfile.mkdtemp(prefix="chatplatform-compare-")) / "tree"
    subprocess.run([git, "worktree", "add", "--detach", str(path), rev], cwd=run.ROOT, check=True,
                   capture_output=True)
    try:
        yield path
    finally:
        subprocess.run([git, "worktree", "remove", "--force", str(path)], cwd=run.ROOT, check=False)


@contextlib.contextmanager
def stack_in(tree: Path, extra_env: list[str]):
    """:func:`run.running_stack` of the code in ``tree`` (the server's cwd), with ``extra_env``."""
    saved_root, saved_env = run.ROOT, dict(os.environ)
    run.ROOT = tree  # where the helpers start manage.py and the mock
    os.environ.update(dict(item.split("=", 1) for item in extra_env))
    try:
        manager = run.running_stack(delay=0, prefix="chatplatform-compare-")
        stack = manager.__enter__()
    finally:
        run.ROOT = saved_root
        os.environ.clear()
        os.environ.update(saved_env)
    try:
        yield stack
    finally:
        manager.__exit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="A: a git revision (e.g. HEAD~1, main) or a directory; B is this checkout")
    parser.add_argument("--route", choices=["v1", "stream", "persisted", "models", "notfound"], default="v1")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--requests", type=int, default=300, help="requests to each server per block")
    parser.add_argument("--a-env", action="append", default=[], metavar="K=V")
    parser.add_argument("--b-env", action="append", default=[], metavar="K=V")
    args = parser.parse_args()
    with tree_of(args.rev) as tree, stack_in(tree, args.a_env) as a, stack_in(run.ROOT, args.b_env) as b:
        results = asyncio.run(measure([a, b], args.route, args.blocks, args.requests))
    for name, value in results.items():
        print(f"{name:24} {value}")


if __name__ == "__main__":
    main()
