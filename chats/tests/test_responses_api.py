"""OpenAI's Responses API (/v1/responses) with the official ``openai`` SDK over real HTTP, each
provider behind it a fake upstream that must receive the translated input."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from chats.models import Conversation, Message
from chats.tests.test_gateway_tools import PNG_URL
from providers.models import UsageRecord
from providers.tests.fake_anthropic import AnthropicStep
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def upstreams(all_providers_configured):
    for upstream in all_providers_configured.values():
        upstream.default_kind = "auto"
    return all_providers_configured


def test_text_in_text_out_with_instructions(upstreams, openai_client):
    upstreams["openai"].push(Step(text="Bonjour !", prompt_tokens=12, completion_tokens=3))
    response = openai_client.responses.create(model="gpt-4o-mini", instructions="Answer in French.", input="Hello")
    assert response.id.startswith("resp_") and response.object == "response" and response.status == "completed"
    assert response.output_text == "Bonjour !" and response.model == "gpt-4o-mini"
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (12, 3, 15)
    assert response.instructions == "Answer in French." and response.store is True
    sent = upstreams["openai"].calls[0].body["messages"]
    assert sent == [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hello"}]
    assert UsageRecord.objects.get().total_tokens == 15
    assert Conversation.objects.get().metadata["source"] == "responses"


def test_previous_response_id_continues_and_branches(upstreams, openai_client, make_user, gateway_url):
    first = openai_client.responses.create(model="claude-haiku-4.5", input="My name is 'Ada'.")
    second = openai_client.responses.create(model="claude-haiku-4.5", input="What is my name?",
                                            previous_response_id=first.id)
    assert second.previous_response_id == first.id
    sent = upstreams["anthropic"].calls[1].body["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "My name is 'Ada'."), ("assistant", first.output_text), ("user", "What is my name?")]
    other = openai_client.responses.create(model="claude-haiku-4.5", input="Another branch",
                                           previous_response_id=first.id)
    assert other.previous_response_id == first.id
    sent = upstreams["anthropic"].calls[2].body["messages"]
    assert [m["content"] for m in sent] == ["My name is 'Ada'.", first.output_text, "Another branch"]
    assert Conversation.objects.count() == 1 and Message.objects.count() == 6
    retrieved = openai_client.responses.retrieve(second.id)
    assert retrieved.id == second.id and retrieved.output_text == second.output_text
    assert retrieved.previous_response_id == first.id and retrieved.status == "completed"

    from accounts.services import api_key_create
    _, raw = api_key_create(user=make_user("mallory"), name="other")
    stranger = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=raw, max_retries=0, timeout=20)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as missing:
        stranger.responses.create(model="claude-haiku-4.5", input="Hi", previous_response_id=first.id)
    assert missing.value.body["param"] == "previous_response_id"


def test_store_false_keeps_nothing(upstreams, openai_client):
    response = openai_client.responses.create(model="gemini-2.5-flash", input="Hi", store=False)
    assert response.output_text and response.store is False
    assert not Conversation.objects.exists() and UsageRecord.objects.count() == 1
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.create(model="gemini-2.5-flash", input="Again", previous_response_id=response.id)


@pytest.mark.parametrize("model,provider", [("gpt-4o-mini", "openai"), ("claude-haiku-4.5", "anthropic"),
                                            ("gemini-2.5-flash", "gemini")])
def test_function_calls_and_outputs(upstreams, openai_client, model, provider):
    first = openai_client.responses.create(model=model, input="Weather in 'Paris'?", tools=[WEATHER],
                                           tool_choice="required")
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    assert calls[0].call_id and calls[0].id.startswith("fc_")
    second = openai_client.responses.create(model=model, previous_response_id=first.id, tools=[WEATHER], input=[
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21 C"}])
    # Gemini takes a function's response as an object: a plain text result is wrapped.
    reported = '{"result": "sunny, 21 C"}' if provider == "gemini" else "sunny, 21 C"
    assert second.output_text == f"The tool answered: {reported}"
    body = upstreams[provider].calls[1].body
    if provider == "openai":
        assert body["messages"][1]["tool_calls"][0]["id"] == calls[0].call_id
        assert body["messages"][2] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": "sunny, 21 C"}
    elif provider == "anthropic":
        assert body["messages"][2]["content"][0]["tool_use_id"] == calls[0].call_id
    else:
        assert body["contents"][2]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_a_stateless_history_of_items(upstreams, openai_client):
    response = openai_client.responses.create(model="gpt-4o-mini", store=False, tools=[WEATHER], input=[
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in 'Rome'?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "rainy"}])
    assert response.output_text == "The tool answered: rainy"
    sent = upstreams["openai"].calls[0].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Rome"}'}


def test_images_as_input_image_parts(upstreams, openai_client):
    openai_client.responses.create(model="claude-haiku-4.5", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"}, {"type": "input_image", "image_url": PNG_URL}]}])
    blocks = upstreams["anthropic"].calls[0].body["messages"][0]["content"]
    assert blocks[1]["type"] == "image" and blocks[1]["source"]["media_type"] == "image/png"


class Person(BaseModel):
    name: str
    age: int


def test_parse_with_text_format(upstreams, openai_client):
    response = openai_client.responses.parse(model="gemini-2.5-flash", input="'Grace' is 85 years old.",
                                             text_format=Person)
    assert response.output_parsed == Person(name="Grace", age=85)
    config = upstreams["gemini"].calls[0].body["generationConfig"]
    assert config["responseMimeType"] == "application/json"


def test_streaming_text_with_the_documented_events(upstreams, openai_client):
    upstreams["openai"].push(Step(text="one two three"))
    with openai_client.responses.stream(model="gpt-4o-mini", input="Count") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "one two three"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "one two three" and final.usage.total_tokens == 18
    assert final.id == events[0].response.id


def test_streaming_function_calls(upstreams, openai_client):
    with openai_client.responses.stream(model="claude-haiku-4.5", input="Weather in 'Oslo'?", tools=[WEATHER]) as s:
        events = list(s)
        final = s.get_final_response()
    assert any(e.type == "response.function_call_arguments.delta" for e in events)
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(done[0].arguments) == {"city": "Oslo"}
    call = final.output[0]
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Oslo"}


def test_reasoning_is_a_summary_item(upstreams, openai_client):
    upstreams["anthropic"].push(AnthropicStep(text="42", thinking="Six times seven."))
    response = openai_client.responses.create(model="claude-haiku-4.5", input="The answer?",
                                              reasoning={"effort": "high"})
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].summary[0].text == "Six times seven." and response.output_text == "42"
    assert upstreams["anthropic"].calls[0].body["thinking"]["type"] in ("enabled", "adaptive")


def test_provider_failures(upstreams, openai_client):
    upstreams["openai"].push(Step("status", status=500), Step("status", status=500), Step("status", status=500))
    with pytest.raises(openai.APIStatusError) as failed:
        openai_client.responses.create(model="gpt-4o-mini", input="Hi", store=False)
    assert failed.value.status_code in (502, 503)
    upstreams["openai"].push(Step("disconnect", text="one two three", after=1))
    with openai_client.responses.stream(model="gpt-4o-mini", input="Hi") as stream:
        events = list(stream)
    assert events[-1].type == "response.failed" and events[-1].response.error.message


def test_unsupported_parameters_are_400_naming_them(upstreams, openai_client):
    for extra, param in [({"truncation": "disabled"}, "truncation"), ({"include": ["file_search_call.results"]},
                                                                         "include"),
                         ({"tools": [{"type": "web_search"}]}, "tools"), ({"extra_body": {"max_tokens": 5}}, "max_tokens"),
                         ({"background": True}, "background"), ({"top_logprobs": 2}, "top_logprobs"),
                         ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
                         ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
                          "input[0]")]:
        with pytest.raises(openai.BadRequestError) as refused:
            openai_client.responses.create(**{"model": "gpt-4o-mini", "input": "Hi", **extra})
        assert refused.value.body["param"] == param, (extra, refused.value.body)
    assert not upstreams["openai"].calls
