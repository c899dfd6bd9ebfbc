"""Admin authentication: the admin secret, staff JWTs/API keys, and nothing else."""

from __future__ import annotations

import pytest
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory

from accounts.permissions import AdminAPIView
from accounts.tests.helpers import ME, PROFILE, assert_envelope, bearer

pytestmark = pytest.mark.django_db

SECRET = "test-admin-secret-0123456789abcdef"


class ProbeAdminView(AdminAPIView):
    """A stand-in admin route (no real admin routes exist yet)."""

    def get(self, request):
        return Response({"ok": True, "username": getattr(request.user, "username", None)})


@pytest.fixture
def admin_secret(settings):
    settings.ADMIN_SECRET_KEY = SECRET
    return SECRET


def _call(**headers):
    request = APIRequestFactory().get("/api/v1/admin/probe", **headers)
    response = ProbeAdminView.as_view()(request)
    response.render()
    return response


def _assert_error(response, status_code: int) -> dict:
    # No middleware here: request_id is absent, the rest of the envelope is checked.
    return assert_envelope(response, status_code, with_request_id=False)


def test_admin_secret_is_accepted(admin_secret):
    response = _call(HTTP_AUTHORIZATION=f"Bearer {SECRET}")

    assert response.status_code == 200
    assert response.data == {"ok": True, "username": "admin-secret"}


def test_staff_jwt_is_accepted(admin_secret, make_user, tokens_for):
    staff = make_user("root", is_staff=True)

    response = _call(**bearer(tokens_for(staff)["access_token"]))

    assert response.status_code == 200
    assert response.data["username"] == "root"


def test_staff_api_key_is_accepted(admin_secret, make_user, api_key_for):
    staff = make_user("root", is_staff=True)
    raw = api_key_for(staff)["api_key"]

    assert _call(HTTP_X_API_KEY=raw).status_code == 200
    assert _call(HTTP_AUTHORIZATION=f"ApiKey {raw}").status_code == 200


def test_staff_jwt_works_without_any_admin_secret_configured(settings, make_user, tokens_for):
    settings.ADMIN_SECRET_KEY = ""
    staff = make_user("root", is_staff=True)

    assert _call(**bearer(tokens_for(staff)["access_token"])).status_code == 200


def test_normal_user_jwt_is_403(admin_secret, user, tokens_for):
    response = _call(**bearer(tokens_for(user)["access_token"]))

    body = _assert_error(response, 403)
    assert body["code"] == "FORBIDDEN"


def test_normal_user_api_key_is_403(admin_secret, user, api_key_for):
    raw = api_key_for(user)["api_key"]

    _assert_error(_call(HTTP_X_API_KEY=raw), 403)


def test_no_credentials_is_401(admin_secret):
    response = _call()

    _assert_error(response, 401)
    assert "WWW-Authenticate" in response


@pytest.mark.parametrize("value", [
    "wrong-secret",
    SECRET[:-1],
    SECRET + "x",
    SECRET.upper(),
])
def test_wrong_secret_is_401(admin_secret, value):
    _assert_error(_call(HTTP_AUTHORIZATION=f"Bearer {value}"), 401)


def test_secret_under_another_scheme_is_401(admin_secret):
    _assert_error(_call(HTTP_AUTHORIZATION=f"ApiKey {SECRET}"), 401)
    _assert_error(_call(HTTP_X_API_KEY=SECRET), 401)


def test_empty_configured_secret_never_matches(settings):
    settings.ADMIN_SECRET_KEY = ""

    _assert_error(_call(HTTP_AUTHORIZATION="Bearer "), 401)
    _assert_error(_call(HTTP_AUTHORIZATION="Bearer"), 401)


def test_revoked_staff_session_is_401(admin_secret, make_user, tokens_for):
    from accounts.services import user_revoke_all_sessions

    staff = make_user("root", is_staff=True)
    token = tokens_for(staff)["access_token"]
    user_revoke_all_sessions(user=staff)

    _assert_error(_call(**bearer(token)), 401)


@pytest.mark.parametrize("path", [ME, PROFILE])
def test_admin_secret_is_worthless_on_normal_routes(admin_secret, path):
    response = APIClient().get(path, **bearer(SECRET))

    assert_envelope(response, 401)


# --- through the full stack (test URLconf) ----------------------------------------------------


@pytest.mark.urls("accounts.tests.admin_probe_urls")
def test_admin_probe_full_stack(admin_secret, user, tokens_for, make_user):
    url = "/api/v1/_test/admin-probe"
    staff = make_user("root", is_staff=True)

    assert APIClient().get(url, **bearer(SECRET)).status_code == 200
    assert APIClient().get(url, **bearer(tokens_for(staff)["access_token"])).status_code == 200
    assert_envelope(APIClient().get(url, **bearer(tokens_for(user)["access_token"])), 403, code="FORBIDDEN")
    assert_envelope(APIClient().get(url), 401)
    assert_envelope(APIClient().get(url, **bearer("nope")), 401)
    # The real routes are still there in this URLconf.
    assert_envelope(APIClient().get(ME, **bearer(SECRET)), 401)
