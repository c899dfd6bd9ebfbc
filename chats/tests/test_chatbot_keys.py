"""Seed 002: a chatbot's key chats on behalf of that chatbot — its system prompt and model apply,
and its llm_endpoint_url (SSRF-checked) is the provider called."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from providers.models import UsageRecord
from providers.tests.fakeserver import Step
from support.services import chatbot_api_key_create, chatbot_api_key_revoke, chatbot_create

pytestmark = pytest.mark.django_db(transaction=True)


def key_client(raw: str, header: str = "bearer") -> APIClient:
    client = APIClient()
    if header == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    else:
        client.credentials(HTTP_X_API_KEY=raw)
    return client


@pytest.fixture
def endpoint_bot(settings, user, backup_upstream, openai_configured):
    settings.ALLOW_PRIVATE_OUTBOUND = True  # the bot's endpoint is a fake on 127.0.0.1
    backup_upstream.reset()
    bot = chatbot_create(owner=user, name="Docs bot", llm_endpoint_url=backup_upstream.url + "/v1",
                         model="my-vllm-model", system_prompt="You are the docs bot.")
    return bot, chatbot_api_key_create(chatbot=bot)[1]


def test_chatbot_key_routes_through_its_endpoint_with_its_prompt_and_model(endpoint_bot, backup_upstream,
                                                                          openai_configured):
    bot, raw = endpoint_bot
    backup_upstream.push(Step(text="From the bot's own model."))
    response = key_client(raw, "x-api-key").post("/api/v1/chat/completion", {"message": "Hi"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["response"] == "From the bot's own model."
    sent = backup_upstream.calls[-1].body
    assert sent["model"] == "my-vllm-model"
    assert sent["messages"][0] == {"role": "system", "content": "You are the docs bot."}
    assert not openai_configured.calls  # the default provider was not used
    usage = UsageRecord.objects.get()
    assert usage.user_id == bot.owner_id and usage.api_key_id is None


def test_chatbot_key_on_conversation_and_openai_routes(endpoint_bot, backup_upstream):
    _, raw = endpoint_bot
    backup_upstream.push(Step(text="Conversation reply"), Step(text="OpenAI-style reply"))
    message = key_client(raw).post("/api/v1/chat/message", {"message": "Hello!"}, format="json")
    assert message.status_code == 200 and message.json()["response"] == "Conversation reply"
    v1 = key_client(raw).post("/v1/chat/completions", {"model": "anything", "messages": [
        {"role": "user", "content": "Hi"}]}, format="json")
    assert v1.status_code == 200, v1.content
    assert v1.json()["choices"][0]["message"]["content"] == "OpenAI-style reply"
    assert backup_upstream.calls[-1].body["model"] == "my-vllm-model"


def test_chatbot_without_endpoint_uses_the_default_provider_with_its_prompt(user, openai_configured):
    bot = chatbot_create(owner=user, name="Plain bot", system_prompt="Answer like a pirate.")
    raw = chatbot_api_key_create(chatbot=bot)[1]
    openai_configured.push(Step(text="Arr!"))
    response = key_client(raw).post("/api/v1/chat/completion", {"message": "Hi"}, format="json")
    assert response.status_code == 200 and response.json()["response"] == "Arr!"
    assert openai_configured.calls[-1].body["messages"][0]["content"] == "Answer like a pirate."


def test_private_endpoint_refused_at_call_time_without_the_opt_in(endpoint_bot, settings, backup_upstream):
    _, raw = endpoint_bot
    settings.ALLOW_PRIVATE_OUTBOUND = False
    response = key_client(raw).post("/api/v1/chat/completion", {"message": "Hi"}, format="json")
    assert response.status_code == 502
    assert not backup_upstream.calls


def test_revoked_chatbot_key_is_401_and_keys_do_not_reach_account_routes(endpoint_bot):
    bot, raw = endpoint_bot
    assert key_client(raw).get("/api/v1/auth/me").status_code == 403
    key = bot.api_keys.get()
    chatbot_api_key_revoke(chatbot=bot, key_id=key.id)
    assert key_client(raw).post("/api/v1/chat/completion", {"message": "Hi"}, format="json").status_code == 401


async def test_chatbot_key_over_websocket(endpoint_bot, backup_upstream):
    from chats.tests.test_websocket_common import frames_until, open_ws

    _, raw = endpoint_bot
    backup_upstream.push(Step(text="Bot over WebSocket"))
    comm = await open_ws(f"/ws/chat?token={raw}")
    await comm.send_json_to({"type": "chat", "id": "c1", "data": {"message": "Hi", "model": "gpt-4o-mini"}})
    frames = await frames_until(comm)
    await comm.disconnect()
    assert frames[-1]["type"] == "complete" and frames[-1]["data"]["response"] == "Bot over WebSocket"
    sent = backup_upstream.calls[-1].body
    assert sent["model"] == "my-vllm-model" and sent["messages"][0]["content"] == "You are the docs bot."
