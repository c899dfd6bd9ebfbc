"""Suite-wide fixtures: fast hashing, a clean cache per test, API clients and users, the MiniLM model."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

PASSWORD = "correct-horse-battery-9"

# Fake upstream providers and a configuration pointing at them, for every app's tests.
pytest_plugins = ["providers.tests.fixtures"]


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings):
    # Real hashing is deliberately slow; tests only need it to be a real hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests repeat prompts and count upstream calls: the response cache is on only where a test
    # asks for it (providers/tests/test_response_cache.py).
    settings.RESPONSE_CACHE_ENABLED = False
    cache.clear()
    # The request log is written by hand in tests (request_log_flush), never by a thread.
    from adminpanel.request_log import request_log_discard

    settings.REQUEST_LOG_BACKGROUND = False
    request_log_discard()
    # Usage rows are written before a call ends, in the test's own transaction; the write-behind
    # buffer has tests of its own (chatplatform/tests/test_writebehind.py) and live servers use it.
    from providers.services import usage_rows

    settings.USAGE_WRITE_BEHIND = False
    usage_rows.discard()
    from accounts.runtime import runtime_reset_local

    runtime_reset_local()  # runtime settings: nothing left over from another test
    yield
    request_log_discard()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def make_user(db):
    from accounts.models import User

    counter = {"n": 0}

    def _make(username: str | None = None, *, email: str | None = None, is_staff: bool = False,
              password: str = PASSWORD, **extra):
        counter["n"] += 1
        username = username or f"user{counter['n']}"
        user = User(username=username, email=email or f"{username}@example.com", is_staff=is_staff, **extra)
        user.set_password(password)
        user.save()
        return user

    return _make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def make_team(db):
    """``make_team(owner, admins=[...], members=[...])``: a team (through the service) with those roles."""
    from accounts import team_services
    from accounts.models import TeamMembership

    def _make(owner, *, name: str = "Team", admins=(), members=()):
        team = team_services.team_create(user=owner, name=name).team
        for role, users in (("admin", admins), ("member", members)):
            for member in users:
                TeamMembership.objects.create(team=team, user=member, role=role)
        return team

    return _make


@pytest.fixture
def tokens_for():
    from accounts.services import session_open

    def _tokens(user) -> dict:
        return session_open(user=user).as_response()

    return _tokens


@pytest.fixture
def auth_client(user, tokens_for) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access_token']}")
    client.user = user
    return client


@pytest.fixture(scope="session")
def minilm():
    """Load all-MiniLM-L6-v2 once for the session (a few seconds)."""
    from providers import embeddings

    return embeddings.get_model()


@pytest.fixture(autouse=True, scope="session")
def _celery_tasks_in_process():
    """Celery tasks run in-process (eager) in tests whatever the mode, so a REDIS_URL (as in CI)
    does not send them to a broker nobody reads; tests/test_celery_worker.py turns this off for
    its real worker."""
    from chatplatform.celery import app

    eager, app.conf.task_always_eager = app.conf.task_always_eager, True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def hops(monkeypatch) -> list[str]:
    """The sync functions called through ``SyncToAsync`` (thread hops), in order."""
    from asgiref.sync import SyncToAsync

    calls: list[str] = []
    original = SyncToAsync.__call__

    def counting(self, *args, **kwargs):
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    return calls
