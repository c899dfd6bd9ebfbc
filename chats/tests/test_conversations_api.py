"""Conversation CRUD and reads (seeds 000, 003, 004), pagination, analytics, ownership, admin."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.urls import resolve
from rest_framework.test import APIClient

from chatplatform.api.ids import new_id
from chats import apis, services
from chats.models import Conversation, Message

pytestmark = pytest.mark.django_db


def client_for(user, tokens_for) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access_token']}")
    client.user = user
    return client


def make_turn(conversation, question="Hello!", answer="Hi! How can I help you?", **assistant):
    """A saved user message and its reply (no provider needed)."""
    user_message = services.message_add_user(conversation=conversation, content=question)
    reply = services.message_save_assistant(
        conversation=conversation, message_id=new_id("msg"), parent=user_message, content=answer,
        model=assistant.pop("model", "gpt-4o-mini"), provider="openai", prompt_tokens=10, completion_tokens=15,
        latency_ms=1250.4, finish_reason="stop", **assistant)
    return user_message, reply


# --- seed 000: /chat/conversation/{id} and /chat/conversations ---------------------------------------


def test_seed_000_conversation_detail_update_delete(auth_client):
    conversation = services.conversation_create(user=auth_client.user, title="My Chat Session")
    question, answer = make_turn(conversation)
    url = f"/api/v1/chat/conversation/{conversation.id}"
    body = auth_client.get(url).json()
    assert body["conversation_id"] == conversation.id and body["title"] == "My Chat Session"
    assert body["message_count"] == 2 and body["created_at"] and body["updated_at"]
    assert [(m["message_id"], m["role"], m["content"]) for m in body["messages"]] == [
        (question.id, "user", "Hello!"), (answer.id, "assistant", "Hi! How can I help you?")]
    assert body["messages"][1]["timestamp"].endswith("Z") and body["messages"][1]["model_used"] == "gpt-4o-mini"

    updated = auth_client.put(url, {"title": "Renamed", "settings": {"temperature": 0.2},
                                    "system_prompt": "Be brief.", "model": "gpt-4o", "is_archived": True},
                              format="json")
    assert updated.status_code == 200, updated.content
    assert updated.json()["title"] == "Renamed" and updated.json()["is_archived"] is True
    conversation.refresh_from_db()
    assert (conversation.title, conversation.settings, conversation.system_prompt, conversation.model) == (
        "Renamed", {"temperature": 0.2}, "Be brief.", "gpt-4o")
    assert auth_client.put(url, {"model": "nope"}, format="json").status_code == 422
    assert auth_client.put(url, {"settings": "not an object"}, format="json").status_code == 422

    deleted = auth_client.delete(url)
    assert deleted.status_code == 200 and deleted.json()["conversation_id"] == conversation.id
    assert auth_client.get(url).status_code == 404
    assert not Message.objects.filter(conversation_id=conversation.id).exists()


def test_null_optional_fields_mean_not_given(openai_configured, auth_client):
    created = auth_client.post("/api/v1/chat/conversation", {"title": "Kept", "initial_message": None,
                                                             "system_prompt": None, "metadata": None}, format="json")
    assert created.status_code == 201 and created.json()["reply"] is None and not openai_configured.calls
    url = f"/api/v1/chat/conversation/{created.json()['id']}"
    updated = auth_client.put(url, {"title": None, "is_archived": None, "model": None}, format="json")
    assert updated.status_code == 200 and updated.json()["title"] == "Kept" and updated.json()["is_archived"] is False


def test_unknown_conversation_is_404_envelope(auth_client):
    response = auth_client.get("/api/v1/chat/conversation/conv_missing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found" and response.json()["code"] == "NOT_FOUND"


def test_conversation_list_pagination_seed_000(auth_client):
    for n in range(25):
        services.conversation_create(user=auth_client.user, title=f"c{n}")
    response = auth_client.get("/api/v1/chat/conversations")
    assert response.status_code == 200
    assert len(response.json()) == 20 and response["X-Total-Count"] == "25"  # default limit 20
    assert 'rel="next"' in response["Link"] and "offset=20" in response["Link"]
    assert response.json()[0]["title"] == "c24"  # most recently updated first
    page = auth_client.get("/api/v1/chat/conversations?limit=10&offset=20")
    assert [c["title"] for c in page.json()] == ["c4", "c3", "c2", "c1", "c0"]
    assert 'rel="prev"' in page["Link"] and 'rel="next"' not in page["Link"]
    # Seed 003's `skip` is the offset.
    assert [c["title"] for c in auth_client.get("/api/v1/chat/conversations?skip=23").json()] == ["c1", "c0"]
    assert len(auth_client.get("/api/v1/chat/conversations?limit=100").json()) == 25


@pytest.mark.parametrize("path", ["/api/v1/chat/conversations", "/api/v1/chats", "/api/v1/chats/{id}/messages"])
@pytest.mark.parametrize("query, field", [
    ("limit=101", "limit"), ("limit=0", "limit"), ("limit=abc", "limit"), ("offset=-1", "offset"),
])
def test_pagination_bounds_are_422(auth_client, path, query, field):
    conversation = services.conversation_create(user=auth_client.user)
    response = auth_client.get(f"{path.format(id=conversation.id)}?{query}")
    assert response.status_code == 422, response.content
    assert field in response.json()["details"]


def test_archived_conversations_hidden_unless_asked(auth_client):
    services.conversation_create(user=auth_client.user, title="open")
    services.conversation_create(user=auth_client.user, title="old", is_archived=True)
    for path in ("/api/v1/chat/conversations", "/api/v1/chats"):
        assert [c["title"] for c in auth_client.get(path).json()] == ["open"]
        assert len(auth_client.get(f"{path}?include_archived=true").json()) == 2


# --- seed 004: /chats --------------------------------------------------------------------------------


def test_seed_004_chats_crud(auth_client):
    created = auth_client.post("/api/v1/chats", {
        "title": "My Chat", "model": "claude-sonnet-4.5", "system_prompt": "You are a helpful assistant",
        "metadata": {}}, format="json")
    assert created.status_code == 201, created.content
    chat = created.json()
    assert chat["title"] == "My Chat" and chat["model"] == "claude-sonnet-4.5" and chat["is_archived"] is False
    assert chat["user_id"] == auth_client.user.id and chat["created_at"] and chat["updated_at"]
    chat_id = chat["id"]

    listed = auth_client.get("/api/v1/chats?include_archived=false&limit=50&offset=0")
    assert [c["id"] for c in listed.json()] == [chat_id] and listed["X-Total-Count"] == "1"
    assert auth_client.get(f"/api/v1/chats/{chat_id}").json()["system_prompt"] == "You are a helpful assistant"

    patched = auth_client.patch(f"/api/v1/chats/{chat_id}", {"title": "Updated Title", "is_archived": True},
                                format="json")
    assert patched.status_code == 200 and patched.json()["title"] == "Updated Title"
    assert patched.json()["is_archived"] is True
    assert auth_client.get("/api/v1/chats").json() == []
    assert auth_client.patch(f"/api/v1/chats/{chat_id}", {"is_archived": False}, format="json").json()[
        "title"] == "Updated Title"  # partial: the title stays

    deleted = auth_client.delete(f"/api/v1/chats/{chat_id}")
    assert deleted.status_code == 204 and not deleted.content
    assert auth_client.get(f"/api/v1/chats/{chat_id}").status_code == 404


def test_seed_004_create_validation(auth_client):
    assert auth_client.post("/api/v1/chats", {"model": "no-such-model"}, format="json").status_code == 422
    assert auth_client.post("/api/v1/chats", {"title": "x" * 201}, format="json").status_code == 422
    assert auth_client.post("/api/v1/chats", {"metadata": {"blob": "x" * 70_000}}, format="json").status_code == 422
    assert not Conversation.objects.exists()


def test_seed_004_messages_shape_and_paging(auth_client):
    chat = services.conversation_create(user=auth_client.user, title="t")
    question, answer = make_turn(chat, model="claude-sonnet-4.5")
    response = auth_client.get(f"/api/v1/chats/{chat.id}/messages?limit=100&offset=0")
    assert response.status_code == 200 and response["X-Total-Count"] == "2"
    first, second = response.json()
    assert (first["id"], first["chat_id"], first["role"], first["content"]) == (question.id, chat.id, "user", "Hello!")
    assert first["created_at"] and first["model"] is None and first["parent_message_id"] is None
    assert (second["model"], second["tokens_used"], second["parent_message_id"], second["status"]) == (
        "claude-sonnet-4.5", 25, question.id, "complete")
    assert second["response_time"] == 1250
    one = auth_client.get(f"/api/v1/chats/{chat.id}/messages?limit=1&offset=1")
    assert [m["id"] for m in one.json()] == [answer.id] and 'rel="prev"' in one["Link"]
    single = auth_client.get(f"/api/v1/chats/{chat.id}/messages/{answer.id}")
    assert single.status_code == 200 and single.json()["content"] == "Hi! How can I help you?"


# --- analytics --------------------------------------------------------------------------------------------


def test_analytics_route_and_shape(auth_client, make_user):
    match = resolve("/api/v1/users/conversations/analytics")
    assert match.func.view_class is apis.AnalyticsApi  # not shadowed by another app's /users/{user_id}
    first = services.conversation_create(user=auth_client.user, metadata={"topic": "programming"})
    second = services.conversation_create(user=auth_client.user)
    make_turn(first)
    make_turn(first, "More?", "Sure.")
    make_turn(second)
    make_turn(services.conversation_create(user=make_user("bob")))  # not counted
    body = auth_client.get("/api/v1/users/conversations/analytics").json()
    assert body["total_conversations"] == 2 and body["total_messages"] == 6
    assert body["average_messages_per_conversation"] == 3.0
    assert body["most_active_day"] in {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
    assert {t["topic"]: t["count"] for t in body["conversation_topics"]} == {"programming": 1, "general": 1}
    assert body["monthly_usage"][-1]["conversations"] == 2 and len(body["monthly_usage"][-1]["month"]) == 7


def test_analytics_empty(auth_client):
    body = auth_client.get("/api/v1/users/conversations/analytics").json()
    assert body["total_conversations"] == 0 and body["average_messages_per_conversation"] == 0.0
    assert body["most_active_day"] is None and body["monthly_usage"] == []


# --- ownership: another user's conversation is a 404 everywhere ----------------------------------------------


def test_another_users_conversation_is_404_on_every_route(openai_configured, auth_client, make_user, tokens_for):
    alice_conv = services.conversation_create(user=auth_client.user, title="Alice's secrets")
    question, answer = make_turn(alice_conv)
    bob = client_for(make_user("bob"), tokens_for)
    bob_conv = services.conversation_create(user=bob.user, title="Bob's")
    c, q, a = alice_conv.id, question.id, answer.id
    requests = [
        ("post", "/api/v1/chat/message", {"message": "hi", "conversation_id": c}),
        ("get", f"/api/v1/chat/conversation/{c}", None),
        ("put", f"/api/v1/chat/conversation/{c}", {"title": "pwned"}),
        ("patch", f"/api/v1/chat/conversation/{c}", {"title": "pwned"}),
        ("delete", f"/api/v1/chat/conversation/{c}", None),
        ("get", f"/api/v1/chat/conversation/{c}/messages", None),
        ("get", f"/api/v1/chat/conversation/{c}/messages/{q}", None),
        ("put", f"/api/v1/chat/conversation/{c}/messages/{q}", {"content": "edited"}),
        ("post", f"/api/v1/chat/conversation/{c}/messages/{a}/regenerate", {}),
        ("get", f"/api/v1/chat/conversations/{c}", None),
        ("get", f"/api/v1/chats/{c}", None),
        ("patch", f"/api/v1/chats/{c}", {"is_archived": True}),
        ("put", f"/api/v1/chats/{c}", {"is_archived": True}),
        ("delete", f"/api/v1/chats/{c}", None),
        ("get", f"/api/v1/chats/{c}/messages", None),
        ("get", f"/api/v1/chats/{c}/messages?all_branches=true", None),
        ("get", f"/api/v1/chats/{c}/messages/{q}", None),
        ("put", f"/api/v1/chats/{c}/messages/{q}", {"content": "edited"}),
        ("post", f"/api/v1/chats/{c}/messages/{a}/regenerate", {}),
        ("post", f"/api/v1/chats/{c}/messages/{q}/regenerate", {}),
        ("get", f"/api/v1/chats/{c}/export", None),
        ("get", f"/api/v1/chats/{c}/export?format=markdown", None),
        # Alice's messages through Bob's own conversation.
        ("get", f"/api/v1/chats/{bob_conv.id}/messages/{q}", None),
        ("put", f"/api/v1/chats/{bob_conv.id}/messages/{q}", {"content": "edited"}),
        ("post", f"/api/v1/chats/{bob_conv.id}/messages/{a}/regenerate", {}),
        ("post", f"/api/v1/chat/conversation/{bob_conv.id}/messages/{a}/regenerate", {}),
    ]
    for method, path, body in requests:
        response = getattr(bob, method)(path, body, format="json") if body is not None else getattr(bob, method)(path)
        assert response.status_code == 404, (method, path, response.status_code, response.content)
        assert response.json()["error"] == "not_found"
        assert "secrets" not in response.content.decode()
    assert not openai_configured.calls
    alice_conv.refresh_from_db()
    assert alice_conv.title == "Alice's secrets" and not alice_conv.is_archived
    assert alice_conv.messages.count() == 2
    assert [c["id"] for c in bob.get("/api/v1/chat/conversations").json()] == [bob_conv.id]
    assert [c["id"] for c in bob.get("/api/v1/chats?include_archived=true").json()] == [bob_conv.id]
    assert bob.get("/api/v1/users/conversations/analytics").json()["total_messages"] == 0


def test_message_must_belong_to_the_conversation_in_the_path(openai_configured, auth_client):
    first = services.conversation_create(user=auth_client.user)
    second = services.conversation_create(user=auth_client.user)
    question, answer = make_turn(first)
    assert auth_client.get(f"/api/v1/chats/{second.id}/messages/{question.id}").status_code == 404
    assert auth_client.put(f"/api/v1/chats/{second.id}/messages/{question.id}", {"content": "x"},
                           format="json").status_code == 404
    assert auth_client.post(f"/api/v1/chats/{second.id}/messages/{answer.id}/regenerate").status_code == 404
    assert not openai_configured.calls and first.messages.count() == 2 and not second.messages.exists()


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/chat/conversations"), ("post", "/api/v1/chat/conversation"),
    ("get", "/api/v1/chats"), ("post", "/api/v1/chats"), ("get", "/api/v1/users/conversations/analytics"),
    ("post", "/api/v1/chats/import"), ("get", "/api/v1/chat/conversation/conv_x"),
])
def test_unauthenticated_is_401(api_client, method, path):
    response = getattr(api_client, method)(path)
    assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"


def test_wrong_method_is_405_envelope(auth_client):
    response = auth_client.delete("/api/v1/chat/conversations")
    assert response.status_code == 405 and response.json()["status_code"] == 405


# --- Django admin -------------------------------------------------------------------------------------


def test_admin_is_read_mostly(make_user, client):
    admin_user = make_user("root", is_staff=True, is_superuser=True)
    owner = make_user("carol")
    conversation = services.conversation_create(user=owner, title="Shown in admin")
    _, reply = make_turn(conversation)
    client.force_login(admin_user)
    assert client.get("/admin/chats/conversation/").status_code == 200
    assert b"Shown in admin" in client.get("/admin/chats/conversation/").content
    assert client.get(f"/admin/chats/conversation/{quote(conversation.id)}/change/").status_code == 200
    assert client.get("/admin/chats/message/").status_code == 200
    page = client.get(f"/admin/chats/message/{quote(reply.id)}/change/")
    assert page.status_code == 200 and b"Hi! How can I help you?" in page.content
    assert client.get("/admin/chats/message/add/").status_code == 403
    assert client.get("/admin/chats/conversation/add/").status_code == 403
    client.post(f"/admin/chats/message/{quote(reply.id)}/change/", {"content": "tampered"})
    reply.refresh_from_db()
    assert reply.content == "Hi! How can I help you?"
