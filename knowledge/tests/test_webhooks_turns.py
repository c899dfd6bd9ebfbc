"""A real chat turn (seed 004's completions through the fake OpenAI upstream) sends
``chat.created`` and ``message.created`` for the user's message and the assistant's final reply."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from chats.tests.test_sse import asgi_request, bearer
from knowledge import webhooks
from knowledge.tests.test_webhooks import Receiver, _verified
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_turn_sends_signed_chat_and_message_events(openai_configured, user, tokens_for, settings):
    settings.ALLOW_PRIVATE_OUTBOUND = True
    receiver = Receiver()
    try:
        _webhook, secret = await sync_to_async(webhooks.webhook_create)(
            user=user, url=receiver.url, events=["chat.created", "message.created"])
        openai_configured.push(Step(text="AI is a field of computer science."))
        response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                      json_body={"model": "gpt-4o-mini",
                                                 "messages": [{"role": "user", "content": "What is AI?"}]},
                                      timeout=90)
        assert response.status == 200, response.body
        body = response.json()
        payloads = [_verified(r, secret) for r in receiver.requests]
        assert [p["event"] for p in payloads] == ["chat.created", "message.created", "message.created"]
        assert payloads[0]["data"]["id"] == body["chat_id"]
        user_event, reply_event = payloads[1]["data"], payloads[2]["data"]
        assert (user_event["role"], user_event["content"], user_event["chat_id"]) == (
            "user", "What is AI?", body["chat_id"])
        assert (reply_event["role"], reply_event["content"], reply_event["id"]) == (
            "assistant", "AI is a field of computer science.", body["id"])
        assert reply_event["status"] == "complete" and reply_event["parent_message_id"] == user_event["id"]
    finally:
        receiver.close()
