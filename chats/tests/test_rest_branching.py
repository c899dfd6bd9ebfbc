"""Branching over REST (edit a user message, regenerate a reply) and export/import round trips."""

from __future__ import annotations

import pytest

from chats.models import Conversation, Message
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db


def sent_messages(upstream, index=-1) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in upstream.calls[index].body["messages"]]


def contents(response) -> list[str]:
    return [m["content"] for m in response.json()]


@pytest.fixture
def two_turns(openai_configured, auth_client):
    """conv_branch: Q1 -> A1 -> Q2 -> A2."""
    openai_configured.push(Step(text="A1"), Step(text="A2"))
    for text in ("Q1", "Q2"):
        response = auth_client.post("/api/v1/chat/message", {"message": text, "conversation_id": "conv_branch"},
                                    format="json")
        assert response.status_code == 200, response.content
    messages = {m.content: m for m in Message.objects.filter(conversation_id="conv_branch")}
    return messages


def test_edit_makes_a_sibling_and_a_new_reply(openai_configured, auth_client, two_turns):
    q2 = two_turns["Q2"]
    openai_configured.push(Step(text="A2 for the edit"))
    response = auth_client.put(f"/api/v1/chats/conv_branch/messages/{q2.id}", {"content": "Q2 edited"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    edited, reply = body["user_message"], body["assistant_message"]
    assert edited["content"] == "Q2 edited" and edited["id"] != q2.id
    assert edited["parent_message_id"] == two_turns["A1"].id == q2.parent_id  # a sibling of Q2
    assert reply["parent_message_id"] == edited["id"] and reply["content"] == "A2 for the edit"
    assert body["response"] == "A2 for the edit"
    # The provider saw the edited branch, not the original question.
    assert sent_messages(openai_configured) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2 edited")]
    # The conversation follows the new branch; the old one is kept.
    assert contents(auth_client.get("/api/v1/chats/conv_branch/messages")) == ["Q1", "A1", "Q2 edited",
                                                                              "A2 for the edit"]
    seed_000 = auth_client.get("/api/v1/chat/conversation/conv_branch").json()
    assert [m["content"] for m in seed_000["messages"]][-1] == "A2 for the edit"
    everything = auth_client.get("/api/v1/chats/conv_branch/messages?all_branches=true")
    assert everything["X-Total-Count"] == "6"
    parents = {m["content"]: m["parent_message_id"] for m in everything.json()}
    assert parents["Q2"] == parents["Q2 edited"] == two_turns["A1"].id
    # The next turn continues the new branch.
    openai_configured.push(Step(text="A3"))
    auth_client.post("/api/v1/chat/message", {"message": "Q3", "conversation_id": "conv_branch"}, format="json")
    assert sent_messages(openai_configured)[-3:] == [("user", "Q2 edited"), ("assistant", "A2 for the edit"),
                                                     ("user", "Q3")]


def test_regenerate_makes_a_sibling_reply(openai_configured, auth_client, two_turns):
    a2, q2 = two_turns["A2"], two_turns["Q2"]
    openai_configured.push(Step(text="A2, take two"))
    response = auth_client.post(f"/api/v1/chats/conv_branch/messages/{a2.id}/regenerate", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user_message"]["id"] == q2.id
    assert body["assistant_message"]["parent_message_id"] == q2.id == a2.parent_id
    assert body["assistant_message"]["content"] == "A2, take two" and body["assistant_message"]["id"] != a2.id
    assert sent_messages(openai_configured) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2")]
    assert contents(auth_client.get("/api/v1/chats/conv_branch/messages")) == ["Q1", "A1", "Q2", "A2, take two"]
    assert Message.objects.get(id=a2.id).content == "A2"  # kept, on the other branch
    # Regenerating from the user message works too, with another model; via seed 000's path.
    openai_configured.push(Step(text="A2, take three"))
    again = auth_client.post(f"/api/v1/chat/conversation/conv_branch/messages/{q2.id}/regenerate",
                             {"model": "gpt-4o", "model_parameters": {"temperature": 0.1}}, format="json")
    assert again.status_code == 200 and again.json()["assistant_message"]["model"] == "gpt-4o"
    assert openai_configured.calls[-1].body["temperature"] == 0.1
    all_branches = auth_client.get("/api/v1/chat/conversation/conv_branch/messages?all_branches=true").json()
    replies_to_q2 = [m["content"] for m in all_branches if m["parent_message_id"] == q2.id]
    assert replies_to_q2 == ["A2", "A2, take two", "A2, take three"]


def test_branching_errors(openai_configured, auth_client, two_turns):
    a1 = two_turns["A1"]
    edit_reply = auth_client.put(f"/api/v1/chats/conv_branch/messages/{a1.id}", {"content": "x"}, format="json")
    assert edit_reply.status_code == 422  # assistant replies are regenerated, not edited
    blank = auth_client.put(f"/api/v1/chats/conv_branch/messages/{two_turns['Q1'].id}", {"content": " "},
                            format="json")
    assert blank.status_code == 422 and "content" in blank.json()["details"]
    missing = auth_client.post("/api/v1/chats/conv_branch/messages/msg_nope/regenerate", {}, format="json")
    assert missing.status_code == 404
    bad_model = auth_client.post(f"/api/v1/chats/conv_branch/messages/{a1.id}/regenerate", {"model": "nope"},
                                 format="json")
    assert bad_model.status_code == 422
    assert len(openai_configured.calls) == 2  # only the two fixture turns
    assert Message.objects.filter(conversation_id="conv_branch").count() == 4


def test_regenerate_provider_failure_keeps_the_branch(settings, openai_configured, auth_client, two_turns):
    from providers import selectors

    settings.PROVIDER_MAX_RETRIES = 0
    selectors.invalidate()
    openai_configured.push(Step("status", status=400))
    response = auth_client.post(f"/api/v1/chats/conv_branch/messages/{two_turns['A2'].id}/regenerate", {},
                                format="json")
    assert response.status_code == 502 and response.json()["details"]["user_message_id"] == two_turns["Q2"].id
    assert Message.objects.get(id=response.json()["details"]["message_id"]).status == "error"


def test_edit_with_idempotency_key(openai_configured, auth_client, two_turns):
    url = f"/api/v1/chats/conv_branch/messages/{two_turns['Q2'].id}"
    first = auth_client.put(url, {"content": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="edit-1")
    second = auth_client.put(url, {"content": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="edit-1")
    assert second.json() == first.json() and len(openai_configured.calls) == 3
    assert Message.objects.filter(conversation_id="conv_branch", content="Once").count() == 1


# --- export / import ------------------------------------------------------------------------------


def test_export_import_round_trip_keeps_branches(openai_configured, auth_client, two_turns):
    openai_configured.push(Step(text="A2 for the edit"))
    auth_client.put(f"/api/v1/chats/conv_branch/messages/{two_turns['Q2'].id}", {"content": "Q2 edited"},
                    format="json")
    Conversation.objects.filter(id="conv_branch").update(system_prompt="Be kind.", title="Branchy")
    exported = auth_client.get("/api/v1/chats/conv_branch/export")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("application/json")
    data = exported.json()
    assert data["format"] == "chatplatform.conversation.v1" and len(data["messages"]) == 6
    assert auth_client.get("/api/v1/chats/conv_branch/export?format=json").json() == data

    imported = auth_client.post("/api/v1/chats/import", data, format="json")
    assert imported.status_code == 201, imported.content
    copy = imported.json()
    assert copy["id"] != "conv_branch" and copy["title"] == "Branchy" and copy["system_prompt"] == "Be kind."
    assert [m["content"] for m in copy["messages"]] == ["Q1", "A1", "Q2 edited", "A2 for the edit"]
    everything = auth_client.get(f"/api/v1/chats/{copy['id']}/messages?all_branches=true").json()
    assert sorted(m["content"] for m in everything) == sorted(m["content"] for m in data["messages"])
    assert not {m["id"] for m in everything} & {m["id"] for m in data["messages"]}  # fresh ids
    by_content = {m["content"]: m for m in everything}
    assert by_content["Q2"]["parent_message_id"] == by_content["Q2 edited"]["parent_message_id"] == by_content[
        "A1"]["id"]
    # Importing the export of the copy gives the same conversation again.
    again = auth_client.get(f"/api/v1/chats/{copy['id']}/export").json()
    assert [(m["role"], m["content"]) for m in again["messages"]] == [
        (m["role"], m["content"]) for m in data["messages"]]


def test_markdown_export(openai_configured, auth_client, two_turns):
    response = auth_client.get("/api/v1/chats/conv_branch/export?format=markdown")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="q1.md"')
    text = response.content.decode()
    assert text.startswith("# Q1")
    assert text.index("**User**") < text.index("Q2") < text.index("**Assistant (gpt-4o-mini)**", text.index("Q2"))
    assert auth_client.get("/api/v1/chats/conv_branch/export?format=xml").status_code == 422


@pytest.mark.parametrize("body, field", [
    ({"messages": [{"role": "robot", "content": "beep"}]}, "messages"),
    ({"messages": [{"role": "user"}]}, "messages"),
    ({"messages": "not a list"}, "messages"),
    ({"format": "something.else", "messages": []}, "format"),
    ({"messages": [{"role": "user", "content": "x"}] * 2001}, "messages"),
])
def test_import_validation(auth_client, body, field):
    response = auth_client.post("/api/v1/chats/import", body, format="json")
    assert response.status_code == 422 and field in response.json()["details"]
    assert not Conversation.objects.exists()


def test_import_minimal_linear_conversation(auth_client):
    response = auth_client.post("/api/v1/chats/import", {"title": "From elsewhere", "messages": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert [m["content"] for m in body["messages"]] == ["Hi", "Hello"] and body["message_count"] == 2
    assert body["messages"][1]["parent_message_id"] == body["messages"][0]["id"]
