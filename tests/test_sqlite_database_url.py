"""SQLite chosen through ``DATABASE_URL`` gets the embedded mode's settings (issue 9, item 14).

Each case configures the project in a subprocess (settings are read once per process) and runs
concurrent writers on one SQLite file, the way two chats at once write their messages: each
transaction reads, then writes. With SQLite's default deferred transactions the second writer
fails at once with "database is locked"; with IMMEDIATE transactions and a busy timeout it waits
its turn.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CONCURRENT_WRITERS = r"""
import json, os, threading, time
os.environ["DJANGO_SETTINGS_MODULE"] = "chatplatform.settings"
import django
django.setup()
from django.conf import settings
from django.db import connection, connections, transaction

with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS turns (id INTEGER PRIMARY KEY, n INTEGER)")
    cursor.execute("PRAGMA journal_mode")
    journal_mode = cursor.fetchone()[0]
connections.close_all()

WRITERS = 4
start = threading.Barrier(WRITERS)
errors = []

def chat_turn():
    start.wait()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM turns")
                count = cursor.fetchone()[0]
                time.sleep(0.2)  # the other writers read meanwhile
                cursor.execute("INSERT INTO turns (n) VALUES (%s)", [count])
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()

threads = [threading.Thread(target=chat_turn) for _ in range(WRITERS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with connection.cursor() as cursor:
    cursor.execute("SELECT COUNT(*) FROM turns")
    rows = cursor.fetchone()[0]
db = settings.DATABASES["default"]
print(json.dumps({"errors": errors, "rows": rows, "journal_mode": journal_mode,
                  "options": db["OPTIONS"], "conn_max_age": db["CONN_MAX_AGE"],
                  "health_checks": db["CONN_HEALTH_CHECKS"]}))
"""


def run_writers(tmp_path: Path, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH")}
    result = subprocess.run([sys.executable, "-c", CONCURRENT_WRITERS], cwd=ROOT, env={**clean, **env},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("url", ["sqlite:///{path}", "sqlite:////{abspath}"])
def test_sqlite_through_database_url_takes_concurrent_writers(tmp_path, url):
    path = tmp_path / "chat.sqlite3"
    database_url = url.format(path=os.path.relpath(path, ROOT), abspath=str(path).lstrip("/"))
    outcome = run_writers(tmp_path, DATABASE_URL=database_url)
    assert outcome["errors"] == []
    assert outcome["rows"] == 4
    assert outcome["journal_mode"] == "wal"


def test_database_url_and_sqlite_path_configure_sqlite_alike(tmp_path):
    by_url = run_writers(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'a.sqlite3'}")
    by_path = run_writers(tmp_path, SQLITE_PATH=str(tmp_path / "b.sqlite3"))
    assert by_path["errors"] == [] and by_path["journal_mode"] == "wal"
    for key in ("options", "conn_max_age", "health_checks", "journal_mode"):
        assert by_url[key] == by_path[key], key
