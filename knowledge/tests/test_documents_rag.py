"""``use_rag`` on seed 004's ``POST /api/v1/chat/completions``: the user's document chunks reach the
provider's prompt (the fake OpenAI upstream records it) and the reply cites them; streamed replies
send an ``event: citations``; a chat's ``settings.use_rag`` turns it on for every turn."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from chats import services as chat_services
from chats.models import Message
from chats.tests.test_sse import asgi_request, bearer, data_events
from knowledge import documents
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

MANUAL = ("# Office manual\n\nThe wifi password of the Lisbon office is heron-teapot-42.\n\n"
          "## Parking\n\nVisitors park on level minus two.")
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the Lisbon office wifi password?"}],
           "use_rag": True}


def system_prompt(call) -> str:
    return next((m["content"] for m in call.body["messages"] if m["role"] == "system"), "")


async def upload(user, title: str, text: str):
    return await sync_to_async(documents.document_create)(owner=user, title=title, data=text.encode(),
                                                          mime_type="text/markdown")


async def test_use_rag_answers_from_the_document_and_cites_it(openai_configured, user, make_user, tokens_for, minilm):
    doc = await upload(user, "Office manual", MANUAL)
    stranger = await sync_to_async(make_user)("mallory")
    await upload(stranger, "Secrets", "The Lisbon office wifi password is mallory-owns-this.")
    openai_configured.push(Step(text="It is heron-teapot-42 [1]."), Step(text="No documents used."))
    headers = await bearer(tokens_for, user)
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=headers, json_body=REQUEST, timeout=90)
    assert response.status == 200, response.body
    body = response.json()
    assert body["message"]["content"] == "It is heron-teapot-42 [1]."
    citations = body["citations"]
    assert citations[0]["document_id"] == doc.id and citations[0]["title"] == "Office manual"
    assert citations[0]["chunk_index"] == 0 and "heron-teapot-42" in citations[0]["snippet"]
    assert citations[0]["score"] > 0
    assert all(c["document_id"] == doc.id for c in citations)  # never another user's document
    prompt = system_prompt(openai_configured.calls[0])
    assert "heron-teapot-42" in prompt and "[1] Office manual (chunk 0)" in prompt
    assert "mallory-owns-this" not in prompt
    saved = await sync_to_async(Message.objects.get)(id=body["id"])
    assert saved.metadata["citations"] == citations  # kept with the reply
    # Without use_rag nothing is retrieved and no citations key appears.
    plain = await asgi_request("POST", "/api/v1/chat/completions", headers=headers,
                               json_body={**REQUEST, "use_rag": False}, timeout=90)
    assert plain.status == 200 and "citations" not in plain.json()
    assert "heron-teapot-42" not in system_prompt(openai_configured.calls[1])


async def test_use_rag_streams_citations_first(openai_configured, user, tokens_for, minilm):
    doc = await upload(user, "Office manual", MANUAL)
    openai_configured.push(Step(text="heron-teapot-42"))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={**REQUEST, "stream": True}, timeout=90)
    events = data_events(response)
    assert events[0]["event"] == "citations" and events[0]["data"]["citations"][0]["document_id"] == doc.id
    assert "".join(e["data"].get("chunk", "") for e in events) == "heron-teapot-42"
    assert events[-1]["data"]["citations"] == events[0]["data"]["citations"]


async def test_chat_setting_turns_rag_on(openai_configured, user, tokens_for, minilm):
    await upload(user, "Office manual", MANUAL)
    chat = await sync_to_async(chat_services.conversation_create)(user=user, settings={"use_rag": True})
    openai_configured.push(Step(text="Level minus two."))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={"chat_id": chat.id, "model": "gpt-4o-mini",
                                             "messages": [{"role": "user", "content": "Where do visitors park?"}]},
                                  timeout=90)
    assert response.status == 200, response.body
    assert response.json()["citations"][0]["title"] == "Office manual"
    assert "level minus two" in system_prompt(openai_configured.calls[0])


async def test_use_rag_without_documents_cites_nothing(openai_configured, user, tokens_for, minilm):
    openai_configured.push(Step(text="I do not know."))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body=REQUEST, timeout=90)
    assert response.status == 200 and response.json()["citations"] == []
    assert system_prompt(openai_configured.calls[0]) == ""
