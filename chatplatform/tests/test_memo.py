"""Shared-version memos: one reading of every version per request, and what a request sees of changes."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from chatplatform.api import memo

pytestmark = pytest.mark.django_db


class Loads:
    """A ``load()`` that counts its calls and gives a new value each time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"value {self.calls}"


@pytest.fixture
def reads(monkeypatch):
    """The shared cache's reads, counted (the cache itself still answers); a ``get`` that a
    ``get_many`` makes (the in-process cache's way of answering one) is part of that one read."""
    counted = {"get": 0, "get_many": 0}
    inside = []

    def counting(name, real):
        def spy(*args, **kwargs):
            if not inside:
                counted[name] += 1
            inside.append(name)
            try:
                return real(*args, **kwargs)
            finally:
                inside.pop()
        return spy

    for name in counted:
        monkeypatch.setattr(cache, name, counting(name, getattr(cache, name)))
    return counted


@pytest.fixture
def request_scope():
    token = memo.begin_request()
    yield
    memo.end_request(token)


def test_a_request_reads_every_memos_version_in_one_round_trip(reads):
    first, second = memo.SharedVersionMemo("test-first"), memo.SharedVersionMemo("test-second")
    memo.watch_shared_key("test-extra:version")
    load = Loads()
    first.remembered("a", load)
    token = memo.begin_request()
    memo.shared_value(first.version_key)  # makes every memo's version that is missing
    memo.end_request(token)
    reads.update(get=0, get_many=0)

    token = memo.begin_request()
    try:
        assert first.remembered("a", load) == "value 1"
        assert second.remembered("b", load) == "value 2"
        assert first.remembered("a", load) == "value 1"
        memo.shared_value("test-extra:version")
    finally:
        memo.end_request(token)

    assert reads == {"get": 0, "get_many": 1}


def test_outside_a_request_each_lookup_reads_its_version(reads):
    remembered = memo.SharedVersionMemo("test-outside")
    load = Loads()
    for _ in range(3):
        assert remembered.remembered("a", load) == "value 1"
    assert reads["get_many"] == 3 and reads["get"] == 1  # the first lookup made the version


def test_a_change_made_elsewhere_is_seen_by_the_next_request(request_scope):
    remembered = memo.SharedVersionMemo("test-elsewhere")
    load = Loads()
    assert remembered.remembered("a", load) == "value 1"

    cache.set(remembered.version_key, "changed by another worker", timeout=None)
    # This request keeps its reading of the versions (for SNAPSHOT_SECONDS at most) ...
    assert remembered.remembered("a", load) == "value 1"
    # ... the next one reads them again.
    token = memo.begin_request()
    try:
        assert remembered.remembered("a", load) == "value 2"
    finally:
        memo.end_request(token)


def test_a_long_request_reads_the_versions_again(request_scope, monkeypatch):
    remembered = memo.SharedVersionMemo("test-long")
    load = Loads()
    assert remembered.remembered("a", load) == "value 1"
    monkeypatch.setattr(memo, "SNAPSHOT_SECONDS", 0.0)

    cache.set(remembered.version_key, "changed by another worker", timeout=None)

    assert remembered.remembered("a", load) == "value 2"


def test_a_requests_own_change_is_seen_at_once(request_scope, django_capture_on_commit_callbacks):
    remembered = memo.SharedVersionMemo("test-own")
    load = Loads()
    assert remembered.remembered("a", load) == "value 1"

    with django_capture_on_commit_callbacks(execute=True):
        remembered.invalidate()
    assert remembered.remembered("a", load) == "value 2"
    assert remembered.remembered("a", load) == "value 2"
    assert cache.get(remembered.version_key) == memo.shared_value(remembered.version_key)


def test_a_registered_key_that_is_missing_reads_as_none_once(reads, request_scope):
    memo.watch_shared_key("test-counter")
    assert memo.shared_value("test-counter") is None
    assert memo.shared_value("test-counter") is None
    assert reads["get_many"] == 1


def test_without_the_shared_cache_every_lookup_loads(request_scope, monkeypatch):
    remembered = memo.SharedVersionMemo("test-away")
    load = Loads()

    def away(*args, **kwargs):
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(cache, "get_many", away)
    assert remembered.remembered("a", load) == "value 1"
    assert remembered.remembered("a", load) == "value 2"
