"""The same conversation through every remote adapter (real SDKs against fake upstreams), with
usage and cost recorded; and seed 000's /gemini/register validating the key for real."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from providers import services
from providers.adapters.base import ChatMessage, TextDelta
from providers.models import Model, ProviderConfig, UsageRecord
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

CONVERSATION = [
    ChatMessage("user", "What is the capital of France?"),
    ChatMessage("assistant", "Paris."),
    ChatMessage("user", "And of Italy?"),
]
CASES = [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4.5"), ("gemini", "gemini-2.5-pro")]


@pytest.mark.parametrize("provider, model_id", CASES)
async def test_same_conversation_completes_with_usage_and_cost(all_providers_configured, provider, model_id):
    upstream = all_providers_configured[provider]
    upstream.push(Step(text="Rome is the capital of Italy.", prompt_tokens=30, completion_tokens=8))
    result = await services.chat_complete(services.ChatCall(messages=CONVERSATION, model=model_id,
                                                            system="Answer briefly.", fallback=False))
    assert result.text == "Rome is the capital of Italy."
    assert (result.provider, result.model) == (provider, model_id)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (30, 8)
    model = await sync_to_async(Model.objects.get)(id=model_id)
    expected = (model.input_cost_per_1k * 30 + model.output_cost_per_1k * 8) / Decimal(1000)
    assert result.cost == expected > 0
    row = await sync_to_async(UsageRecord.objects.get)()
    assert (row.provider, row.model, row.total_tokens, row.cost) == (provider, model_id, 38, expected)
    # The whole conversation and the system prompt reached the provider.
    wire = str(upstream.calls[-1].body)
    for text in ("What is the capital of France?", "Paris.", "And of Italy?", "Answer briefly."):
        assert text in wire


@pytest.mark.parametrize("provider, model_id", CASES)
async def test_same_conversation_streams(all_providers_configured, provider, model_id):
    all_providers_configured[provider].push(Step(text="one two three four"))
    stream = await services.achat_stream(services.ChatCall(messages=CONVERSATION, model=model_id, fallback=False))
    deltas = [e.text async for e in stream if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == "one two three four"
    assert stream.result.usage.total_tokens > 0 and stream.result.status == "success"


def test_gemini_register_validates_key_with_a_real_call(all_providers_configured, settings):
    settings.ADMIN_SECRET_KEY = "admin-secret-for-tests-0123456789"
    admin = APIClient()
    admin.credentials(HTTP_AUTHORIZATION="Bearer admin-secret-for-tests-0123456789")
    gemini = all_providers_configured["gemini"]
    body = {"api_key": "AIzaSyB-new-key-7777", "project_id": "my-gcp-project", "default_model": "gemini-pro",
            "description": "Production Gemini API key"}
    response = admin.post("/api/v1/gemini/register", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "valid" and data["test_result"] == "API key is working"
    assert data["default_model"] == "gemini-pro" and data["available_models"]
    assert data["api_key"].endswith("7777") and "new-key" not in data["api_key"]
    assert gemini.calls[-1].headers["x-goog-api-key"] == "AIzaSyB-new-key-7777"
    row = ProviderConfig.objects.get(name="gemini")
    assert row.api_key == "AIzaSyB-new-key-7777" and row.settings["project_id"] == "my-gcp-project"
    # A key the provider refuses is not saved.
    gemini.push(Step("status", status=400))
    refused = admin.post("/api/v1/gemini/register", {**body, "api_key": "AIza-bad"}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_API_KEY"
    assert ProviderConfig.objects.get(name="gemini").api_key == "AIzaSyB-new-key-7777"
    # Normal users may not register keys.
    assert APIClient().post("/api/v1/gemini/register", body, format="json").status_code == 401


def test_gemini_test_route_probes_gemini(all_providers_configured, auth_client):
    all_providers_configured["gemini"].push(Step(text="Yes, I am working."))
    response = auth_client.post("/api/v1/gemini/test", {"message": "Hello, are you working?", "provider": "gemini",
                                                        "model": "gemini-pro"}, format="json")
    body = response.json()
    assert response.status_code == 200 and body["success"] is True
    assert body["response"] == "Yes, I am working." and body["model"] == "gemini-pro"
    # gemini-pro is retired upstream: the catalogue sends its successor.
    assert "gemini-2.5-flash" in all_providers_configured["gemini"].calls[-1].path
