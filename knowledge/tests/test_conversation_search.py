"""Conversation search (seed 004's /chats/search and seed 000's /chat/conversations/search): full-text
over the caller's own messages, on SQLite FTS5 here and PostgreSQL full-text under DATABASE_URL."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from chats.models import Conversation, Message
from chats.search import MESSAGE_INDEX
from knowledge.fulltext import matching

pytestmark = pytest.mark.django_db


def _conversation(user, title: str, *contents: tuple[str, str]) -> Conversation:
    conversation = Conversation.objects.create(user=user, title=title)
    for role, content in contents:
        Message.objects.create(conversation=conversation, role=role, content=content)
    return conversation


@pytest.fixture
def chats(user):
    trip = _conversation(user, "Trip", ("user", "Plan a weekend trip to the mountains in Portugal"),
                         ("assistant", "The Serra da Estrela mountains are lovely in winter."))
    code = _conversation(user, "Code", ("user", "How do I reverse a list in Python?"),
                         ("assistant", "Use reversed() or slicing with [::-1]."))
    return trip, code


@pytest.mark.parametrize("url", ["/api/v1/chats/search", "/api/v1/chat/conversations/search"])
def test_finds_own_messages_with_highlighted_snippets(auth_client, chats, url):
    trip, _ = chats
    response = auth_client.get(url, {"q": "mountains"})
    assert response.status_code == 200, response.content
    hits = response.json()
    assert response["X-Total-Count"] == "2"
    assert {h["chat_id"] for h in hits} == {trip.id} and {h["role"] for h in hits} == {"user", "assistant"}
    assert all("<mark>mountains</mark>" in h["snippet"].lower() for h in hits)
    assert all(h["chat_title"] == "Trip" and h["conversation_id"] == trip.id and h["score"] > 0 for h in hits)
    # Stemming: "reversing" finds "reverse"; every word must match.
    assert [h["role"] for h in auth_client.get(url, {"q": "reversing list"}).json()] == [
        "user"]
    assert auth_client.get(url, {"q": "python mountains"}).json() == []
    assert len(auth_client.get(url, {"q": "mountains", "role": "assistant"}).json()) == 1


def test_paging_and_index_kept_in_sync(auth_client, user, chats):
    trip, code = chats
    page = auth_client.get("/api/v1/chats/search", {"q": "mountains", "limit": 1})
    assert len(page.json()) == 1 and 'rel="next"' in page["Link"]
    assert len(auth_client.get("/api/v1/chats/search", {"q": "mountains", "limit": 1, "offset": 1}).json()) == 1
    message = trip.messages.get(role="user")
    message.content = "Plan a weekend at the beach"
    message.save()
    assert len(auth_client.get("/api/v1/chats/search", {"q": "mountains"}).json()) == 1
    assert len(auth_client.get("/api/v1/chats/search", {"q": "beach"}).json()) == 1
    trip.delete()
    assert auth_client.get("/api/v1/chats/search", {"q": "mountains"}).json() == []
    assert len(auth_client.get("/api/v1/chats/search", {"q": "python"}).json()) == 1


def test_other_users_messages_never_appear(auth_client, make_user, tokens_for, chats):
    bob = make_user("bob")
    _conversation(bob, "Bob's", ("user", "Bob also loves the mountains"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(bob)['access_token']}")
    hits = client.get("/api/v1/chats/search", {"q": "mountains"}).json()
    assert [h["snippet"] for h in hits] == ["Bob also loves the <mark>mountains</mark>"]
    assert len(auth_client.get("/api/v1/chats/search", {"q": "mountains"}).json()) == 2
    assert client.get("/api/v1/chats/search", {"q": "python"}).json() == []


@pytest.mark.parametrize("params, field", [({}, "q"), ({"q": "x" * 501}, "q"), ({"q": "a", "limit": 0}, "limit"),
                                           ({"q": "a", "sort": "x"}, "sort"), ({"q": "a", "role": "robot"}, "role"),
                                           ({"q": "dark\x00mode"}, "q")])
def test_bad_queries_are_4xx(auth_client, params, field):
    response = auth_client.get("/api/v1/chats/search", params)
    assert response.status_code == 422 and field in response.json()["details"]


def test_operator_characters_are_plain_words(auth_client, chats):
    for q in ['"unbalanced', "NEAR(", "mountains AND OR", "*", "'; DROP TABLE chats_message; --"]:
        response = auth_client.get("/api/v1/chats/search", {"q": q})
        assert response.status_code == 200, (q, response.content)
    assert auth_client.get("/api/v1/chats/search", {"q": "*"}).json() == []


def test_the_index_is_the_vendors():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [MESSAGE_INDEX.name])
            assert "fts5" in cursor.fetchone()[0].lower()
        else:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [MESSAGE_INDEX.name])
            assert "gin" in cursor.fetchone()[0].lower()
            # The search repeats the index's expression, so the GIN index can serve it.
            sql, params = matching(Message.objects.all(), MESSAGE_INDEX, "mountains").query.sql_with_params()
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            assert MESSAGE_INDEX.name in "\n".join(row[0] for row in cursor.fetchall())


def test_the_sqlite_index_follows_every_change(user):
    """Inserts, updates and deletes keep the FTS5 table and its row map in step (SQLite only)."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's FTS5 table")
    conversation = _conversation(user, "T", *[("user", f"note number {i} about kayaks") for i in range(5)])
    messages = list(conversation.messages.order_by("created_at"))
    messages[1].content = "nothing here"
    messages[1].save()
    messages[3].delete()

    def count(sql: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]

    fts = MESSAGE_INDEX.name
    assert count(f"SELECT count(*) FROM {fts}") == count(f"SELECT count(*) FROM {fts}_rows") == 4
    assert count(f"SELECT count(*) FROM {fts} JOIN {fts}_rows r ON r.fts_rowid = {fts}.rowid "
                 f"AND r.row_id = {fts}.row_id") == 4
    found = {m.id for m in message_search_ids(user, "kayaks")}
    assert found == {messages[0].id, messages[2].id, messages[4].id}


def message_search_ids(user, query: str):
    from chats.search import message_search

    return message_search(user=user, query=query)
