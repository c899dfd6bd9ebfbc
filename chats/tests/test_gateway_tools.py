"""Tool calling, structured outputs and images through ``/v1/chat/completions`` with the official
``openai`` SDK, for each provider behind it: the fake upstreams check what they receive the way the
real APIs do and must receive the translated tools, schemas and images."""

from __future__ import annotations

import base64
import json

import openai
import pytest
from pydantic import BaseModel

from chats.models import Message
from chats.tests.usage import recorded
from providers.catalogue import LOCAL_MODEL_ID
from providers.models import UsageRecord
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
# The smallest PNG there is (1x1, transparent).
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4.5", "gemini": "gemini-2.5-flash"}


@pytest.fixture
def upstreams(all_providers_configured):
    for upstream in all_providers_configured.values():
        upstream.default_kind = "auto"
    return all_providers_configured


def sent_tools(provider: str, body: dict) -> list[tuple[str, dict]]:
    """(name, JSON Schema) of the tools a provider received, in its own wire shape."""
    if provider == "openai":
        return [(t["function"]["name"], t["function"]["parameters"]) for t in body["tools"]]
    if provider == "anthropic":
        return [(t["name"], t["input_schema"]) for t in body["tools"]]
    return [(d["name"], d.get("parametersJsonSchema") or d["parameters_json_schema"]) for t in body["tools"] for d in t["functionDeclarations"]]


@pytest.mark.parametrize("provider", MODELS)
def test_a_tool_call_and_its_result_round_trip(upstreams, openai_client, provider):
    upstream = upstreams[provider]
    question = {"role": "user", "content": "What is the weather in 'Paris'?"}
    first = openai_client.chat.completions.create(model=MODELS[provider], messages=[question], tools=[WEATHER],
                                           tool_choice="required")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert sent_tools(provider, upstream.calls[0].body) == [("get_weather", WEATHER["function"]["parameters"])]
    choice_sent = {"openai": lambda b: b["tool_choice"], "anthropic": lambda b: b["tool_choice"]["type"],
                   "gemini": lambda b: b["toolConfig"]["functionCallingConfig"]["mode"]}[provider]
    assert choice_sent(upstream.calls[0].body) == {"openai": "required", "anthropic": "any", "gemini": "ANY"}[provider]

    second = openai_client.chat.completions.create(model=MODELS[provider], tools=[WEATHER], messages=[
        question, choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'}])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == 'The tool answered: {"temperature": 21}'
    history = upstream.calls[1].body
    if provider == "openai":
        assert history["messages"][1]["tool_calls"][0]["id"] == call.id
        assert history["messages"][2] == {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'}
    elif provider == "anthropic":
        assert history["messages"][1]["content"] == [{"type": "tool_use", "id": call.id, "name": "get_weather",
                                                      "input": {"city": "Paris"}}]
        assert history["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": call.id,
                                                      "content": '{"temperature": 21}'}]
    else:
        assert history["contents"][1]["parts"][0]["functionCall"]["args"] == {"city": "Paris"}
        response = history["contents"][2]["parts"][0]["functionResponse"]
        assert response["name"] == "get_weather" and response["response"] == {"temperature": 21}
    records = UsageRecord.objects.order_by("created_at")
    assert records.count() == 2 and all(r.total_tokens > 0 for r in records)


@pytest.mark.parametrize("provider", MODELS)
def test_streamed_tool_calls_in_openais_chunk_format(upstreams, openai_client, provider):
    with openai_client.chat.completions.stream(model=MODELS[provider], tools=[WEATHER], stream_options={"include_usage": True},
                                        messages=[{"role": "user", "content": "Weather in 'Oslo' please"}]) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    assert any(e.type == "tool_calls.function.arguments.delta" for e in events)
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo"}
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage.total_tokens > 0
    record = recorded()  # written just after the stream's last event
    assert record.total_tokens == final.usage.total_tokens


class CityReport(BaseModel):
    city: str
    population: int
    capital: bool


@pytest.mark.parametrize("provider", MODELS)
def test_parse_with_a_pydantic_schema(upstreams, openai_client, provider):
    completion = openai_client.chat.completions.parse(
        model=MODELS[provider], response_format=CityReport,
        messages=[{"role": "user", "content": "Describe 'Lyon', population 513000."}])
    parsed = completion.choices[0].message.parsed
    assert parsed == CityReport(city="Lyon", population=513000, capital=True)
    body = upstreams[provider].calls[0].body
    schema = CityReport.model_json_schema()
    if provider == "openai":
        sent = body["response_format"]
        assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
        assert sent["json_schema"]["schema"]["properties"] == schema["properties"]
    elif provider == "anthropic":
        assert body["output_config"]["format"]["schema"]["properties"] == schema["properties"]
    else:
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        assert body["generationConfig"]["responseJsonSchema"]["properties"] == schema["properties"]


def test_json_object_mode(upstreams, openai_client):
    completion = openai_client.chat.completions.create(model="gemini-2.5-flash", response_format={"type": "json_object"},
                                                messages=[{"role": "user", "content": "JSON please"}])
    assert isinstance(json.loads(completion.choices[0].message.content), dict)
    assert upstreams["gemini"].calls[0].body["generationConfig"]["responseMimeType"] == "application/json"


@pytest.mark.parametrize("provider", MODELS)
def test_json_mode_answers_the_keys_the_question_names(upstreams, openai_client, provider):
    """LangChain's test_json_mode: JSON mode, with the keys asked for in the prompt."""
    completion = openai_client.chat.completions.create(
        model=MODELS[provider], response_format={"type": "json_object"}, stream=False,
        messages=[{"role": "user", "content": "A joke as JSON with 'setup' and 'punchline' keys."}])
    assert set(json.loads(completion.choices[0].message.content)) == {"setup", "punchline"}
    if provider == "anthropic":  # JSON mode reaches Anthropic as a schema any object matches
        assert upstreams[provider].calls[0].body["output_config"]["format"]["schema"]["type"] == "object"


def test_a_reply_that_breaks_the_schema_is_a_502_not_bad_json(upstreams, openai_client):
    upstreams["anthropic"].push(Step(text='{"city": 3}'))
    with pytest.raises(openai.APIStatusError) as raised:
        openai_client.chat.completions.parse(model="claude-haiku-4.5", response_format=CityReport,
                                      messages=[{"role": "user", "content": "Lyon"}])
    assert raised.value.status_code == 502
    assert "does not match the response schema" in raised.value.message
    record = UsageRecord.objects.get()  # the upstream's tokens were spent all the same
    assert (record.prompt_tokens, record.completion_tokens) == (11, 7)


@pytest.mark.parametrize("provider", MODELS)
def test_images_reach_vision_models_translated(upstreams, openai_client, provider):
    openai_client.chat.completions.create(model=MODELS[provider], messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}}]}])
    body = upstreams[provider].calls[0].body
    if provider == "openai":
        parts = body["messages"][0]["content"]
        assert parts[0] == {"type": "text", "text": "What is in this picture?"}
        assert parts[1]["image_url"]["url"] == PNG_URL
    elif provider == "anthropic":
        image = body["messages"][0]["content"][1]
        assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                     "data": base64.b64encode(PNG).decode()}}
    else:
        inline = body["contents"][0]["parts"][1]["inlineData"]
        assert (inline.get("mimeType") or inline.get("mime_type")) == "image/png" and base64.b64decode(inline["data"]) == PNG


@pytest.mark.parametrize("provider", MODELS)
def test_an_image_in_a_tool_result_reaches_the_upstream_translated(upstreams, openai_client, provider):
    """LangChain's standard test_image_tool_message: a tool answers with a picture."""
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    reply = openai_client.chat.completions.create(model=MODELS[provider], tools=[WEATHER], messages=[
        {"role": "user", "content": "Show me the weather map of 'Paris'"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": [
            {"type": "text", "text": "the map"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]}])
    result = '{"result": "the map"}' if provider == "gemini" else "the map"  # Gemini's results are objects
    assert reply.choices[0].message.content == f"The tool answered: {result}"
    body = upstreams[provider].calls[0].body
    if provider == "openai":
        assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": [
            {"type": "text", "text": "the map"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]}
    elif provider == "anthropic":
        assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_1", "content": [
            {"type": "text", "text": "the map"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.b64encode(PNG).decode()}}]}]
    else:
        parts = body["contents"][2]["parts"]
        assert parts[0]["functionResponse"]["response"] == {"result": "the map"}
        inline = parts[1]["inlineData"]
        assert base64.b64decode(inline["data"]) == PNG


def test_an_image_in_a_tool_result_needs_a_vision_model(upstreams, openai_client):
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client.chat.completions.create(model="gpt-3.5-turbo", tools=[WEATHER], messages=[
            {"role": "user", "content": "Map?"}, {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]}])
    assert "vision" in refused.value.message
    assert not upstreams["openai"].calls


def test_remote_images_are_fetched_through_the_outbound_guard(upstreams, openai_client, settings, openai_upstream):
    image_server = openai_upstream  # any fake on 127.0.0.1: a private address the guard refuses
    url = f"{image_server.url}/picture.png"
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client.chat.completions.create(model="claude-haiku-4.5", messages=[{"role": "user", "content": [
            {"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": url}}]}])
    assert refused.value.body["param"] == "messages" and "loopback" in refused.value.message
    assert not upstreams["anthropic"].calls
    settings.ALLOW_PRIVATE_OUTBOUND = True  # an operator who serves images on the private network
    image_server.push(Step("status", status=404))
    with pytest.raises(openai.BadRequestError) as missing:
        openai_client.chat.completions.create(model="claude-haiku-4.5", messages=[{"role": "user", "content": [
            {"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": url}}]}])
    assert "HTTP 404" in missing.value.message


def test_models_without_the_capability_answer_400_naming_it(upstreams, openai_client):
    for kwargs, capability in [({"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": PNG_URL}}]}]}, "vision"),
            ({"model": "gpt-3.5-turbo", "response_format": {"type": "json_schema", "json_schema": {
                "name": "x", "schema": {"type": "object"}}}, "messages": [{"role": "user", "content": "Hi"}]},
             "json_schema"),
            ({"model": LOCAL_MODEL_ID, "tools": [WEATHER], "messages": [{"role": "user", "content": "Hi"}]}, "tools")]:
        with pytest.raises(openai.BadRequestError) as refused:
            openai_client.chat.completions.create(**kwargs)
        assert capability in refused.value.message and refused.value.code == "unsupported_capability"
    assert not upstreams["openai"].calls


def test_tool_calls_are_stored_and_a_chat_continues_on_seed_004(upstreams, auth_client):
    first = auth_client.post("/api/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Weather in 'Rome'?"}], "model": "claude-haiku-4.5",
        "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, format="json")
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["finish_reason"] == "tool_calls"
    call = body["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Rome"}
    assert upstreams["anthropic"].calls[0].body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    second = auth_client.post("/api/v1/chat/completions", {
        "chat_id": body["chat_id"], "model": "claude-haiku-4.5", "tools": [WEATHER],
        "messages": [{"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]}, format="json")
    assert second.status_code == 200, second.content
    assert second.json()["message"]["content"] == "The tool answered: sunny"
    sent = upstreams["anthropic"].calls[1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": call["id"], "content": "sunny"}
    stored = list(Message.objects.filter(conversation_id=body["chat_id"]).order_by("created_at")
                  .values_list("role", "tool_calls", "tool_call_id"))
    assert [r[0] for r in stored] == ["user", "assistant", "tool", "assistant"]
    assert stored[1][1][0]["name"] == "get_weather" and stored[2][2] == call["id"]


def test_a_tool_result_for_no_call_is_refused(upstreams, auth_client):
    response = auth_client.post("/api/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "1"}]},
        format="json")
    assert response.status_code == 422
    assert response.json()["details"] == {"messages[1]": ["tool_call_id 'call_x' matches no assistant tool call."]}
    assert not upstreams["openai"].calls


def test_tool_turns_show_export_and_import(upstreams, auth_client):
    first = auth_client.post("/api/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Weather in 'Rome'?"}], "tools": [WEATHER],
        "tool_choice": "required", "model": "gpt-4o-mini"}, format="json").json()
    call = first["message"]["tool_calls"][0]
    auth_client.post("/api/v1/chat/completions", {"chat_id": first["chat_id"], "model": "gpt-4o-mini", "messages": [
        {"role": "tool", "tool_call_id": call["id"], "name": "get_weather", "content": "sunny"}]}, format="json")
    chat_id = first["chat_id"]
    listed = auth_client.get(f"/api/v1/chat/conversation/{chat_id}/messages").json()
    rows = listed["messages"] if isinstance(listed, dict) else listed
    assistant, tool = rows[1], rows[2]
    assert assistant["tool_calls"] == [{"id": call["id"], "name": "get_weather", "arguments": call["function"]["arguments"]}]
    assert (tool["role"], tool["tool_call_id"], tool["tool_name"]) == ("tool", call["id"], "get_weather")

    exported = auth_client.get(f"/api/v1/chats/{chat_id}/export").json()
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant", "tool", "assistant"]
    markdown = auth_client.get(f"/api/v1/chats/{chat_id}/export?format=markdown").content.decode()
    assert "**Tool (get_weather)**" in markdown and "Calls `get_weather(" in markdown
    imported = auth_client.post("/api/v1/chats/import", exported, format="json")
    assert imported.status_code == 201, imported.content
    copy = Message.objects.filter(conversation_id=imported.json()["id"]).order_by("created_at")
    assert [m.tool_call_id for m in copy if m.role == "tool"] == [call["id"]]
    assert copy[1].tool_calls[0]["name"] == "get_weather"
    # ... and the copy continues like the original: its thread has the call and its result.
    again = auth_client.post("/api/v1/chat/completions", {"chat_id": imported.json()["id"], "model": "gpt-4o-mini",
                                                          "messages": [{"role": "user", "content": "Thanks"}]},
                             format="json")
    assert again.status_code == 200
    sent = upstreams["openai"].calls[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]

    broken = {**exported, "messages": [{"role": "tool", "content": "x"}]}
    refused = auth_client.post("/api/v1/chats/import", broken, format="json")
    assert refused.status_code == 422 and "tool_call_id" in refused.content.decode()


async def test_seed_004_streams_end_with_the_tool_calls(upstreams, user, tokens_for):
    from chats.tests.test_sse import asgi_request, bearer, data_events

    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user),
                                  json_body={"model": "gemini-2.5-flash", "stream": True, "tools": [WEATHER],
                                             "messages": [{"role": "user", "content": "Weather in 'Bern'?"}]})
    assert response.status == 200
    final = data_events(response)[-1]["data"]
    final = json.loads(final) if isinstance(final, str) else final
    assert final["finished"] is True and final["finish_reason"] == "tool_calls"
    call = final["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Bern"}
