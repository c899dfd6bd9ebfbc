"""Anthropic's Messages API (``/v1/messages``, ``/v1/messages/count_tokens``) with the official
``anthropic`` SDK, for a Claude, a GPT and a Gemini model behind it: the fake upstreams check what
they receive the way the real APIs do and must receive the translated system prompt, tools and images."""

from __future__ import annotations

import base64

import anthropic
import httpx
import pytest

from chats.models import Message
from chats.tests.usage import recorded
from providers.models import UsageRecord
from providers.tests.fake_anthropic import AnthropicStep
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

MODELS = {"anthropic": "claude-haiku-4.5", "openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"}
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


@pytest.fixture
def upstreams(all_providers_configured):
    for upstream in all_providers_configured.values():
        upstream.default_kind = "auto"
    return all_providers_configured


def sent_system(provider: str, body: dict) -> str:
    if provider == "anthropic":
        return body["system"]
    if provider == "openai":
        assert body["messages"][0]["role"] == "system"
        return body["messages"][0]["content"]
    return "".join(p["text"] for p in body["systemInstruction"]["parts"])


def sent_tools(provider: str, body: dict) -> list[tuple[str, dict]]:
    if provider == "openai":
        return [(t["function"]["name"], t["function"]["parameters"]) for t in body["tools"]]
    if provider == "anthropic":
        return [(t["name"], t["input_schema"]) for t in body["tools"]]
    return [(d["name"], d.get("parametersJsonSchema") or d["parameters_json_schema"])
            for t in body["tools"] for d in t["functionDeclarations"]]


@pytest.mark.parametrize("provider", MODELS)
def test_create_with_a_system_prompt(upstreams, anthropic_client, provider):
    message = anthropic_client.messages.create(
        model=MODELS[provider], max_tokens=100, system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": "Hello there"}], extra_headers={"anthropic-version": "2023-06-01"})
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.model == MODELS[provider]
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "You said: Hello there"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 7)
    body = upstreams[provider].calls[0].body
    assert sent_system(provider, body) == "Be brief."
    record = UsageRecord.objects.get()
    assert (record.model, record.prompt_tokens, record.completion_tokens) == (MODELS[provider], 11, 7)
    assert record.cost > 0
    assert not Message.objects.exists()  # stateless, as /v1/chat/completions


@pytest.mark.parametrize("provider", MODELS)
def test_stream_text_and_final_message(upstreams, anthropic_client, provider):
    upstreams[provider].push(Step(text="one two three four"))
    with anthropic_client.messages.stream(model=MODELS[provider], max_tokens=50,
                                          messages=[{"role": "user", "content": "Count"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "one two three four"
    assert final.content[0].text == text and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 7)
    record = recorded()
    assert record.streamed and (record.prompt_tokens, record.completion_tokens) == (11, 7)


def test_the_stream_sends_anthropics_events_in_order(upstreams, gateway_url, api_key):
    upstreams["anthropic"].push(Step(text="Hi there"))
    with httpx.stream("POST", f"{gateway_url}/v1/messages", headers={"x-api-key": api_key[1]}, timeout=20,
                      json={"model": "claude-haiku-4.5", "max_tokens": 20, "stream": True,
                            "messages": [{"role": "user", "content": "Hi"}]}) as response:
        assert response.status_code == 200
        raw = "".join(response.iter_text())
    kinds = [line.removeprefix("event: ") for line in raw.splitlines() if line.startswith("event: ")]
    deduped = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
    assert deduped == ["message_start", "content_block_start", "ping", "content_block_delta",
                       "content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize("provider", MODELS)
def test_a_tool_use_and_its_result_round_trip(upstreams, anthropic_client, provider):
    upstream = upstreams[provider]
    question = {"role": "user", "content": "What is the weather in 'Paris'?"}
    first = anthropic_client.messages.create(model=MODELS[provider], max_tokens=200, messages=[question],
                                             tools=[WEATHER], tool_choice={"type": "any"})
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Paris"} and call.id
    assert sent_tools(provider, upstream.calls[0].body) == [("get_weather", WEATHER["input_schema"])]
    choice_sent = {"openai": lambda b: b["tool_choice"], "anthropic": lambda b: b["tool_choice"]["type"],
                   "gemini": lambda b: b["toolConfig"]["functionCallingConfig"]["mode"]}[provider]
    assert choice_sent(upstream.calls[0].body) == {"openai": "required", "anthropic": "any", "gemini": "ANY"}[provider]

    second = anthropic_client.messages.create(model=MODELS[provider], max_tokens=200, tools=[WEATHER], messages=[
        question, {"role": "assistant", "content": first.content},  # the SDK serializes its own blocks
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": '{"temperature": 21}'}]}])
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == 'The tool answered: {"temperature": 21}'
    history = upstream.calls[1].body
    if provider == "openai":
        assert history["messages"][1]["tool_calls"][0]["id"] == call.id
        assert history["messages"][2] == {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'}
    elif provider == "anthropic":
        assert history["messages"][1]["content"][-1] == {"type": "tool_use", "id": call.id, "name": "get_weather",
                                                         "input": {"city": "Paris"}}
        assert history["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": call.id,
                                                      "content": '{"temperature": 21}'}]
    else:
        assert history["contents"][1]["parts"][-1]["functionCall"]["args"] == {"city": "Paris"}
        assert history["contents"][2]["parts"][0]["functionResponse"]["response"] == {"temperature": 21}


@pytest.mark.parametrize("provider", MODELS)
def test_streamed_tool_use(upstreams, anthropic_client, provider):
    with anthropic_client.messages.stream(model=MODELS[provider], max_tokens=200, tools=[WEATHER],
                                          messages=[{"role": "user", "content": "Weather in 'Oslo' please"}]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert any(e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events)
    call = next(b for b in final.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Oslo"}
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize("provider", MODELS)
def test_images_reach_vision_models_translated(upstreams, anthropic_client, provider):
    data = base64.b64encode(PNG).decode()
    anthropic_client.messages.create(model=MODELS[provider], max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "text", "text": "What is in this picture?"}]}])
    body = upstreams[provider].calls[0].body
    if provider == "openai":
        assert body["messages"][0]["content"][1]["image_url"]["url"] == "data:image/png;base64," + data
    elif provider == "anthropic":
        assert body["messages"][0]["content"][1] == {"type": "image", "source": {
            "type": "base64", "media_type": "image/png", "data": data}}
    else:
        assert base64.b64decode(body["contents"][0]["parts"][1]["inlineData"]["data"]) == PNG


def test_url_images_go_through_the_outbound_guard(upstreams, anthropic_client, openai_upstream):
    with pytest.raises(anthropic.BadRequestError) as refused:
        anthropic_client.messages.create(model="claude-haiku-4.5", max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": f"{openai_upstream.url}/a.png"}},
            {"type": "text", "text": "Look"}]}])
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert "loopback" in refused.value.message
    assert not upstreams["anthropic"].calls


def test_parameters_reach_the_upstream(upstreams, anthropic_client):
    upstreams["anthropic"].push(AnthropicStep(text="Stopped", stop_reason="stop_sequence"))
    message = anthropic_client.messages.create(
        model="claude-haiku-4.5", max_tokens=64, stop_sequences=["END"], metadata={"user_id": "end-user-7"},
        messages=[{"role": "user", "content": "Hi"}], extra_body={"temperature": 0.3, "top_p": 0.9, "top_k": 5})
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "END"
    body = upstreams["anthropic"].calls[0].body
    assert (body["max_tokens"], body["stop_sequences"], body["metadata"]) == (64, ["END"], {"user_id": "end-user-7"})
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.3, 0.9, 5)

    anthropic_client.messages.create(model="gemini-2.5-flash", max_tokens=64, stop_sequences=["END"],
                                     messages=[{"role": "user", "content": "Hi"}], extra_body={"top_k": 5})
    config = upstreams["gemini"].calls[0].body["generationConfig"]
    assert (config["stopSequences"], config["topK"], config["maxOutputTokens"]) == (["END"], 5, 64)

    with pytest.raises(anthropic.BadRequestError) as refused:  # OpenAI's API has no top_k
        anthropic_client.messages.create(model="gpt-4o-mini", max_tokens=64, extra_body={"top_k": 5},
                                         messages=[{"role": "user", "content": "Hi"}])
    assert "top_k" in refused.value.message
    assert not upstreams["openai"].calls


def test_count_tokens(upstreams, anthropic_client):
    small = anthropic_client.messages.count_tokens(model="claude-haiku-4.5",
                                                   messages=[{"role": "user", "content": "Hi"}])
    larger = anthropic_client.messages.count_tokens(model="gpt-4o-mini", system="You are a weather bot.",
                                                    tools=[WEATHER], messages=[{"role": "user", "content": "Hi " * 40}])
    assert 0 < small.input_tokens < larger.input_tokens
    with pytest.raises(anthropic.NotFoundError) as unknown:
        anthropic_client.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
    assert unknown.value.body["error"]["type"] == "not_found_error"
    assert not any(u.calls for u in upstreams.values())


def test_error_shapes(upstreams, anthropic_client, gateway_url, api_key):
    bad = anthropic.Anthropic(base_url=gateway_url, api_key="cpk_wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as denied:
        bad.messages.create(model="claude-haiku-4.5", max_tokens=10, messages=[{"role": "user", "content": "Hi"}])
    assert denied.value.body["type"] == "error" and denied.value.body["error"]["type"] == "authentication_error"

    with pytest.raises(anthropic.BadRequestError) as unknown:
        anthropic_client.messages.create(model="claude-haiku-4.5", max_tokens=10, extra_body={"frobnicate": 1},
                                         messages=[{"role": "user", "content": "Hi"}])
    assert unknown.value.body["error"]["type"] == "invalid_request_error" and "frobnicate" in unknown.value.message

    missing = httpx.post(f"{gateway_url}/v1/messages", headers={"x-api-key": api_key[1]},
                         json={"model": "claude-haiku-4.5", "messages": [{"role": "user", "content": "Hi"}]})
    assert missing.status_code == 400
    assert missing.json()["type"] == "error" and "max_tokens" in missing.json()["error"]["message"]

    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.messages.create(model="no-such-model", max_tokens=10,
                                         messages=[{"role": "user", "content": "Hi"}])

    bearer = httpx.post(f"{gateway_url}/v1/messages", headers={"Authorization": f"Bearer {api_key[1]}"},
                        json={"model": "claude-haiku-4.5", "max_tokens": 10,
                              "messages": [{"role": "user", "content": "Hi"}]})
    assert bearer.status_code == 200 and bearer.json()["type"] == "message"


def test_provider_failures_are_anthropic_errors(upstreams, anthropic_client):
    upstreams["anthropic"].push(*[Step("status", status=500)] * 5)
    with pytest.raises(anthropic.APIStatusError) as failed:
        anthropic_client.messages.create(model="claude-haiku-4.5", max_tokens=10,
                                         messages=[{"role": "user", "content": "Hi"}])
    assert failed.value.status_code >= 500 and failed.value.body["error"]["type"] in ("api_error", "overloaded_error")
    assert "sk-should-not-leak" not in failed.value.message

    upstreams["anthropic"].reset()
    upstreams["anthropic"].push(Step("error_event", text="one two three four", after=2, status=529))
    with pytest.raises(anthropic.APIStatusError) as mid_stream:
        with anthropic_client.messages.stream(model="claude-haiku-4.5", max_tokens=10,
                                              messages=[{"role": "user", "content": "Hi"}]) as stream:
            for _ in stream:
                pass
    assert mid_stream.value.body["error"]["type"] in ("api_error", "overloaded_error")


@pytest.mark.parametrize("body, named", [
    ({"messages": [{"role": "user", "content": [{"type": ["text"]}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, "document"),
    ({"messages": [{"role": "system", "content": "Hi"}]}, "role"),
    ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Sure"}]}, "prefill"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png\n", "data": "AAAA"}}]}]}, "Image sources"),
    ({"messages": [{"role": "user", "content": "Hi"}], "tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice"),
    ({"messages": [{"role": "user", "content": "Hi"}], "tools": [{"name": "x", "input_schema": {"type": "string"}}]},
     "input_schema"),
    ({"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "web_search_20250305", "name": "web"}]},
     "type"),
    ({"messages": [{"role": "user", "content": "Hi"}], "stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences"),
    ({"messages": [{"role": "user", "content": "Hi"}], "metadata": {"tenant": "x"}}, "metadata"),
    ({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10**6}, "max_tokens"),
])
def test_bad_requests_are_anthropic_400s_naming_the_field(upstreams, gateway_url, api_key, body, named):
    response = httpx.post(f"{gateway_url}/v1/messages", headers={"x-api-key": api_key[1]},
                          json={"model": "claude-haiku-4.5", "max_tokens": 10, **body})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert named in error["error"]["message"]
    assert not upstreams["anthropic"].calls


def test_tool_errors_and_earlier_thinking(upstreams, anthropic_client):
    anthropic_client.messages.create(model="claude-haiku-4.5", max_tokens=50, tools=[WEATHER], messages=[
        {"role": "user", "content": "Weather in 'Rome'?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "Let me call it.", "signature": "c2ln"},
                                          {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Rome"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                                      "content": [{"type": "text", "text": "service down"}]}]}])
    sent = upstreams["anthropic"].calls[0].body["messages"]
    assert sent[1]["content"] == [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Rome"}}]
    assert sent[2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Error: service down"}]


def test_thinking_and_structured_output(upstreams, anthropic_client):
    upstreams["anthropic"].push(Step(text="Done.", thinking="Let me think."))
    message = anthropic_client.messages.create(model="claude-haiku-4.5", max_tokens=2048,
                                               thinking={"type": "enabled", "budget_tokens": 1024},
                                               messages=[{"role": "user", "content": "Think"}])
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Let me think." and message.content[1].text == "Done."
    assert upstreams["anthropic"].calls[0].body["thinking"] == {"type": "enabled", "budget_tokens": 1024}

    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    answer = anthropic_client.messages.create(model="gemini-2.5-flash", max_tokens=100,
                                              output_config={"format": {"type": "json_schema", "schema": schema}},
                                              messages=[{"role": "user", "content": "Describe 'Lyon'"}])
    assert answer.content[0].text == '{"city": "Lyon"}'
    config = upstreams["gemini"].calls[0].body["generationConfig"]
    assert config["responseMimeType"] == "application/json" and config["responseJsonSchema"] == schema
