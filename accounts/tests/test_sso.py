"""Single sign-on, driven like a browser: our login route, the fake provider's authorize page on
127.0.0.1 (real HTTP), its redirect back to our callback, our redirect to the client with a one-time
code, and the code exchange."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from accounts import oidc
from accounts.models import AuthProvider, SsoIdentity, User
from accounts.tests.fake_oidc import CLIENT_ID, CLIENT_SECRET, serving_oidc
from accounts.tests.helpers import ME, assert_envelope, bearer

LOGIN = "/api/v1/auth/sso/login"
CALLBACK = "/api/v1/auth/sso/callback"
TOKEN = "/api/v1/auth/sso/token"
PROVIDERS = "/api/v1/auth/sso/providers"
APP = "https://app.example.com/auth/callback"

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def idp_server():
    with serving_oidc() as idp:
        yield idp


@pytest.fixture(scope="module")
def second_idp_server():
    with serving_oidc() as idp:
        yield idp


@pytest.fixture
def idp(idp_server, settings):
    idp_server.spoil = ""
    idp_server.identity = {"sub": "user-123", "email": "sso.user@example.com", "email_verified": True,
                           "name": "Sso User", "preferred_username": "sso.user"}
    idp_server.authorize_requests.clear()
    idp_server.token_requests.clear()
    settings.OIDC_ISSUER = idp_server.url
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_SCOPES = "openid email profile"
    settings.OIDC_ALLOWED_REDIRECT_URIS = [APP]
    settings.OIDC_PROVIDERS = {}
    settings.OIDC_CALLBACK_URL = ""
    oidc._clients.clear()
    yield idp_server
    oidc._clients.clear()


def browse_to_callback(client, idp, **query):
    """Our login route -> the provider's authorize page -> the provider's redirect to our callback.
    Returns the callback's query (what the provider sent back)."""
    response = client.get(LOGIN, {"redirect_uri": APP, **query})
    assert response.status_code == 302, response.content
    assert response["Cache-Control"] == "no-store"
    authorize = response["Location"]
    assert authorize.startswith(f"{idp.url}/authorize?")
    back = requests.get(authorize, allow_redirects=False, timeout=10)
    assert back.status_code == 302
    target = urlsplit(back.headers["location"])
    assert target.path == CALLBACK
    return dict(parse_qsl(target.query))


def sign_in(client, idp, **query):
    """The whole browser leg; returns the query our callback sent the client back with."""
    response = client.get(CALLBACK, browse_to_callback(client, idp, **query))
    assert response.status_code == 302, response.content
    final = urlsplit(response["Location"])
    assert f"{final.scheme}://{final.netloc}{final.path}" == APP
    assert not final.fragment
    return dict(parse_qsl(final.query))


def redeem(client, code: str, redirect_uri: str = APP):
    return client.post(TOKEN, {"code": code, "redirect_uri": redirect_uri}, format="json")


def test_first_login_creates_an_sso_account_and_hands_tokens_over_by_code(api_client, idp):
    back = sign_in(api_client, idp, state="client-state-1")
    assert set(back) == {"code", "state"}  # never a token in the URL
    assert back["state"] == "client-state-1"

    asked = idp.authorize_requests[-1]
    assert asked["client_id"] == CLIENT_ID and asked["response_type"] == "code"
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) >= 43
    assert asked["nonce"] and asked["state"] and asked["state"] != "client-state-1"
    assert "openid" in asked["scope"].split()
    assert idp.token_requests[-1]["code_verifier"]  # the fake checked it against the challenge

    response = redeem(api_client, back["code"])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"] and body["refresh_token"]
    assert body["auth_provider"] == "sso" and body["email"] == "sso.user@example.com"
    assert body["username"] == "sso.user" and body["full_name"] == "Sso User"
    me = api_client.get(ME, **bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == body["id"]

    user = User.objects.get(pk=body["id"])
    assert user.auth_provider == AuthProvider.SSO and not user.has_usable_password()
    identity = SsoIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject, identity.provider) == (idp.url, "user-123", "default")


def test_the_code_is_single_use_and_bound_to_its_redirect_uri(api_client, idp):
    back = sign_in(api_client, idp)
    assert redeem(api_client, back["code"]).status_code == 200
    assert_envelope(redeem(api_client, back["code"]), 400, code="INVALID_SSO_CODE")

    other = sign_in(api_client, idp)
    assert_envelope(redeem(api_client, other["code"], "https://app.example.com/other"), 400, code="INVALID_SSO_CODE")
    # The mismatch burned the code: the right redirect_uri no longer helps.
    assert_envelope(redeem(api_client, other["code"]), 400, code="INVALID_SSO_CODE")
    assert_envelope(redeem(api_client, "made-up"), 400, code="INVALID_SSO_CODE")


def test_a_returning_identity_signs_in_as_the_same_account(api_client, idp):
    first = redeem(api_client, sign_in(api_client, idp)["code"]).json()
    idp.identity = {**idp.identity, "email": "renamed@example.com", "preferred_username": "someone-else"}
    second = redeem(api_client, sign_in(api_client, idp)["code"]).json()
    assert second["id"] == first["id"]
    assert User.objects.count() == 1 and SsoIdentity.objects.count() == 1


def test_a_verified_email_links_to_the_existing_local_account(api_client, idp, make_user):
    local = make_user("sso_local", email="SSO.User@example.com")
    body = redeem(api_client, sign_in(api_client, idp)["code"]).json()
    assert body["id"] == local.id
    assert body["auth_provider"] == "local"  # how the account was made; the password still works
    assert SsoIdentity.objects.get(user=local).subject == "user-123"
    assert User.objects.count() == 1


def test_an_unverified_email_never_links_to_an_existing_account(api_client, idp, make_user):
    local = make_user("victim", email="sso.user@example.com")
    idp.identity = {**idp.identity, "email_verified": False}
    back = sign_in(api_client, idp, state="s")
    assert back["error"] == "account_exists" and back["state"] == "s" and "code" not in back
    assert not SsoIdentity.objects.exists()
    assert list(User.objects.values_list("pk", flat=True)) == [local.pk]


@pytest.mark.parametrize("spoil", ["tamper", "nonce", "expired", "aud", "iss", "foreign_key", "none_alg"])
def test_an_id_token_that_fails_validation_signs_nobody_in(api_client, idp, spoil):
    idp.spoil = spoil
    back = sign_in(api_client, idp, state="s")
    assert back["error"] == "invalid_id_token", (spoil, back)
    assert back["state"] == "s" and "code" not in back
    assert not User.objects.exists() and not SsoIdentity.objects.exists()


def test_a_replayed_state_is_refused(api_client, idp):
    callback = browse_to_callback(api_client, idp)
    assert api_client.get(CALLBACK, callback).status_code == 302
    assert_envelope(api_client.get(CALLBACK, callback), 400, code="INVALID_SSO_STATE")
    assert_envelope(api_client.get(CALLBACK, {"state": "forged", "code": "x"}), 400, code="INVALID_SSO_STATE")
    assert_envelope(api_client.get(CALLBACK), 400, code="INVALID_SSO_STATE")


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example.com/auth/callback",
    f"{APP}/",
    f"{APP}x",
    f"{APP}?next=https://evil.example.com",
    f"{APP}#frag",
    "https://app.example.com.evil.com/auth/callback",
    "HTTPS://APP.EXAMPLE.COM/auth/callback",
    "//evil.example.com",
    "javascript:alert(1)",
])
def test_only_an_exactly_allow_listed_redirect_uri_is_accepted(api_client, idp, redirect_uri):
    response = api_client.get(LOGIN, {"redirect_uri": redirect_uri})
    body = assert_envelope(response, 400, code="REDIRECT_URI_NOT_ALLOWED")
    assert "redirect_uri" in body["details"]
    assert not idp.authorize_requests


def test_login_needs_a_redirect_uri(api_client, idp):
    body = assert_envelope(api_client.get(LOGIN), 422)
    assert "redirect_uri" in body["details"]


def test_unconfigured_sso_answers_404_sso_not_configured(api_client, settings):
    settings.OIDC_ISSUER = ""
    settings.OIDC_CLIENT_ID = ""
    settings.OIDC_PROVIDERS = {}
    assert_envelope(api_client.get(LOGIN, {"redirect_uri": APP}), 404, code="SSO_NOT_CONFIGURED")
    assert_envelope(api_client.get(CALLBACK, {"state": "x", "code": "y"}), 404, code="SSO_NOT_CONFIGURED")
    assert_envelope(redeem(api_client, "whatever"), 404, code="SSO_NOT_CONFIGURED")
    listing = api_client.get(PROVIDERS)
    assert listing.status_code == 200 and listing.json() == []


def test_several_providers_at_once(api_client, idp, second_idp_server, settings):
    second_idp_server.identity = {"sub": "corp-7", "email": "corp.person@example.com", "email_verified": True}
    second_idp_server.spoil = ""
    settings.OIDC_PROVIDERS = {"corp": {"issuer": second_idp_server.url, "client_id": CLIENT_ID,
                                        "client_secret": CLIENT_SECRET, "label": "Corp login"}}
    listing = api_client.get(PROVIDERS).json()
    assert [(p["name"], p["label"]) for p in listing] == [("default", "Single sign-on"), ("corp", "Corp login")]

    corp = redeem(api_client, sign_in(api_client, second_idp_server, provider="corp")["code"]).json()
    assert corp["email"] == "corp.person@example.com"
    default = redeem(api_client, sign_in(api_client, idp)["code"]).json()  # no ?provider=: the default one
    assert default["email"] == "sso.user@example.com" and default["id"] != corp["id"]
    assert SsoIdentity.objects.get(user_id=corp["id"]).provider == "corp"

    body = assert_envelope(api_client.get(LOGIN, {"redirect_uri": APP, "provider": "nope"}), 400,
                           code="UNKNOWN_SSO_PROVIDER")
    assert "provider" in body["details"]


def test_the_same_subject_at_another_issuer_is_another_identity(api_client, idp, second_idp_server, settings):
    second_idp_server.identity = {**idp.identity, "email": "other@example.com"}
    settings.OIDC_PROVIDERS = {"corp": {"issuer": second_idp_server.url, "client_id": CLIENT_ID,
                                        "client_secret": CLIENT_SECRET}}
    first = redeem(api_client, sign_in(api_client, idp)["code"]).json()
    other = redeem(api_client, sign_in(api_client, second_idp_server, provider="corp")["code"]).json()
    assert first["id"] != other["id"]


def test_the_providers_refusal_goes_back_to_the_client(api_client, idp):
    callback = browse_to_callback(api_client, idp, state="s")
    response = api_client.get(CALLBACK, {"state": callback["state"], "error": "access_denied"})
    back = dict(parse_qsl(urlsplit(response["Location"]).query))
    assert back["error"] == "access_denied" and back["state"] == "s" and "code" not in back


def test_an_identity_without_email_is_refused(api_client, idp):
    idp.identity = {"sub": "no-mail"}
    assert sign_in(api_client, idp)["error"] == "email_required"
    assert not User.objects.exists()


def test_a_disabled_account_cannot_sign_in(api_client, idp, make_user):
    make_user("off", email="sso.user@example.com", is_active=False)
    assert sign_in(api_client, idp)["error"] == "access_denied"


def test_the_client_redirect_keeps_its_own_query(api_client, idp, settings):
    settings.OIDC_ALLOWED_REDIRECT_URIS = [f"{APP}?tenant=7"]
    response = api_client.get(CALLBACK, browse_to_callback(api_client, idp, redirect_uri=f"{APP}?tenant=7"))
    back = dict(parse_qsl(urlsplit(response["Location"]).query))
    assert back["tenant"] == "7" and back["code"]
    assert redeem(api_client, back["code"], f"{APP}?tenant=7").status_code == 200


def test_an_unreachable_provider_is_a_502(api_client, idp, settings):
    settings.OIDC_ISSUER = "http://127.0.0.1:9"  # nothing listens on the discard port
    assert_envelope(api_client.get(LOGIN, {"redirect_uri": APP}), 502, code="SSO_PROVIDER_UNAVAILABLE")


def test_the_configured_callback_url_is_what_the_provider_is_sent(api_client, idp, settings):
    settings.OIDC_CALLBACK_URL = "https://chat.example.com/api/v1/auth/sso/callback"
    response = api_client.get(LOGIN, {"redirect_uri": APP})
    query = dict(parse_qsl(urlsplit(response["Location"]).query))
    assert query["redirect_uri"] == "https://chat.example.com/api/v1/auth/sso/callback"
