"""Run LangChain's standard chat-model integration suite against our ``/v1`` (``make test-langchain``).

This script runs with the project's ``.venv``: it serves the fake OpenAI, Anthropic and Gemini
upstreams (the fake model decides: ``default_kind = "auto"``), migrates a fresh database (a temporary SQLite file; or, with
``LANGCHAIN_DATABASE=postgres`` and a PostgreSQL ``DATABASE_URL``, a database of its own there),
seeds a user and an API key, starts ``manage.py serve`` on a free port (``LANGCHAIN_PORTS``,
default 8170-8179, else any), and then runs ``tests/langchain/test_standard.py`` with the
separate LangChain virtualenv (``tests/langchain/.venv``, from ``requirements-langchain.txt``)
over HTTP. Extra arguments go to that pytest. LangSmith tracing is off; nothing leaves loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from contextlib import ExitStack  # noqa: E402

from providers.tests.fake_anthropic import FakeAnthropic  # noqa: E402
from providers.tests.fake_gemini import FakeGemini  # noqa: E402
from providers.tests.fake_openai import FakeOpenAI  # noqa: E402
from providers.tests.fakeserver import serving  # noqa: E402
from tests.live import LiveDatabase, LiveServer, server_env  # noqa: E402

HERE = Path(__file__).resolve().parent
LANGCHAIN_PYTHON = HERE / ".venv" / "bin" / "python"
SUITE_TIMEOUT = int(os.environ.get("LANGCHAIN_TIMEOUT", "600"))  # seconds (it takes about one minute)
SEED = (
    "from accounts.models import User; from accounts.services import api_key_create; "
    "u = User(username='langchain', email='langchain@example.com'); u.set_unusable_password(); u.save(); "
    "print(api_key_create(user=u, name='langchain')[1])"
)


def port_in_range() -> int:
    """The first free port of LANGCHAIN_PORTS ("8170-8179"), else any free one."""
    low, _, high = os.environ.get("LANGCHAIN_PORTS", "8170-8179").partition("-")
    for port in range(int(low), int(high or low) + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str]) -> int:
    if not LANGCHAIN_PYTHON.exists():
        print(f"{LANGCHAIN_PYTHON.relative_to(ROOT)} is missing: run `make test-langchain`", file=sys.stderr)
        return 2
    # A TERM (CI's time bound) unwinds like an exception, so the server and the database go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    use_postgres = os.environ.get("LANGCHAIN_DATABASE") == "postgres"
    with tempfile.TemporaryDirectory(prefix="langchain-") as tmp, ExitStack() as fakes:
        upstream, anthropic, gemini = (fakes.enter_context(serving(fake()))
                                       for fake in (FakeOpenAI, FakeAnthropic, FakeGemini))
        for fake in (upstream, anthropic, gemini):
            fake.default_kind = "auto"
        log_dir = Path(tmp)
        database = LiveDatabase(os.environ["DATABASE_URL"]) if use_postgres else None
        if database is not None:
            database.create()
        try:
            env = server_env(database_url=database.url if database else f"sqlite:///{log_dir / 'db.sqlite3'}",
                             redis_url="", upstream_url=upstream.url, log_dir=log_dir)
            env.update(REDIS_URL="", CELERY_BROKER_URL="", ANTHROPIC_API_KEY="sk-ant-langchain-0000",
                       ANTHROPIC_BASE_URL=anthropic.url, GEMINI_API_KEY="AIza-langchain-0000",
                       GEMINI_BASE_URL=gemini.url)
            server = LiveServer(env=env, log=log_dir / "server.log", port=port_in_range())
            server.manage("migrate", "--noinput")
            key = subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED], cwd=ROOT, env=env, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            server.start(workers=1)
            print(f"langchain: server {server.url}, upstream {upstream.url}", flush=True)
            suite_env = {k: v for k, v in os.environ.items()
                         if not k.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_", "DJANGO_", "PYTEST"))}
            suite_env.update(CHATPLATFORM_BASE_URL=f"{server.url}/v1", CHATPLATFORM_API_KEY=key,
                             LANGSMITH_TRACING="false", LANGCHAIN_TRACING_V2="false", LANGSMITH_API_KEY="",
                             NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
            started = time.monotonic()
            try:
                rc = subprocess.run([str(LANGCHAIN_PYTHON), "-m", "pytest", "-c", str(HERE / "pytest.ini"),
                                     "-p", "no:cacheprovider", str(HERE / "test_standard.py"), *argv],
                                    cwd=HERE, env=suite_env, timeout=SUITE_TIMEOUT).returncode
            except subprocess.TimeoutExpired:
                print(f"langchain: the suite ran over {SUITE_TIMEOUT}s and was stopped", file=sys.stderr)
                rc = 1
            finally:
                print(f"langchain: suite ran {time.monotonic() - started:.0f}s", flush=True)
                if os.environ.get("LANGCHAIN_SERVER_LOG"):
                    print(server.log_tail(200))
                server.stop()
            return rc
        finally:
            if database is not None:
                database.drop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
