"""Verified credentials remembered in process: no query on a repeat, and every change refused at once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import credential_cache, selectors, services
from accounts.models import ApiKey, AuthSession, User
from accounts.tests.helpers import API_KEYS, ME, assert_envelope

pytestmark = pytest.mark.django_db


def _me(raw: str):
    return APIClient().get(ME, HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_a_repeat_lookup_asks_no_database(user, django_assert_num_queries):
    _, raw = services.api_key_create(user=user)
    assert services.api_key_authenticate(raw).user.pk == user.pk  # looked up, use recorded

    with django_assert_num_queries(0):
        key = services.api_key_authenticate(raw)
    assert key.user.pk == user.pk


def test_off_when_the_setting_is_zero(user, settings, django_assert_num_queries):
    settings.CREDENTIAL_CACHE_SECONDS = 0
    _, raw = services.api_key_create(user=user)
    services.api_key_authenticate(raw)

    with django_assert_num_queries(1):
        services.api_key_authenticate(raw)


def test_each_caller_gets_its_own_objects(user):
    _, raw = services.api_key_create(user=user)
    first = services.api_key_authenticate(raw)
    first.user.full_name = "changed in one request"
    first.name = "changed too"

    second = services.api_key_authenticate(raw)

    assert second.user.full_name == "" and second.name == "default"
    assert second.user is not first.user


def test_a_revoked_key_is_refused_on_the_next_request(auth_client, api_key_for, user):
    created = api_key_for(user)
    assert _me(created["api_key"]).status_code == 200  # remembered now

    assert auth_client.delete(f"{API_KEYS}/{created['id']}").status_code == 200

    assert_envelope(_me(created["api_key"]), 401)


def test_a_deleted_key_or_user_is_refused(user, make_user):
    _, raw = services.api_key_create(user=user)
    assert services.api_key_authenticate(raw) is not None
    ApiKey.objects.filter(user=user).first().delete()
    assert services.api_key_authenticate(raw) is None

    other = make_user("bob")
    _, raw = services.api_key_create(user=other)
    assert services.api_key_authenticate(raw) is not None
    other.delete()
    assert services.api_key_authenticate(raw) is None


def test_a_key_that_expires_while_remembered_is_refused(user):
    key, raw = services.api_key_create(user=user)
    key.expires_at = timezone.now() + timedelta(seconds=1)
    key.save(update_fields=["expires_at"])
    assert services.api_key_authenticate(raw) is not None  # remembered with its expiry

    time.sleep(1.1)

    assert services.api_key_authenticate(raw) is None


def test_an_ended_session_is_refused_on_the_next_request(user, tokens_for):
    tokens = tokens_for(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert client.get(ME).status_code == 200  # the session is remembered now

    assert client.post("/api/v1/auth/logout", {"refresh_token": tokens["refresh_token"]},
                       format="json").status_code == 200

    assert_envelope(client.get(ME), 401)


def test_revoking_all_sessions_in_bulk_is_seen(user, tokens_for):
    access = tokens_for(user)["access_token"]
    session_id = AuthSession.objects.filter(user=user).latest("created_at").id
    assert selectors.session_user(session_id=session_id, user_id=user.id) is not None

    services.user_revoke_all_sessions(user=user)

    assert selectors.session_user(session_id=session_id, user_id=user.id) is None
    assert_envelope(APIClient().get(ME, HTTP_AUTHORIZATION=f"Bearer {access}"), 401)


def test_an_edit_behind_the_applications_back_holds_only_until_the_entry_expires(user, settings):
    settings.CREDENTIAL_CACHE_SECONDS = 0.5
    _, raw = services.api_key_create(user=user)
    assert services.api_key_authenticate(raw) is not None

    User.objects.filter(pk=user.pk).update(is_active=False)  # no signal: SQL by hand, in effect
    assert services.api_key_authenticate(raw) is not None  # the documented window
    time.sleep(0.6)

    assert services.api_key_authenticate(raw) is None


def test_a_change_committed_during_a_lookup_is_not_kept(user):
    """A lookup that read the rows before a change is not remembered past that change."""
    _, raw = services.api_key_create(user=user)
    stale = ApiKey.objects.select_related("user").get(user=user)

    def load_then_change():
        credential_cache.invalidate()  # the change lands while the lookup is under way
        return stale

    assert credential_cache.remembered("key:test", load_then_change) is stale
    fresh = object()
    assert credential_cache.remembered("key:test", lambda: fresh) is fresh
