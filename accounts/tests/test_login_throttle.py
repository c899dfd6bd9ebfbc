"""Login throttling: per client IP (all attempts) and per account (failures), proxy-aware."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.tests.helpers import LOGIN, assert_envelope
from chatplatform.api.net import client_ip_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings, frozen_ratelimit_clock):
    settings.LOGIN_RATE_PER_IP = "5/m"
    settings.LOGIN_FAILURES_PER_ACCOUNT = "3/15m"
    settings.TRUSTED_PROXIES = []
    return settings


def _login(identifier: str, password: str, *, ip: str = "10.0.0.1", **extra):
    client = APIClient(REMOTE_ADDR=ip)
    return client.post(LOGIN, {"username": identifier, "password": password}, format="json", **extra)


def _assert_429(response) -> dict:
    body = assert_envelope(response, 429, code="RATE_LIMITED")
    assert body["error"] == "rate_limit_exceeded"  # seed 004's spelling
    retry = int(response["Retry-After"])
    assert retry >= 1
    assert body["details"]["retry_after"] == retry
    assert "access_token" not in body
    return body


# --- per IP -----------------------------------------------------------------------------------


def test_per_ip_limit_gives_429_with_retry_after(limits, make_user, password):
    for i in range(5):
        make_user(f"u{i}")
    for i in range(5):
        assert _login(f"u{i}", "wrong-password-x").status_code == 401

    response = _login("u0", password)  # right password, but this address is spent

    body = _assert_429(response)
    assert int(response["Retry-After"]) <= 60
    assert "address" in body["detail"]


def test_per_ip_limit_counts_successful_attempts_too(limits, user, password):
    for _ in range(5):
        assert _login("alice", password).status_code == 200

    _assert_429(_login("alice", password))


def test_per_ip_limit_does_not_affect_other_addresses(limits, user, password):
    for _ in range(5):
        _login("alice", "wrong-password-x", ip="10.0.0.1")
    _assert_429(_login("alice", password, ip="10.0.0.1"))

    # A different address still gets through to the credential check.
    assert _login("nobody-here", "x-password-1", ip="10.0.0.2").status_code == 401


def test_per_ip_limit_is_not_bypassed_by_spoofed_forwarded_for(limits, user, password):
    for i in range(5):
        response = _login(f"ghost{i}", "wrong-password-x", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
        assert response.status_code == 401

    response = _login("alice", password, HTTP_X_FORWARDED_FOR="198.51.100.77")

    _assert_429(response)


def test_trusted_proxy_forwarded_client_is_used(limits, user, password):
    limits.TRUSTED_PROXIES = ["127.0.0.1/32"]
    for i in range(5):
        assert _login(f"ghost{i}", "wrong-password-x", ip="127.0.0.1",
                      HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 401

    # The same client behind the proxy is limited ...
    _assert_429(_login("alice", password, ip="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1"))
    # ... a different client behind the same proxy is not.
    assert _login("alice", password, ip="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200


def test_trusted_proxy_uses_rightmost_untrusted_hop(limits, user, password):
    limits.TRUSTED_PROXIES = ["127.0.0.1/32", "10.10.0.0/16"]
    for i in range(5):
        # The client forges the left-most hop each time; the proxies append the real address.
        xff = f"203.0.113.{i}, 198.51.100.9, 10.10.3.4"
        assert _login(f"ghost{i}", "wrong-password-x", ip="127.0.0.1", HTTP_X_FORWARDED_FOR=xff).status_code == 401

    _assert_429(_login("alice", password, ip="127.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.9"))


def test_forwarded_for_ignored_when_peer_is_not_a_trusted_proxy(limits, user, password):
    limits.TRUSTED_PROXIES = ["127.0.0.1/32"]
    for i in range(5):
        _login(f"ghost{i}", "wrong-password-x", ip="192.0.2.50", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")

    _assert_429(_login("alice", password, ip="192.0.2.50", HTTP_X_FORWARDED_FOR="203.0.113.200"))


@pytest.mark.parametrize("trusted,peer,xff,expected", [
    ([], "10.0.0.1", "1.2.3.4", "10.0.0.1"),
    (["127.0.0.1/32"], "127.0.0.1", "1.2.3.4", "1.2.3.4"),
    (["127.0.0.1/32"], "127.0.0.1", "9.9.9.9, 1.2.3.4", "1.2.3.4"),
    (["127.0.0.1/32"], "127.0.0.1", "1.2.3.4, 127.0.0.1", "1.2.3.4"),
    (["127.0.0.1/32"], "8.8.8.8", "1.2.3.4", "8.8.8.8"),
    (["127.0.0.1/32"], "127.0.0.1", None, "127.0.0.1"),
    (["127.0.0.1/32"], "127.0.0.1", "not-an-ip", "not-an-ip"),
])
def test_client_ip_from(settings, trusted, peer, xff, expected):
    settings.TRUSTED_PROXIES = trusted

    assert client_ip_from(peer, xff) == expected


# --- per account ------------------------------------------------------------------------------


def test_account_locks_after_failures_from_different_addresses(limits, make_user, password):
    make_user("alice")
    make_user("bob")
    for i in range(3):
        assert _login("alice", "wrong-password-x", ip=f"10.1.0.{i}").status_code == 401

    locked = _login("alice", password, ip="10.1.0.99")  # right password, fresh address

    body = _assert_429(locked)
    assert "account" in body["detail"]
    assert int(locked["Retry-After"]) <= 15 * 60
    # Another account logs in fine from the same fresh address.
    assert _login("bob", password, ip="10.1.0.99").status_code == 200


def test_account_lock_is_case_insensitive(limits, user, password):
    for i, name in enumerate(["alice", "ALICE", "Alice"]):
        _login(name, "wrong-password-x", ip=f"10.2.0.{i}")

    _assert_429(_login("aLiCe", password, ip="10.2.0.99"))


def test_account_lock_covers_username_and_email_forms(limits, user, password):
    # Alternating the username and the email must not double the guesses on one account.
    _login("alice", "wrong-password-x", ip="10.3.0.1")
    _login("alice@example.com", "wrong-password-x", ip="10.3.0.2")
    _login("alice", "wrong-password-x", ip="10.3.0.3")

    _assert_429(_login("alice@example.com", password, ip="10.3.0.4"))
    _assert_429(_login("alice", password, ip="10.3.0.5"))


def test_successful_logins_do_not_count_toward_account_lock(limits, user, password):
    for i in range(6):
        assert _login("alice", password, ip=f"10.4.0.{i}").status_code == 200


def test_failures_below_the_limit_do_not_lock(limits, user, password):
    for i in range(2):
        _login("alice", "wrong-password-x", ip=f"10.5.0.{i}")

    assert _login("alice", password, ip="10.5.0.9").status_code == 200


def test_unknown_account_failures_do_not_lock_real_accounts(limits, user, password):
    for i in range(5):
        _login(f"nobody{i}", "wrong-password-x", ip=f"10.6.0.{i}")
    for i in range(4):
        _login("nobody0", "wrong-password-x", ip=f"10.6.1.{i}")

    assert _login("alice", password, ip="10.6.2.1").status_code == 200
