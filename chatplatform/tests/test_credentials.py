"""The one parser of presented credentials, the catch-all authenticator, the rate limiter's
database-free caller identity, and the rule that the shared kit imports no app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.test import Client, RequestFactory

from chatplatform.api.credentials import Credential, presented
from chatplatform.api.ratelimit import _identity

KIT = Path(__file__).resolve().parents[1] / "api"
APPS = {"accounts", "providers", "knowledge", "chats", "support", "adminpanel"}


@pytest.mark.parametrize(("meta", "expected"), [
    ({}, None),
    ({"HTTP_AUTHORIZATION": "Bearer abc.def.ghi"}, Credential("bearer", "abc.def.ghi")),
    ({"HTTP_AUTHORIZATION": "bearer   cpk_a_b  "}, Credential("bearer", "cpk_a_b")),
    ({"HTTP_AUTHORIZATION": "Bearer"}, Credential("bearer", "")),
    ({"HTTP_AUTHORIZATION": "ApiKey cpk_a_b"}, Credential("apikey", "cpk_a_b")),
    ({"HTTP_AUTHORIZATION": "APIKEY cbk_a_b"}, Credential("apikey", "cbk_a_b")),
    ({"HTTP_X_API_KEY": " cpk_a_b "}, Credential("x-api-key", "cpk_a_b")),
    ({"HTTP_X_API_KEY": "  "}, None),
    ({"HTTP_AUTHORIZATION": "Basic YWxpY2U6cHc="}, None),  # not our scheme: no credentials
    ({"HTTP_AUTHORIZATION": "Basic YWxpY2U6cHc=", "HTTP_X_API_KEY": "cpk_a_b"}, Credential("x-api-key", "cpk_a_b")),
    ({"HTTP_AUTHORIZATION": "Bearer tok.en.x", "HTTP_X_API_KEY": "cpk_a_b"}, Credential("bearer", "tok.en.x")),
])
def test_presented_reads_one_credential(meta, expected):
    assert presented(meta) == expected


def test_credential_shapes():
    assert Credential("bearer", "a.b.c").is_jwt and not Credential("bearer", "cpk_a_b").is_jwt
    assert Credential("apikey", "cpk_pub_secret").key_parts == ("cpk", "pub")
    assert Credential("apikey", "cpk_only").key_parts is None
    assert Credential("apikey", "cbk__secret").key_parts is None
    assert Credential("apikey", "cbk_a_b").has_prefix("cbk") and not Credential("apikey", "cbkx").has_prefix("cbk")


# --- the catch-all: presented but unclaimed is a 401, an unknown scheme is no credentials ---------


BAD = [
    {"HTTP_AUTHORIZATION": "Bearer garbage"},
    {"HTTP_AUTHORIZATION": "Bearer "},
    {"HTTP_AUTHORIZATION": "Bearer xyz_abc_def"},
    {"HTTP_AUTHORIZATION": "Bearer cpk_nope_nope"},
    {"HTTP_AUTHORIZATION": "Bearer cbk_nope_nope"},
    {"HTTP_AUTHORIZATION": "ApiKey nope"},
    {"HTTP_AUTHORIZATION": "ApiKey a.b.c"},
    {"HTTP_X_API_KEY": "nope"},
    {"HTTP_X_API_KEY": "cbk_nope_nope"},
]


@pytest.mark.django_db
@pytest.mark.parametrize("headers", BAD)
def test_unrecognised_credentials_are_401_even_on_anonymous_open_routes(settings, headers):
    settings.ANONYMOUS_CHAT = True
    assert Client().get("/api/v1/models").status_code == 200  # open to anonymous callers
    refused = Client().get("/api/v1/models", **headers)
    assert refused.status_code == 401 and refused.json()["status_code"] == 401
    assert "WWW-Authenticate" in refused
    # The async (non-DRF) open routes run the same classes.
    completion = Client().post("/api/v1/chat/completion", {"message": "Hi"}, content_type="application/json",
                               **headers)
    assert completion.status_code == 401, completion.content


@pytest.mark.django_db
def test_an_unknown_scheme_counts_as_no_credentials(settings):
    settings.ANONYMOUS_CHAT = True
    assert Client().get("/api/v1/models", HTTP_AUTHORIZATION="Basic YWxpY2U6cHc=").status_code == 200
    assert Client().get("/api/v1/auth/me", HTTP_AUTHORIZATION="Basic YWxpY2U6cHc=").status_code == 401


# --- rate-limit identity: from the same parser, without the database ---------------------------


@pytest.mark.django_db
def test_rate_limit_identity_is_database_free(user, tokens_for, django_assert_num_queries):
    access = tokens_for(user)["access_token"]
    factory = RequestFactory()
    cases = [
        ({"HTTP_AUTHORIZATION": f"Bearer {access}"}, (f"user:{user.id}", True)),
        ({"HTTP_AUTHORIZATION": "Bearer cpk_pub1_secret"}, ("key:cpk:pub1", True)),
        ({"HTTP_AUTHORIZATION": "ApiKey cbk_pub2_secret"}, ("key:cbk:pub2", True)),
        ({"HTTP_X_API_KEY": "cpk_pub3_secret"}, ("key:cpk:pub3", True)),
        ({"HTTP_AUTHORIZATION": "Bearer a.b.c"}, ("ip:198.51.100.7", False)),  # forged: per address
        ({"HTTP_AUTHORIZATION": "Basic YWxpY2U6cHc="}, ("ip:198.51.100.7", False)),
        ({}, ("ip:198.51.100.7", False)),
    ]
    with django_assert_num_queries(0):
        for meta, expected in cases:
            assert _identity(factory.get("/api/v1/models", REMOTE_ADDR="198.51.100.7", **meta)) == expected


# --- the shared kit imports no app -------------------------------------------------------------------


def test_the_shared_kit_imports_no_app():
    offenders = []
    for path in sorted(KIT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):  # every import, top-level or inside functions
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] in APPS]
    assert offenders == []
