"""User API keys: hashing at rest, masking, revocation, expiry, ownership, header forms."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.tests.helpers import API_KEYS, GENERATE_KEY, ME, PROFILE, assert_envelope

pytestmark = pytest.mark.django_db

STYLES = {
    "apikey": lambda raw: {"HTTP_AUTHORIZATION": f"ApiKey {raw}"},
    "x-api-key": lambda raw: {"HTTP_X_API_KEY": raw},
    "bearer": lambda raw: {"HTTP_AUTHORIZATION": f"Bearer {raw}"},
}


def _get(path: str, style: str, raw: str):
    return APIClient().get(path, **STYLES[style](raw))


@pytest.mark.parametrize("style", sorted(STYLES))
def test_active_key_works(user, api_key_for, style):
    raw = api_key_for(user)["api_key"]

    response = _get(ME, style, raw)

    assert response.status_code == 200
    assert response.json()["id"] == user.id


def test_apikey_scheme_is_case_insensitive(user, api_key_for):
    raw = api_key_for(user)["api_key"]

    assert APIClient().get(ME, HTTP_AUTHORIZATION=f"apikey {raw}").status_code == 200


@pytest.mark.parametrize("style", sorted(STYLES))
def test_revoked_key_is_401(auth_client, user, style):
    created = auth_client.post(GENERATE_KEY, {}, format="json").json()
    assert _get(ME, style, created["api_key"]).status_code == 200

    revoke = auth_client.delete(f"{API_KEYS}/{created['id']}")

    assert revoke.status_code == 200
    assert revoke.json()["is_active"] is False
    assert revoke.json()["revoked_at"] is not None
    assert_envelope(_get(ME, style, created["api_key"]), 401)
    assert_envelope(_get(PROFILE, style, created["api_key"]), 401)


def test_revoking_twice_keeps_first_revocation_time(auth_client):
    created = auth_client.post(GENERATE_KEY, {}, format="json").json()
    first = auth_client.delete(f"{API_KEYS}/{created['id']}").json()["revoked_at"]

    second = auth_client.delete(f"{API_KEYS}/{created['id']}")

    assert second.status_code == 200
    assert second.json()["revoked_at"] == first


@pytest.mark.parametrize("style", sorted(STYLES))
def test_expired_key_is_401(user, api_key_for, style):
    created = api_key_for(user, expires_in_days=1)
    assert _get(ME, style, created["api_key"]).status_code == 200

    key = ApiKey.objects.get(id=created["id"])
    key.expires_at = timezone.now() - timedelta(seconds=1)
    key.save(update_fields=["expires_at"])

    assert_envelope(_get(ME, style, created["api_key"]), 401)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_key_of_inactive_user_is_401(user, api_key_for, style):
    raw = api_key_for(user)["api_key"]
    assert _get(ME, style, raw).status_code == 200  # remembered by this worker now
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert_envelope(_get(ME, style, raw), 401)


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("mangle", [
    lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),  # right prefix, wrong secret
    lambda raw: raw + "x",
    lambda raw: "cpk_" + "0" * 10 + "_" + "x" * 40,             # unknown prefix
    lambda raw: raw.replace("cpk_", "xyz_", 1),
    lambda raw: "cpk_only_two",
])
def test_wrong_key_is_401(user, api_key_for, style, mangle):
    raw = api_key_for(user)["api_key"]

    assert_envelope(_get(ME, style, mangle(raw)), 401)


def test_only_sha256_hash_is_stored(user, api_key_for):
    created = api_key_for(user, name="laptop")
    raw = created["api_key"]

    row = ApiKey.objects.get(id=created["id"])

    assert row.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    stored = [str(v) for v in ApiKey.objects.filter(id=row.id).values().get().values()]
    assert raw not in stored
    assert all(raw not in v for v in stored)
    secret_part = raw.split("_")[2]
    assert all(secret_part not in v for v in stored)


def test_list_shows_prefix_and_mask_never_the_key(auth_client, user):
    raws = [auth_client.post(GENERATE_KEY, {"name": f"k{i}"}, format="json").json()["api_key"] for i in range(2)]

    response = auth_client.get(API_KEYS)

    assert response.status_code == 200
    text = response.content.decode()
    body = response.json()
    assert len(body) == 2
    for raw in raws:
        assert raw not in text
        assert raw.split("_")[2] not in text
        assert hashlib.sha256(raw.encode()).hexdigest() not in text
    for item in body:
        assert "api_key" not in item and "key_hash" not in item
        assert item["masked_key"] == f"cpk_{item['prefix']}_********"
    assert {item["name"] for item in body} == {"k0", "k1"}


def test_list_is_owner_scoped(auth_client, make_user, api_key_for):
    other = make_user("mallory")
    api_key_for(other)
    mine = auth_client.post(GENERATE_KEY, {}, format="json").json()

    ids = [k["id"] for k in auth_client.get(API_KEYS).json()]

    assert ids == [mine["id"]]


def test_another_users_key_cannot_be_revoked(auth_client, make_user, api_key_for):
    other = make_user("mallory")
    theirs = api_key_for(other)

    response = auth_client.delete(f"{API_KEYS}/{theirs['id']}")

    assert_envelope(response, 404)
    assert ApiKey.objects.get(id=theirs["id"]).revoked_at is None
    assert APIClient().get(ME, HTTP_X_API_KEY=theirs["api_key"]).json()["id"] == other.id


def test_revoke_unknown_key_is_404(auth_client):
    assert_envelope(auth_client.delete(f"{API_KEYS}/key_doesnotexist"), 404)


def test_key_use_records_last_used(user, api_key_for):
    created = api_key_for(user)
    assert ApiKey.objects.get(id=created["id"]).last_used_at is None

    APIClient().get(ME, HTTP_X_API_KEY=created["api_key"])

    assert ApiKey.objects.get(id=created["id"]).last_used_at is not None


def test_generate_key_validates_expiry(auth_client):
    body = assert_envelope(auth_client.post(GENERATE_KEY, {"expires_in_days": 0}, format="json"), 422)

    assert "expires_in_days" in body["details"]
    assert not ApiKey.objects.exists()


def test_generate_key_requires_authentication(api_client):
    assert_envelope(api_client.post(GENERATE_KEY, {}, format="json"), 401)
    assert not ApiKey.objects.exists()


def test_invalid_x_api_key_is_not_ignored_when_valid_jwt_absent(user):
    # A wrong key must fail closed, not fall through to anonymous.
    assert_envelope(APIClient().get(ME, HTTP_X_API_KEY="cpk_nope_nope"), 401)


# --- Django admin never shows the key ---------------------------------------------------------


@pytest.fixture
def admin_browser(make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(admin)
    return browser


def test_admin_pages_show_only_masked_key(admin_browser, user, api_key_for):
    created = api_key_for(user, name="laptop")
    raw = created["api_key"]
    digest = hashlib.sha256(raw.encode()).hexdigest()

    changelist = admin_browser.get("/admin/accounts/apikey/")
    change = admin_browser.get(f"/admin/accounts/apikey/{quote(created['id'])}/change/")

    for page in (changelist, change):
        assert page.status_code == 200
        html = page.content.decode()
        assert raw not in html
        assert raw.split("_")[2] not in html
        assert digest not in html
    assert created["masked_key"] in changelist.content.decode()


def test_admin_cannot_add_keys(admin_browser):
    assert admin_browser.get("/admin/accounts/apikey/add/").status_code == 403
