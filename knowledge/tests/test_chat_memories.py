"""Chats use memories: the relevant ones join the system prompt the fake upstream receives, the
reply's metadata lists them, a preference turns it off; optional extraction stores new facts."""

from __future__ import annotations

import pytest

from chats.models import Message
from knowledge import memories_services
from knowledge.models import Memory
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/chat/message"


def _system(upstream) -> str:
    messages = upstream.calls[-1].body["messages"]
    return "\n".join(m["content"] for m in messages if m["role"] == "system")


@pytest.fixture
def memories(user, minilm):
    relevant = memories_services.memory_create(user=user, content="The user is vegetarian and never eats meat",
                                               memory_type="preference", importance_score=0.9)
    unrelated = memories_services.memory_create(user=user, content="The user's car is a red Volvo")
    return relevant, unrelated


def test_a_relevant_memory_joins_the_prompt_and_the_reply_metadata(openai_configured, auth_client, memories):
    relevant, unrelated = memories
    openai_configured.push(Step(text="Try a mushroom risotto."))
    response = auth_client.post(URL, {"message": "What meat dish should I cook for dinner?",
                                      "conversation_id": "conv_food"}, format="json")
    assert response.status_code == 200, response.content
    system = _system(openai_configured)
    assert relevant.content in system and unrelated.content not in system
    reply = Message.objects.get(id=response.json()["message_id"])
    assert reply.metadata["memory_ids"] == [relevant.id]
    used = Memory.objects.get(id=relevant.id)
    assert used.use_count == 1 and used.last_used_at is not None
    assert Memory.objects.get(id=unrelated.id).use_count == 0


def test_the_preference_turns_memories_off(openai_configured, auth_client, user, memories):
    auth_client.put("/api/v1/users/preferences", {"use_memories": False}, format="json")
    user.refresh_from_db()
    assert user.preferences["use_memories"] is False
    openai_configured.push(Step(text="Pasta."))
    response = auth_client.post(URL, {"message": "What meat dish should I cook for dinner?",
                                      "conversation_id": "conv_off"}, format="json")
    assert response.status_code == 200, response.content
    assert "vegetarian" not in _system(openai_configured)
    assert "memory_ids" not in Message.objects.get(id=response.json()["message_id"]).metadata


def test_other_users_memories_never_reach_the_prompt(openai_configured, auth_client, make_user, minilm):
    memories_services.memory_create(user=make_user("bob"), content="The user is vegetarian and never eats meat")
    openai_configured.push(Step(text="Steak."))
    response = auth_client.post(URL, {"message": "What meat dish should I cook for dinner?",
                                      "conversation_id": "conv_x"}, format="json")
    assert response.status_code == 200
    assert "vegetarian" not in _system(openai_configured)


def test_extraction_stores_new_facts_deduplicated(openai_configured, auth_client, user, memories):
    auth_client.put("/api/v1/users/preferences", {"memory_extraction": True}, format="json")
    openai_configured.push(Step(text="Nice to meet you!"))
    # The extraction call: one fact already known (paraphrased), one new.
    openai_configured.push(Step(text='Here you go: ["The user is vegetarian and does not eat meat", '
                                     '"The user lives in Lisbon"]'))
    response = auth_client.post(URL, {"message": "Hi! I moved to Lisbon last year.", "conversation_id": "conv_e"},
                                format="json")
    assert response.status_code == 200, response.content
    extraction = openai_configured.calls[-1].body
    assert "durable facts" in extraction["messages"][0]["content"]
    assert "I moved to Lisbon" in extraction["messages"][-1]["content"]
    extracted = list(Memory.objects.filter(user=user, source="extracted"))
    assert [m.content for m in extracted] == ["The user lives in Lisbon"]
    assert extracted[0].memory_type == "fact"


def test_extraction_is_off_by_default(openai_configured, auth_client, user, memories):
    openai_configured.push(Step(text="Hello!"))
    auth_client.post(URL, {"message": "Hi! I moved to Lisbon.", "conversation_id": "conv_d"}, format="json")
    assert len(openai_configured.calls) == 1
    assert not Memory.objects.filter(source="extracted").exists()


def test_parse_facts_reads_the_first_json_array():
    assert memories_services.parse_facts('```json\n["a", " b ", 3, ""]\n```') == ["a", "b"]
    assert memories_services.parse_facts("no facts") == []
    assert memories_services.parse_facts("[not json]") == []


def test_seed_004_completions_with_a_chat_use_memories(openai_configured, auth_client, memories):
    relevant, _ = memories
    chat = auth_client.post("/api/v1/chats", {"title": "Food"}, format="json").json()
    openai_configured.push(Step(text="A lentil curry."))
    response = auth_client.post("/api/v1/chat/completions", {
        "chat_id": chat["id"], "messages": [{"role": "user", "content": "What meat dish should I cook for dinner?"}],
    }, format="json")
    assert response.status_code == 200, response.content
    assert relevant.content in _system(openai_configured)
    reply = Message.objects.get(conversation_id=chat["id"], role="assistant")
    assert reply.metadata["memory_ids"] == [relevant.id]


def test_stateless_gateway_calls_use_no_memories(openai_configured, user, memories):
    from rest_framework.test import APIClient

    from accounts.services import api_key_create

    _, raw = api_key_create(user=user, name="gateway")
    openai_configured.push(Step(text="Chicken."))
    response = APIClient().post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "What meat dish should I cook for dinner?"}]}, format="json",
        HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200, response.content
    assert openai_configured.calls[-1].body["messages"][-1]["content"] == "What meat dish should I cook for dinner?"
    assert "vegetarian" not in _system(openai_configured)


def test_a_chatbot_key_never_gets_its_owners_memories(openai_configured, user, memories):
    """A chatbot's key chats for the chatbot's visitors: the owner's memories stay out, and their
    messages are not extracted into the owner's memories."""
    from rest_framework.test import APIClient

    from accounts.services import user_update_preferences
    from support.services import chatbot_api_key_create, chatbot_create

    user_update_preferences(user=user, preferences={"memory_extraction": True})
    bot = chatbot_create(owner=user, name="Help bot", system_prompt="You are the help bot.")
    raw = chatbot_api_key_create(chatbot=bot)[1]
    openai_configured.push(Step(text="Soup."))
    response = APIClient().post(URL, {"message": "What meat dish should I cook for dinner?"}, format="json",
                                HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200, response.content
    assert _system(openai_configured) == "You are the help bot."
    assert len(openai_configured.calls) == 1  # no extraction call
    assert "memory_ids" not in Message.objects.get(id=response.json()["message_id"]).metadata
