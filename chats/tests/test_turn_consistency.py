"""One turn service for every transport: the same request gets the same model, parameters, system
prompt and credential profile over REST (seeds 000, 001, 004), SSE, WebSocket (seeds 000, 001, 003)
and the OpenAI-compatible API. What the fake upstream receives is compared across all of them."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from chats.tests.test_sse import asgi_request
from chats.tests.test_websocket_common import frames_until, open_ws
from providers.tests.fakeserver import Step
from support.services import chatbot_api_key_create, chatbot_create

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "What is the capital of France?"


async def every_transport(credential: str, request: dict, upstream) -> list[tuple[str, dict]]:
    """Send ``QUESTION`` with ``request``'s model/parameters through each transport; (name, the
    upstream request body) for each."""
    params = {k: v for k, v in request.items() if k != "model"}
    model = {"model": request["model"]} if "model" in request else {}
    headers = {"Authorization": f"Bearer {credential}"}
    sent: list[tuple[str, dict]] = []

    async def record(name: str) -> None:
        sent.append((name, upstream.calls[-1].body))

    upstream.push(*[Step(text="Paris.")] * 9)
    response = await asgi_request("POST", "/api/v1/chat/message", headers=headers, json_body={
        "message": QUESTION, **model, "model_parameters": params})
    assert response.status == 200, response.body
    await record("REST seed 000 /chat/message")
    for name, path, body in [
        ("REST seed 001 /chat/completion", "/api/v1/chat/completion", {"message": QUESTION, **request}),
        ("SSE seed 001 /chat/stream", "/api/v1/chat/stream", {"message": QUESTION, **request}),
        ("REST seed 004 /chat/completions", "/api/v1/chat/completions",
         {"messages": [{"role": "user", "content": QUESTION}], **request}),
        ("SSE seed 004 /chat/completions", "/api/v1/chat/completions",
         {"messages": [{"role": "user", "content": QUESTION}], "stream": True, **request}),
        ("OpenAI /v1/chat/completions", "/v1/chat/completions",
         {"messages": [{"role": "user", "content": QUESTION}], **request}),
    ]:
        response = await asgi_request("POST", path, headers=headers, json_body=body)
        assert response.status == 200, (name, response.body)
        await record(name)
    for name, path, frame in [
        ("WebSocket seed 000", "/ws/chat/conv_same", {"type": "message", "content": QUESTION, **model,
                                                      "model_parameters": params}),
        ("WebSocket seed 001", "/ws/chat", {"type": "chat", "id": "c1", "data": {"message": QUESTION, **request}}),
        ("WebSocket seed 003", "/ws/chat", {"type": "message", "content": QUESTION, **request}),
    ]:
        comm = await open_ws(f"{path}?token={credential}")
        await comm.send_json_to(frame)
        final = (await frames_until(comm))[-1]
        await comm.disconnect()
        assert final["type"] in ("message", "complete"), (name, final)
        await record(name)
    return sent


def wire_view(body: dict) -> dict:
    """What decides the answer: model, sampling, and the prompt (system + the question)."""
    return {"model": body["model"], "temperature": body.get("temperature"), "top_p": body.get("top_p"),
            "max_tokens": body.get("max_tokens"), "messages": json.dumps(body["messages"])}


def assert_all_equal(sent: list[tuple[str, dict]], **expected) -> None:
    first_name, first = sent[0]
    for name, body in sent[1:]:
        assert wire_view(body) == wire_view(first), f"{name} differs from {first_name}"
    for key, value in expected.items():
        assert first[key] == value, key


async def test_preferences_apply_the_same_way_on_every_transport(openai_configured, user, tokens_for):
    user.preferences = {"default_model": "gpt-4o", "temperature": 0.3, "max_tokens": 77,
                        "system_prompt": "Answer in one word."}
    await database_sync_to_async(user.save)()
    token = (await sync_to_async(tokens_for)(user))["access_token"]
    sent = await every_transport(token, {}, openai_configured)
    assert len(sent) == 9
    assert_all_equal(sent, model="gpt-4o", temperature=0.3, max_tokens=77)
    assert sent[0][1]["messages"] == [{"role": "system", "content": "Answer in one word."},
                                      {"role": "user", "content": QUESTION}]


async def test_request_parameters_win_the_same_way_on_every_transport(openai_configured, user, tokens_for):
    user.preferences = {"temperature": 0.9}
    await database_sync_to_async(user.save)()
    token = (await sync_to_async(tokens_for)(user))["access_token"]
    sent = await every_transport(token, {"model": "gpt-4", "temperature": 0.2, "max_tokens": 50}, openai_configured)
    assert_all_equal(sent, model="gpt-4", temperature=0.2, max_tokens=50)


async def test_a_chatbot_keys_profile_applies_on_every_transport(openai_configured, user):
    bot = await sync_to_async(chatbot_create)(owner=user, name="Geo bot", model="gpt-4o",
                                              system_prompt="You are the geography bot.")
    _, raw = await sync_to_async(chatbot_api_key_create)(chatbot=bot)
    sent = await every_transport(raw, {"model": "gpt-4"}, openai_configured)  # the chatbot's model wins
    assert_all_equal(sent, model="gpt-4o")
    assert sent[0][1]["messages"][0] == {"role": "system", "content": "You are the geography bot."}


async def test_a_preference_beyond_the_models_limit_is_fitted_not_refused(openai_configured, user, tokens_for):
    user.preferences = {"max_tokens": 150_000, "temperature": 1.8}
    await database_sync_to_async(user.save)()
    token = (await sync_to_async(tokens_for)(user))["access_token"]
    openai_configured.push(Step(text="Fine."), Step(text="Fine."))
    headers = {"Authorization": f"Bearer {token}"}
    ok = await asgi_request("POST", "/api/v1/chat/message", headers=headers, json_body={"message": QUESTION})
    assert ok.status == 200, ok.body
    assert openai_configured.calls[-1].body["max_tokens"] == 16384  # gpt-4o-mini's output limit
    # The same value in the request itself is refused (422 naming it).
    refused = await asgi_request("POST", "/api/v1/chat/message", headers=headers, json_body={
        "message": QUESTION, "model_parameters": {"max_tokens": 150_000}})
    assert refused.status == 422 and "max_tokens" in refused.json()["details"]
