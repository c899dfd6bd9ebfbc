"""Fixtures of the live tests: one production-mode stack per session (see tests/live.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from providers.tests.fake_openai import FakeOpenAI
from providers.tests.fakeserver import serving
from tests.live import LiveDatabase, LiveServer, RedisServer, production_services, server_env, skip_unless_required

# LangChain's standard suite runs from its own virtualenv over HTTP (tests/langchain/run.py).
collect_ignore = ["langchain"]


@dataclass
class Stack:
    server: LiveServer
    redis: RedisServer
    database: LiveDatabase
    upstream: FakeOpenAI


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory) -> Stack:
    reason = production_services()
    if reason:
        skip_unless_required(reason)
    log_dir = tmp_path_factory.mktemp("live")
    redis = RedisServer(log_dir)
    database = LiveDatabase(os.environ["DATABASE_URL"])
    redis.start()
    database.create()
    try:
        with serving(FakeOpenAI()) as upstream:
            env = server_env(database_url=database.url, redis_url=redis.url, upstream_url=upstream.url,
                             log_dir=log_dir)
            server = LiveServer(env=env, log=log_dir / "server.log")
            server.manage("migrate", "--noinput")
            server.start(workers=2)
            try:
                yield Stack(server=server, redis=redis, database=database, upstream=upstream)
            finally:
                server.stop()
    finally:
        redis.stop()
        database.drop()


@pytest.fixture
def live(live_stack) -> Stack:
    """The stack, its upstream's script and log cleared; the server log's tail on failure."""
    live_stack.upstream.reset()
    return live_stack


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    funcargs = getattr(item, "funcargs", {})
    if report.failed:
        # The live stack's server, and a drill's own server (``faults``) when the test has one.
        for name in ("live", "faults"):
            stack = funcargs.get(name)
            if stack is not None:
                report.sections.append((f"{name} server log (tail)", stack.server.log_tail()))
    return report
