"""Seed 001's model routes, seed 000's /gemini routes and the /providers routes, over HTTP."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from providers.models import ProviderConfig
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN_SECRET = "admin-secret-for-tests-0123456789"


@pytest.fixture
def admin_client(settings):
    settings.ADMIN_SECRET_KEY = ADMIN_SECRET
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ADMIN_SECRET}")
    return client


def test_models_list_seed_001_shape_for_anonymous_callers(openai_configured):
    response = APIClient().get("/api/v1/models")
    assert response.status_code == 200
    models = response.json()
    assert isinstance(models, list) and models
    assert response["X-Total-Count"] == str(len(models))
    ids = {m["id"] for m in models}
    assert "gpt-3.5-turbo" in ids and "gpt-4" not in ids  # anonymous: public models only
    sample = next(m for m in models if m["id"] == "gpt-3.5-turbo")
    assert set(sample) >= {"id", "name", "provider", "context_length", "description", "capabilities",
                           "available", "cost_per_token"}
    assert sample["available"] is True and sample["provider"] == "openai"
    assert sample["cost_per_token"] == {"input": 0.0005, "output": 0.0015}
    gemini = next(m for m in models if m["id"] == "gemini-2.5-flash")
    assert gemini["available"] is False  # no Gemini key configured


def test_models_list_full_for_users_and_detail(openai_configured, auth_client):
    ids = {m["id"] for m in auth_client.get("/api/v1/models").json()}
    for expected in ("gpt-3.5-turbo", "gpt-4", "gpt-4o", "gpt-4o-mini", "claude-sonnet-4.5", "claude-opus-4.1",
                     "gemini-2.5-flash", "gemini-2.5-pro", "gemini-pro", "gemma-7b", "gemma-2b", "gemma-3-270m"):
        assert expected in ids
    detail = auth_client.get("/api/v1/models/gpt-4").json()
    assert detail["id"] == "gpt-4" and detail["context_length"] == 8192
    assert auth_client.get("/api/v1/models/nope").status_code == 404
    assert APIClient().get("/api/v1/models/gpt-4").status_code == 404  # not public


def test_models_require_auth_when_anonymous_chat_is_off(openai_configured, settings):
    settings.ANONYMOUS_CHAT = False
    assert APIClient().get("/api/v1/models").status_code == 401


def test_provider_listing_masks_keys(openai_configured, auth_client):
    response = auth_client.get("/api/v1/providers")
    assert response.status_code == 200
    listing = {p["name"]: p for p in response.json()}
    assert listing["openai"]["api_key"] == "sk-...1234"
    assert listing["openai"]["source"] == "environment"
    assert listing["local"]["status"] == "disabled"
    assert "sk-test-abcd1234" not in response.content.decode()


def test_admin_creates_provider_after_validating_key(openai_configured, admin_client, backup_upstream):
    body = {"name": "vllm", "kind": "openai", "base_url": backup_upstream.url + "/v1", "api_key": "sk-new-key-5678",
            "default_model": "gpt-4o", "priority": 5}
    response = admin_client.post("/api/v1/providers", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["api_key"] == "sk-...5678"
    assert backup_upstream.calls[-1].path == "/v1/models"  # the key was checked with a real call
    row = ProviderConfig.objects.get(name="vllm")
    assert "sk-new-key-5678" not in row.api_key_encrypted and row.api_key == "sk-new-key-5678"
    # Duplicate name -> 409; a rejected key -> 400 and nothing saved.
    assert admin_client.post("/api/v1/providers", body, format="json").status_code == 409
    backup_upstream.push(Step("status", status=401))
    bad = admin_client.post("/api/v1/providers", {**body, "name": "vllm2"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_API_KEY"
    assert not ProviderConfig.objects.filter(name="vllm2").exists()


def test_provider_writes_are_admin_only(openai_configured, auth_client):
    response = auth_client.post("/api/v1/providers", {"name": "x", "kind": "openai"}, format="json")
    assert response.status_code == 403
    assert auth_client.delete("/api/v1/providers/openai").status_code == 403
    assert APIClient().get("/api/v1/providers").status_code == 401


def test_provider_test_and_health_routes(openai_configured, auth_client):
    openai_configured.push(Step(text="I am working.", prompt_tokens=4, completion_tokens=3))
    response = auth_client.post("/api/v1/providers/openai/test", {"message": "Hello, are you working?"},
                                format="json")
    body = response.json()
    assert response.status_code == 200 and body["success"] is True
    assert body["response"] == "I am working." and body["tokens_used"] == 7
    health = auth_client.get("/api/v1/providers/openai/health").json()
    assert health["status"] == "healthy" and health["response_time"] >= 0
    assert auth_client.get("/api/v1/providers/nope/health").status_code == 404


def test_gemini_providers_and_health_seed_000_shape(openai_configured, auth_client):
    body = auth_client.get("/api/v1/gemini/providers").json()
    assert body["available_providers"] == ["openai"]
    assert body["default_provider"] == "openai"
    assert body["provider_details"]["openai"]["status"] == "configured"
    assert "gpt-4" in body["provider_details"]["openai"]["models"]
    health = auth_client.get("/api/v1/gemini/health").json()
    assert health["overall_status"] == "healthy"
    assert health["providers"]["openai"]["status"] == "healthy"
    assert health["default_provider"] == "openai" and health["default_provider_healthy"] is True


def test_gemini_configure_is_admin_only_and_updates_defaults(openai_configured, admin_client, auth_client):
    payload = {"provider": "openai", "model": "gpt-4o", "temperature": 0.8, "max_tokens": 1500, "is_default": True}
    assert auth_client.post("/api/v1/gemini/configure", payload, format="json").status_code == 403
    response = admin_client.post("/api/v1/gemini/configure", payload, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["default_model"] == "gpt-4o" and body["is_default"] is True
    assert body["configuration"] == {"temperature": 0.8, "max_tokens": 1500}
    # The key still comes from the environment: configuring did not drop it.
    openai_configured.push(Step(text="ok"))
    assert auth_client.post("/api/v1/providers/openai/test", {}, format="json").json()["success"] is True
    assert openai_configured.calls[-1].body["model"] == "gpt-4o"


def test_health_reports_configured_providers(openai_configured):
    body = APIClient().get("/health").json()
    assert body["providers_configured"]["openai"] is True
    assert body["providers_configured"]["gemini"] is False


def test_every_provider_disabled_is_a_clear_503_not_a_crash(openai_configured, admin_client, auth_client):
    # Found by schemathesis: disabling the last provider made every listing raise KeyError.
    assert admin_client.patch("/api/v1/providers/openai", {"enabled": False}, format="json").status_code == 200
    listing = auth_client.get("/api/v1/providers")
    assert listing.status_code == 200
    assert {p["name"]: p["status"] for p in listing.json()}["openai"] == "disabled"
    assert auth_client.get("/api/v1/gemini/providers").json()["default_provider"] == ""
    response = auth_client.post("/api/v1/chat/message", {"message": "Hi"}, format="json")
    assert response.status_code == 503 and response.json()["code"] == "NO_PROVIDER"


def test_models_seed001_pagination(openai_configured, auth_client):
    everything = auth_client.get("/api/v1/models").json()
    assert isinstance(everything, list)  # no paging asked for: seed 001's bare list
    response = auth_client.get("/api/v1/models?page=1&limit=1&sort=created_at&order=desc")
    assert response.status_code == 200
    body = response.json()
    assert len(body["data"]) == 1
    assert body["pagination"] == {"page": 1, "limit": 1, "total": len(everything), "pages": len(everything),
                                  "has_next": True, "has_prev": False}
    assert response["X-Total-Count"] == str(len(everything))

    by_name = auth_client.get("/api/v1/models?sort=name&order=desc").json()
    assert [m["name"] for m in by_name] == sorted((m["name"] for m in everything), reverse=True)
    second = auth_client.get("/api/v1/models?page=2&limit=3&sort=id").json()
    assert [m["id"] for m in second["data"]] == sorted(m["id"] for m in everything)[3:6]
    assert second["pagination"]["has_prev"] is True
    last = auth_client.get(f"/api/v1/models?page={len(everything)}&limit=1").json()
    assert last["pagination"]["has_next"] is False and len(last["data"]) == 1
    assert auth_client.get("/api/v1/models?page=99&limit=50").json()["data"] == []


def test_models_newest_first_by_created_at(openai_configured, auth_client):
    from datetime import timedelta

    from django.utils import timezone

    from providers.models import Model

    Model.objects.create(id="brand-new", provider="openai", upstream_name="brand-new", name="Brand new",
                         created_at=timezone.now() + timedelta(days=1))
    body = auth_client.get("/api/v1/models?page=1&limit=1&sort=created_at&order=desc").json()
    assert body["data"][0]["id"] == "brand-new"


@pytest.mark.parametrize("query, field", [("page=0", "page"), ("limit=101", "limit"), ("limit=abc", "limit"),
                                          ("sort=price", "sort"), ("order=sideways", "order")])
def test_models_pagination_refuses_bad_parameters(openai_configured, auth_client, query, field):
    response = auth_client.get(f"/api/v1/models?{query}")
    assert response.status_code == 422 and field in response.json()["details"]


@pytest.fixture
def secret_admin(settings):
    settings.ADMIN_SECRET_KEY = "configure-secret-0123456789abcdef"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {settings.ADMIN_SECRET_KEY}")
    return client


SEED000_CONFIGURE = {"provider": "gemini", "model": "gemini-pro", "temperature": 0.8, "max_tokens": 1500,
                     "is_default": True}


def test_gemini_configure_is_default_changes_the_default(all_providers_configured, auth_client, secret_admin):
    assert auth_client.get("/api/v1/gemini/providers").json()["default_provider"] == "openai"
    response = secret_admin.post("/api/v1/gemini/configure", SEED000_CONFIGURE, format="json")
    assert response.status_code == 200 and response.json()["is_default"] is True
    assert auth_client.get("/api/v1/gemini/providers").json()["default_provider"] == "gemini"
    all_providers_configured["gemini"].push(Step(text="From Gemini."))
    reply = auth_client.post("/api/v1/chat/message", {"message": "Hello"}, format="json").json()
    assert (reply["provider_used"], reply["model_used"], reply["response"]) == ("gemini", "gemini-pro", "From Gemini.")
    sent = all_providers_configured["gemini"].calls[-1].body
    assert sent["generationConfig"]["temperature"] == 0.8 and sent["generationConfig"]["maxOutputTokens"] == 1500


def test_runtime_default_wins_over_the_environment(all_providers_configured, auth_client, secret_admin, settings):
    settings.DEFAULT_PROVIDER, settings.DEFAULT_MODEL = "openai", "gpt-4o"
    assert auth_client.get("/api/v1/gemini/providers").json()["default_provider"] == "openai"
    secret_admin.post("/api/v1/gemini/configure", SEED000_CONFIGURE, format="json")
    assert auth_client.get("/api/v1/gemini/providers").json()["default_provider"] == "gemini"
    all_providers_configured["gemini"].push(Step(text="Still Gemini."))
    reply = auth_client.post("/api/v1/chat/message", {"message": "Hello"}, format="json").json()
    # DEFAULT_MODEL names an OpenAI model: it never reaches the Gemini default.
    assert (reply["provider_used"], reply["model_used"]) == ("gemini", "gemini-pro")


def test_a_change_made_by_another_worker_is_seen_by_the_next_request(all_providers_configured, auth_client):
    from django.core.cache import cache

    from providers import selectors

    assert auth_client.get("/api/v1/gemini/providers").json()["default_provider"] == "openai"  # now cached here
    # Another worker marks gemini the default: bulk_create sends no signal in this process, as a
    # write in another process would not.
    ProviderConfig.objects.bulk_create([ProviderConfig(name="gemini", kind="gemini", is_default=True)])
    assert auth_client.get("/api/v1/gemini/providers").json()["default_provider"] == "openai"  # stale copy
    # ... and its signal announced the change through the shared cache, as announce_change() does.
    if not cache.add(selectors._VERSION_KEY, 1, timeout=None):
        cache.incr(selectors._VERSION_KEY)
    assert auth_client.get("/api/v1/gemini/providers").json()["default_provider"] == "gemini"
