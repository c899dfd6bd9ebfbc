"""A real production-mode stack for live tests: our server (``manage.py serve``, several uvicorn
worker processes) on PostgreSQL and Redis, chatting with a fake OpenAI upstream.

* PostgreSQL: the server of ``DATABASE_URL``, in a database of its own (created, migrated and
  dropped here), so the suite's test database and the live server never share rows.
* Redis: a private ``redis-server`` on a free port, started here, so drills can stop and restart
  it without touching the Redis anything else uses.
* The upstream: :class:`~providers.tests.fake_openai.FakeOpenAI` served in this process; tests
  script its replies (slow streams, silences) with ``push``.

Clients are real: ``websockets`` and ``httpx`` over TCP. Which worker process serves a
connection is read from ``/api/v1/health/detailed`` (``system_info.pid``) asked on that same TCP
connection first, so a test can make a resume land on the other worker deterministically.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import websockets

ROOT = Path(__file__).resolve().parent.parent
LIVE_ADMIN_SECRET = secrets.token_urlsafe(24)  # the live server's admin secret (operator routes)
ORIGIN = "http://localhost:3000"  # in the server's default ALLOWED_ORIGINS


def production_services() -> str | None:
    """Why live tests cannot run here (``None`` when they can)."""
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return "live tests need DATABASE_URL to name a PostgreSQL server"
    if not os.environ.get("REDIS_URL", "").startswith("redis://"):
        return "live tests need REDIS_URL (production mode)"
    if shutil.which("redis-server") is None:
        return "live tests start a private redis-server, which is not installed"
    return None


def skip_unless_required(reason: str) -> None:
    """Skip (embedded runs), or fail when ``LIVE_TESTS=required`` (CI: a skip would hide a gap)."""
    import pytest

    if os.environ.get("LIVE_TESTS") == "required":
        pytest.fail(f"LIVE_TESTS=required, but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """A private redis-server (no persistence) that tests may stop and start again on its port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = log_dir / f"redis-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                 "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.ping, timeout=10, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        wait_until(lambda: not self.ping(), timeout=5, what="redis-server to stop")


class LiveDatabase:
    """A database of its own on the PostgreSQL server of ``DATABASE_URL``."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.admin_url = url
        self.name = f"{parts.path.lstrip('/') or 'chatplatform'}_live_{os.getpid()}"
        self.url = urlunsplit(parts._replace(path=f"/{self.name}"))

    def _admin(self, sql: str) -> None:
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _libpq(url: str) -> str:
    """psycopg wants ``postgresql://``; Django's URLs may say ``postgres://``."""
    return "postgresql://" + url.split("://", 1)[1]


@dataclass
class LiveServer:
    """``manage.py serve`` with ``WEB_CONCURRENCY`` workers, as a subprocess."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def manage(self, *args: str, timeout: float = 300) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL)

    def start(self, workers: int = 2) -> None:
        env = {**self.env, "WEB_CONCURRENCY": str(workers)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(self.port)],
                                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=60, what="the live server")
        # Every worker must be serving before tests pick one: look until `workers` pids answered.
        seen: set[int] = set()
        wait_until(lambda: seen.add(self.fresh_connection_pid()) or len(seen) >= workers, timeout=60,
                   interval=0.05, what=f"{workers} worker processes")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- choosing a worker ---------------------------------------------------------------------

    def fresh_connection_pid(self) -> int:
        sock, pid = self.connect()
        sock.close()
        return pid

    def connect(self, *, other_than: int | None = None, tries: int = 200) -> tuple[socket.socket, int]:
        """A TCP connection to the server and the pid of the worker process serving it (asked on it).
        With ``other_than``: a connection served by another worker than that one."""
        for _ in range(tries):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            try:
                pid = worker_pid(sock)
            except Exception:
                sock.close()
                raise
            if other_than is None or pid != other_than:
                return sock, pid
            sock.close()
        raise AssertionError(f"no worker other than {other_than} accepted a connection in {tries} tries")

    @contextmanager
    def http_client_on_worker(self, *, other_than: int | None = None
                              ) -> Iterator[tuple[httpx.Client, int, tuple[str, int]]]:
        """An httpx client whose single keep-alive connection is served by a known worker:
        ``(client, pid, local address)``. A response whose ``local_address(response)`` is that
        address came over the same TCP connection, so from that worker."""
        for _ in range(200):
            client = httpx.Client(base_url=self.url, timeout=60,
                                  limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
            response = client.get("/api/v1/health/detailed")
            pid = response.json()["system_info"]["pid"]
            if other_than is None or pid != other_than:
                try:
                    yield client, pid, local_address(response)
                finally:
                    client.close()
                return
            client.close()
        raise AssertionError(f"no worker other than {other_than} answered")


def local_address(response: httpx.Response) -> tuple[str, int]:
    """The client side (address, port) of the TCP connection ``response`` came over."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def worker_pid(sock: socket.socket) -> int:
    """Ask ``/api/v1/health/detailed`` on this keep-alive connection: the pid of its worker."""
    sock.sendall(b"GET /api/v1/health/detailed HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        body += chunk
    return int(json.loads(body[:length])["system_info"]["pid"])


async def ws_connect(live: LiveServer, path: str = "/ws/chat", *, other_than: int | None = None):
    """A WebSocket on a connection whose worker is known: ``(websocket, pid)``. Client pings are
    off, so an idle socket is really idle."""
    sock, pid = live.connect(other_than=other_than)
    sock.settimeout(None)
    ws = await websockets.connect(f"{live.ws_url}{path}", sock=sock, origin=ORIGIN, ping_interval=None,
                                  open_timeout=10, close_timeout=5)
    return ws, pid


async def recv_json(ws, timeout: float = 30) -> dict:
    import asyncio

    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def sse_events(lines: Iterator[str]) -> Iterator[dict]:
    """Parse SSE lines into ``{"id", "event", "data"}`` dicts (comments skipped)."""
    event: dict = {}
    for line in lines:
        if line == "":
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[name] = f"{event[name]}\n{value}" if name == "data" and "data" in event else value


def server_env(*, database_url: str, redis_url: str, upstream_url: str, log_dir: Path) -> dict[str, str]:
    """The environment of a production-mode server (DEBUG off) pointing at these services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url, REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url,
        DB_POOL_TIMEOUT="5",
        OPENAI_API_KEY="sk-live-test-0000", OPENAI_BASE_URL=f"{upstream_url}/v1",
        ANTHROPIC_API_KEY="", GEMINI_API_KEY="", DEFAULT_PROVIDER="openai", DEFAULT_MODEL="gpt-4o-mini",
        # The tests open many sockets and requests from one address: limits on, but out of the way.
        RATE_LIMIT_PER_MINUTE="100000", RATE_LIMIT_PER_HOUR="1000000", ANONYMOUS_RATE_LIMIT_PER_MINUTE="100000",
        WS_CONNECTS_PER_MINUTE_ANONYMOUS="100000", WS_CONNECTS_PER_MINUTE="100000",
        LOG_LEVEL="WARNING", LOG_JSON="false", RESPONSE_CACHE_ENABLED="false", ADMIN_SECRET_KEY=LIVE_ADMIN_SECRET,
        SQLITE_PATH=str(log_dir / "unused.sqlite3"),
    )
    return env
