"""Run the ASGI server (uvicorn) on $HOST:$PORT with the configured number of workers."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


def worker_count() -> int:
    """WEB_CONCURRENCY workers, but only one without Redis: limits and channel layers would split."""
    return max(1, settings.WEB_CONCURRENCY) if settings.REDIS_URL else 1


def prepare_metrics_dir(workers: int) -> str | None:
    """Prometheus multiprocess mode: empty ``PROMETHEUS_MULTIPROC_DIR`` (values of a previous run
    would be counted again), or make a private one when several workers run without it."""
    path = settings.PROMETHEUS_MULTIPROC_DIR or os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not path and workers > 1:
        path = tempfile.mkdtemp(prefix="chatplatform-metrics-")
    if not path:
        return None
    if os.path.isdir(path):
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
    os.makedirs(path, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # inherited by the workers through execv
    return path


class Command(BaseCommand):
    help = "Serve the API and WebSockets with uvicorn on $HOST:$PORT (default 127.0.0.1:8000)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=settings.HOST)
        parser.add_argument("--port", type=int, default=settings.PORT)

    def handle(self, *args, host: str, port: int, **options) -> None:
        call_command("check")  # refuse to start on configuration errors
        workers = worker_count()
        prepare_metrics_dir(workers)
        uvicorn = shutil.which("uvicorn", path=os.path.dirname(sys.executable)) or "uvicorn"
        argv = [
            uvicorn, "chatplatform.asgi:application",
            "--host", host, "--port", str(port), "--workers", str(workers),
            "--log-level", settings.LOG_LEVEL.lower(),
            # Client addresses come from the socket; X-Forwarded-For is honoured only for
            # TRUSTED_PROXIES, in Django (chatplatform.api.net), so uvicorn must not rewrite it.
            "--no-proxy-headers", "--no-server-header",
        ]
        self.stdout.write(f"Serving on http://{host}:{port} with {workers} worker(s)")
        sys.stdout.flush()
        os.execv(argv[0], argv)  # noqa: S606 - replace this process with the server, no shell
