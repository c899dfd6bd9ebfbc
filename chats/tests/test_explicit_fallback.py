"""Fallback is explicit. With OpenAI, Anthropic and Gemini configured: a request that names a provider
or a model gets it or an error (502 after bounded retries); other models answer only along a chain
the operator configured for that model (MODEL_FALLBACKS, or a ProviderConfig row's ``fallbacks``), and
a request that names nothing follows the default chain. The response names the model that answered."""

from __future__ import annotations

import pytest

from chats.models import Message
from providers.models import ProviderConfig
from providers.services import provider_config_save
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db

URL = "/api/v1/chat/message"
DOWN = [Step("status", status=500)] * 3  # the first try and PROVIDER_MAX_RETRIES (2) retries


def others_untouched(upstreams) -> bool:
    return not upstreams["anthropic"].calls and not upstreams["gemini"].calls


@pytest.mark.parametrize("body", [{"provider": "openai"}, {"model": "gpt-4o-mini"},
                                  {"provider": "openai", "model": "gpt-4o"}])
def test_named_provider_or_model_that_fails_is_a_502_not_another_provider(body, auth_client,
                                                                          all_providers_configured):
    upstreams = all_providers_configured
    upstreams["openai"].push(*DOWN)
    response = auth_client.post(URL, {"message": "Hello", "conversation_id": "conv_named", **body}, format="json")
    assert response.status_code == 502, response.content
    assert response.json()["code"] == "PROVIDER_ERROR"
    assert len(upstreams["openai"].calls) == 3  # bounded retries, then the error
    assert others_untouched(upstreams)
    # The user's message is kept; the reply is saved as an error.
    assert list(Message.objects.filter(conversation_id="conv_named").values_list("role", "status")) == [
        ("user", "complete"), ("assistant", "error")]


def test_env_chain_for_the_named_model_answers_and_is_named(auth_client, all_providers_configured, settings):
    upstreams = all_providers_configured
    settings.MODEL_FALLBACKS = {"gpt-4o-mini": ["gemini-2.5-flash", "claude-sonnet-4.5"]}
    upstreams["openai"].push(*DOWN)
    upstreams["gemini"].push(Step(text="Gemini here."))
    response = auth_client.post(URL, {"message": "Hello", "model": "gpt-4o-mini"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["response"], body["model_used"], body["provider_used"]) == (
        "Gemini here.", "gemini-2.5-flash", "gemini")
    assert not upstreams["anthropic"].calls


def test_provider_config_chain_wins_over_the_env(auth_client, all_providers_configured, settings):
    upstreams = all_providers_configured
    settings.MODEL_FALLBACKS = {"gpt-4o-mini": ["gemini-2.5-flash"]}
    provider_config_save(name="openai", kind="openai", fallbacks={"*": ["claude-sonnet-4.5"]})
    upstreams["openai"].push(*DOWN)
    upstreams["anthropic"].push(Step(text="Claude here."))
    response = auth_client.post(URL, {"message": "Hello", "provider": "openai"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["model_used"], response.json()["provider_used"]) == ("claude-sonnet-4.5", "anthropic")
    assert not upstreams["gemini"].calls


def test_request_naming_nothing_follows_the_default_chain(auth_client, all_providers_configured, settings):
    upstreams = all_providers_configured
    settings.DEFAULT_FALLBACKS = ["gemini-2.5-flash"]
    upstreams["openai"].push(*DOWN)  # openai is the default provider (first by priority)
    upstreams["gemini"].push(Step(text="Default chain."))
    response = auth_client.post(URL, {"message": "Hello"}, format="json")
    assert response.status_code == 200
    assert response.json()["model_used"] == "gemini-2.5-flash"
    assert not upstreams["anthropic"].calls


def test_default_chain_none_means_no_fallback(auth_client, all_providers_configured, settings):
    upstreams = all_providers_configured
    settings.DEFAULT_FALLBACKS = []
    upstreams["openai"].push(*DOWN)
    response = auth_client.post(URL, {"message": "Hello"}, format="json")
    assert response.status_code == 502
    assert others_untouched(upstreams)


def test_unset_default_chain_is_every_other_provider_by_priority(auth_client, all_providers_configured):
    upstreams = all_providers_configured
    upstreams["openai"].push(*DOWN)
    upstreams["anthropic"].push(Step(text="Next by priority."))
    response = auth_client.post(URL, {"message": "Hello"}, format="json")
    assert response.status_code == 200 and response.json()["provider_used"] == "anthropic"


def test_named_model_of_an_unconfigured_provider_is_refused(auth_client, openai_configured):
    response = auth_client.post(URL, {"message": "Hello", "model": "claude-sonnet-4.5"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "PROVIDER_NOT_CONFIGURED" and "model" in response.json()["details"]
    assert not openai_configured.calls and not Message.objects.exists()


def test_fallbacks_are_validated_when_saved_through_the_api(admin_client_secret, openai_configured):
    bad = admin_client_secret.put("/api/v1/providers/openai", {"fallbacks": {"*": ["no-such-model"]}},
                                  format="json")
    assert bad.status_code == 422 and "fallbacks" in bad.json()["details"]
    ok = admin_client_secret.put("/api/v1/providers/openai", {"fallbacks": {"gpt-4o": ["gemini-2.5-flash"]}},
                                 format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["fallbacks"] == {"gpt-4o": ["gemini-2.5-flash"]}
    assert ProviderConfig.objects.get(name="openai").fallbacks == {"gpt-4o": ["gemini-2.5-flash"]}


@pytest.fixture
def admin_client_secret(settings):
    from rest_framework.test import APIClient

    settings.ADMIN_SECRET_KEY = "admin-secret-for-tests-0123456789"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer admin-secret-for-tests-0123456789")
    return client


def test_model_fallbacks_env_syntax():
    from django.core.exceptions import ImproperlyConfigured

    from chatplatform.settings import _fallback_chains

    assert _fallback_chains(" gpt-4o = claude-sonnet-4.5, gemini-2.5-flash ;gpt-4o-mini=gemini-2.5-flash;") == {
        "gpt-4o": ["claude-sonnet-4.5", "gemini-2.5-flash"], "gpt-4o-mini": ["gemini-2.5-flash"]}
    assert _fallback_chains("") == {}
    for bad in ("gpt-4o", "gpt-4o=", "=gemini-2.5-flash"):
        with pytest.raises(ImproperlyConfigured):
            _fallback_chains(bad)
