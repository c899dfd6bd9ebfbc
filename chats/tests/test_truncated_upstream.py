"""A provider whose stream ends without its final chunk (the body simply stops) is a failure on every
transport: SSE, WebSocket and ``/v1`` streams end with an error event, JSON answers 502, and the
assistant message is saved with status ``error`` and the partial text (the user's message stays)."""

from __future__ import annotations

import openai
import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from chats.models import Message
from chats.tests.test_sse import asgi_request, bearer, data_events
from chats.tests.test_websocket_common import access_token, frames_until, open_ws
from providers.tests.fakeserver import Step

TEXT = "one two three four five"
CUT = Step("truncate", text=TEXT, after=2)  # "one two", then the body ends: no finish_reason, no [DONE]


@sync_to_async
def saved(conversation_id: str) -> list[tuple[str, str, str]]:
    return list(Message.objects.filter(conversation_id=conversation_id).order_by("created_at")
                .values_list("role", "content", "status"))


@pytest.mark.django_db
def test_json_route_answers_502_and_saves_the_partial_reply(auth_client, openai_configured):
    openai_configured.push(CUT)
    response = auth_client.post("/api/v1/chat/message", {"message": "Count", "conversation_id": "conv_cut"},
                                format="json")
    assert response.status_code == 502 and response.json()["code"] == "PROVIDER_ERROR"
    assert [(r, c, s) for r, c, s in Message.objects.filter(conversation_id="conv_cut").order_by("created_at")
            .values_list("role", "content", "status")] == [("user", "Count", "complete"),
                                                          ("assistant", "one two", "error")]


@pytest.mark.django_db(transaction=True)
async def test_sse_ends_with_an_error_event(openai_configured, user, tokens_for):
    openai_configured.push(CUT)
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={"messages": [{"role": "user", "content": "Count"}], "stream": True})
    events = data_events(response)
    assert [e["data"]["chunk"] for e in events[:-1]] == ["one", " two"]
    assert events[-1]["event"] == "error" and events[-1]["data"]["code"] == "PROVIDER_ERROR"
    assert not any(e["data"].get("finished") and e.get("event") != "error" for e in events)
    assert await saved(events[-1]["data"]["chat_id"]) == [("user", "Count", "complete"),
                                                          ("assistant", "one two", "error")]


@pytest.mark.django_db(transaction=True)
async def test_seed001_stream_ends_with_an_error_event(openai_configured):
    openai_configured.push(CUT)
    response = await asgi_request("POST", "/api/v1/chat/stream", json_body={"message": "Count"})
    events = data_events(response)
    assert events[-1]["event"] == "error" and events[-1]["data"]["response"] == "one two"


@pytest.mark.django_db(transaction=True)
async def test_websocket_ends_with_an_error_frame(openai_configured, user, tokens_for):
    openai_configured.push(CUT, CUT)
    token = await access_token(tokens_for, user)
    comm = await open_ws(f"/ws/chat?token={token}")
    await comm.send_json_to({"type": "chat", "id": "c1", "data": {"message": "Count"}})
    frames = await frames_until(comm)
    await comm.disconnect()
    assert [f["data"]["chunk"] for f in frames[:-1]] == ["one", " two"]
    assert frames[-1]["type"] == "error" and frames[-1]["data"]["code"] == "PROVIDER_ERROR"

    comm = await open_ws(f"/ws/chat/conv_wscut?token={token}")
    await comm.send_json_to({"type": "message", "content": "Count"})
    frames = await frames_until(comm)
    await comm.disconnect()
    assert [f["type"] for f in frames] == ["error"]
    assert frames[0]["data"]["details"]["partial_response"] == "one two"
    assert await saved("conv_wscut") == [("user", "Count", "complete"), ("assistant", "one two", "error")]


@pytest.mark.django_db(transaction=True)
def test_openai_compatible_api_raises_in_the_sdk(gateway_url, openai_configured, user, tokens_for):
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=tokens_for(user)["access_token"], max_retries=0)
    openai_configured.push(CUT)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                    messages=[{"role": "user", "content": "Count"}]):
            received.extend(c.finish_reason for c in chunk.choices)
    assert "stop" not in received
    openai_configured.push(CUT)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Count"}])
    assert info.value.status_code == 502


@pytest.mark.django_db(transaction=True)
async def test_gemini_truncated_stream_is_an_error_too(all_providers_configured, user, tokens_for):
    all_providers_configured["gemini"].push(Step("truncate", text=TEXT, after=2))
    comm = await open_ws(f"/ws/chat/conv_gcut?token={await access_token(tokens_for, user)}")
    await comm.send_json_to({"type": "message", "content": "Count", "model": "gemini-2.5-flash"})
    frames = await frames_until(comm)
    await comm.disconnect()
    assert frames[-1]["type"] == "error"
    assert (await database_sync_to_async(Message.objects.get)(id=frames[-1]["message_id"])).status == "error"
