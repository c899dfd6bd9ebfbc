"""A stateless turn (the OpenAI-compatible gateway, seed 001) plans its call without the database:
no transaction, so on SQLite it never takes the write lock that saving turns wait for."""

from __future__ import annotations

from chats import turns
from chats.models import Conversation
from providers.adapters.base import ChatMessage


def test_a_stateless_turn_plans_without_a_query(openai_configured, user, django_assert_num_queries):
    caller = turns.Caller(user=user, request_id="req_test")

    def turn() -> turns.Turn:
        return turns.Turn(inputs=[ChatMessage("user", "Hello?")], history=[], model="gpt-4o-mini")

    turns._prepare(caller, turn())  # the first one reads the catalogue (then remembered)
    with django_assert_num_queries(0):
        prepared = turns._prepare(caller, turn())
    assert prepared.conversation is None and prepared.user_message is None
    assert prepared.stream.routes and prepared.stream.routes[0].model.id == "gpt-4o-mini"


def test_a_conversation_turn_still_saves_in_one_transaction(openai_configured, user, django_assert_num_queries):
    caller = turns.Caller(user=user, request_id="req_test")
    turns._prepare(caller, turns.Turn(text="Warm-up", create=True, model="gpt-4o-mini"))
    with django_assert_num_queries(4) as captured:
        prepared = turns._prepare(caller, turns.Turn(text="Hello?", create=True, model="gpt-4o-mini"))
    sql = [q["sql"] for q in captured.captured_queries]
    # one atomic block around the saves (a savepoint here: the test runs inside a transaction)
    assert sql[0].startswith(("BEGIN", "SAVEPOINT")) and sql[-1].startswith(("COMMIT", "RELEASE SAVEPOINT")), sql
    # the new chat is inserted with its leaf, count and title: no UPDATE after the message
    assert [q.split()[0] for q in sql[1:-1]] == ["INSERT", "INSERT"], sql
    assert prepared.user_message.content == "Hello?"
    conversation = Conversation.objects.get(pk=prepared.conversation.pk)
    assert (conversation.active_leaf_id, conversation.message_count, conversation.title) == (
        prepared.user_message.id, 1, "Hello?")


def test_a_new_chat_with_history_is_one_branch_in_order(openai_configured, user):
    caller = turns.Caller(user=user, request_id="req_test")
    history = [ChatMessage("user", "First?"), ChatMessage("assistant", "One."), ChatMessage("user", "Second?"),
               ChatMessage("assistant", "Two.")]
    prepared = turns._prepare(caller, turns.Turn(
        inputs=[ChatMessage("user", "Third?")], model="gpt-4o-mini",
        new=turns.NewConversation(fields={"title": ""}, history=history)))
    conversation = Conversation.objects.get(pk=prepared.conversation.pk)
    saved = list(conversation.messages.order_by("created_at"))
    assert [m.content for m in saved] == ["First?", "One.", "Second?", "Two.", "Third?"]
    assert [m.parent_id for m in saved] == [None, *(m.id for m in saved[:-1])]
    assert conversation.active_leaf_id == saved[-1].id == prepared.user_message.id
    assert conversation.message_count == 5
    assert conversation.title == "Third?"  # the turn's own message names it, not the history
