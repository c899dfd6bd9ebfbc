"""Types are not coerced: text fields take strings only, generation parameters numbers only, and
``max_tokens`` must fit the model. Every refusal is a 422 naming the field, with nothing saved and
no provider called."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from chats.models import Message
from chats.tests.test_websocket_common import access_token, open_ws

pytestmark = pytest.mark.django_db

NOT_TEXT = [123, 1.5, True, ["a"], {"text": "a"}]


@pytest.mark.parametrize("value", NOT_TEXT)
@pytest.mark.parametrize("route, field, body", [
    ("/api/v1/chat/message", "message", {}),
    ("/api/v1/chat/chat", "message", {}),
    ("/api/v1/chat/completion", "message", {}),
    ("/api/v1/chat/completion", "system_prompt", {"message": "Hi"}),
    ("/api/v1/chat/conversation", "title", {}),
])
def test_text_fields_refuse_other_types(route, field, body, value, auth_client, openai_configured):
    response = auth_client.post(route, {**body, field: value}, format="json")
    assert response.status_code == 422, response.content
    assert list(response.json()["details"]) == [field]
    assert not Message.objects.exists() and not openai_configured.calls


@pytest.mark.parametrize("value", NOT_TEXT)
def test_seed004_message_content_must_be_text(value, auth_client, openai_configured):
    response = auth_client.post("/api/v1/chat/completions",
                                {"messages": [{"role": "user", "content": value}]}, format="json")
    assert response.status_code == 422
    assert "messages" in response.json()["details"]
    assert not openai_configured.calls


@pytest.mark.parametrize("params, field", [
    ({"temperature": "0.7"}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"max_tokens": "150"}, "max_tokens"),
    ({"max_tokens": 150.5}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": False}, "max_tokens"),
    ({"top_p": "0.9"}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
])
def test_model_parameters_are_numbers_in_range(params, field, auth_client, openai_configured):
    response = auth_client.post("/api/v1/chat/message", {"message": "Hi", "model_parameters": params}, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["details"] == {"model_parameters": {field: response.json()["details"]
                                                               ["model_parameters"][field]}}
    assert not Message.objects.exists() and not openai_configured.calls


def test_max_tokens_beyond_the_models_limit_is_refused(auth_client, openai_configured):
    response = auth_client.post("/api/v1/chat/message", {
        "message": "Hi", "model": "gpt-4o-mini", "model_parameters": {"max_tokens": 20000}}, format="json")
    assert response.status_code == 422
    assert "16384" in response.json()["details"]["max_tokens"][0]
    assert not Message.objects.exists() and not openai_configured.calls


def test_valid_parameters_reach_the_provider(auth_client, openai_configured):
    response = auth_client.post("/api/v1/chat/message", {
        "message": "Hi", "model_parameters": {"temperature": 1, "max_tokens": 150.0, "top_p": 0.5}}, format="json")
    assert response.status_code == 200, response.content
    sent = openai_configured.calls[-1].body
    assert (sent["temperature"], sent["max_tokens"], sent["top_p"]) == (1.0, 150, 0.5)


@pytest.mark.parametrize("route, body", [
    ("/api/v1/chat/completion", {"message": "Hi", "temperature": "0.7"}),
    ("/api/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": "10"}),
])
def test_top_level_parameters_are_numbers(route, body, auth_client, openai_configured):
    response = auth_client.post(route, body, format="json")
    assert response.status_code == 422
    assert set(response.json()["details"]) <= {"temperature", "max_tokens"}
    assert not openai_configured.calls


def test_openai_api_parameters_are_numbers(auth_client, openai_configured):
    response = auth_client.post("/v1/chat/completions", {
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "temperature": "0.7"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "temperature"
    assert not openai_configured.calls


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("frame, field", [
    ({"type": "message", "content": 123}, "content"),
    ({"type": "message", "content": ["a"]}, "content"),
    ({"type": "message", "content": "Hi", "model_parameters": {"temperature": "0.5"}}, "model_parameters"),
    ({"type": "message", "content": "Hi", "max_tokens": "5"}, "max_tokens"),
])
async def test_websocket_frames_are_not_coerced(frame, field, openai_configured, user, tokens_for):
    comm = await open_ws(f"/ws/chat/conv_types?token={await access_token(tokens_for, user)}")
    await comm.send_json_to(frame)
    error = await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    assert error["type"] == "error" and error["code"] == "INVALID_REQUEST"
    assert field in error["data"]["details"]
    assert not await database_sync_to_async(Message.objects.exists)()
    assert not openai_configured.calls


@pytest.mark.django_db(transaction=True)
async def test_seed001_chat_frame_is_not_coerced(openai_configured, user, tokens_for):
    comm = await open_ws(f"/ws/chat?token={await access_token(tokens_for, user)}")
    await comm.send_json_to({"type": "chat", "id": "m1", "data": {"message": 42}})
    error = await comm.receive_json_from(timeout=5)
    await comm.send_json_to({"type": "chat", "id": "m2", "data": {"message": "Hi", "temperature": "1"}})
    error2 = await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    assert error["id"] == "m1" and "message" in error["data"]["details"]
    assert error2["id"] == "m2" and "temperature" in error2["data"]["details"]
    assert not openai_configured.calls


@pytest.mark.parametrize("field", ["metadata", "settings"])
def test_nul_characters_in_json_fields_are_refused(field, auth_client):
    # PostgreSQL cannot store NUL in text or JSON: a 422, not a 500 (schemathesis found it there).
    for value in ({"a": "x\x00y"}, {"k\x00": 1}, {"list": ["ok", "\x00"]}):
        response = auth_client.post("/api/v1/chat/conversation", {"title": "t", field: value}, format="json")
        assert response.status_code == 422 and field in response.json()["details"]
    assert auth_client.post("/api/v1/chats", {"title": "ok", field: {"a": "b"}}, format="json").status_code == 201


# --- a field a turn route does not know is a 400 naming it, never silently dropped -------------------


@pytest.mark.parametrize("route, body, named", [
    ("/api/v1/chat/message", {"message": "Hi", "bogus": 1}, ["bogus"]),
    ("/api/v1/chat/message", {"message": "Hi", "temprature": 0.5, "zz": None}, ["temprature", "zz"]),
    ("/api/v1/chat/message", {"message": "Hi", "model_parameters": {"temprature": 0.5}},
     ["model_parameters.temprature"]),
    ("/api/v1/chat/chat", {"message": "Hi", "priority": "high"}, ["priority"]),
    ("/api/v1/chat/conversation", {"title": "t", "initial_message": "Hi", "colour": "red"}, ["colour"]),
    ("/api/v1/chat/completion", {"message": "Hi", "frequency_penalty": 0.5}, ["frequency_penalty"]),
    ("/api/v1/chat/stream", {"message": "Hi", "history": []}, ["history"]),
    ("/api/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "use_ragg": True}, ["use_ragg"]),
])
def test_turn_routes_refuse_unknown_fields(route, body, named, auth_client, openai_configured):
    response = auth_client.post(route, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["code"] == "UNSUPPORTED_FIELD" and sorted(error["details"]) == named
    assert all(name in error["message"] for name in named)
    assert not Message.objects.exists() and not openai_configured.calls


def test_edit_and_regenerate_refuse_unknown_fields(auth_client, openai_configured):
    sent = auth_client.post("/api/v1/chat/message", {"message": "Hi", "conversation_id": "c_known"}, format="json")
    assert sent.status_code == 200, sent.content
    reply_id = sent.json()["message_id"]
    user_id = Message.objects.get(conversation_id="c_known", role="user").id
    count, calls = Message.objects.count(), len(openai_configured.calls)
    edit = auth_client.put(f"/api/v1/chat/conversation/c_known/messages/{user_id}",
                           {"content": "Hello", "tone": "warm"}, format="json")
    regenerate = auth_client.post(f"/api/v1/chat/conversation/c_known/messages/{reply_id}/regenerate",
                                  {"seed": 7}, format="json")
    assert (edit.status_code, edit.json()["details"].keys()) == (400, {"tone"}), edit.content
    assert (regenerate.status_code, regenerate.json()["details"].keys()) == (400, {"seed"}), regenerate.content
    assert Message.objects.count() == count and len(openai_configured.calls) == calls


@pytest.mark.django_db(transaction=True)
async def test_websocket_frames_refuse_unknown_fields(openai_configured, user, tokens_for):
    comm = await open_ws(f"/ws/chat?token={await access_token(tokens_for, user)}")
    await comm.send_json_to({"type": "message", "id": "f1", "content": "Hi", "mood": "curious"})
    error = await comm.receive_json_from(timeout=5)
    await comm.send_json_to({"type": "chat", "id": "m1", "data": {"message": "Hi", "temprature": 1}})
    error2 = await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    # A frame's error code is the WebSocket vocabulary's (a 400 is INVALID_REQUEST); the text names the field.
    assert error["type"] == "error" and error["data"]["status_code"] == 400
    assert error["data"]["details"] == {"mood": ["Unsupported field."]} and "mood" in error["error"]
    assert error2["id"] == "m1" and error2["data"]["details"] == {"temprature": ["Unsupported field."]}
    assert not await database_sync_to_async(Message.objects.exists)()
    assert not openai_configured.calls
