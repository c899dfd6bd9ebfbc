"""Conversation search: full-text over the caller's own messages (knowledge.fulltext's machinery)."""

from __future__ import annotations

from django.db.models import QuerySet

from chats.models import Message
from knowledge.fulltext import TextIndex, matching

MESSAGE_INDEX = TextIndex(name="chats_message_fts", table="chats_message", column="content")


def message_search(*, user, query: str, role: str | None = None, include_archived: bool = True) -> QuerySet:
    """The user's messages matching ``query`` (every word), best first, each with ``fts_rank``
    and a highlighted ``fts_snippet``; other users' messages never match."""
    messages = Message.objects.filter(conversation__user=user).select_related("conversation")
    if role:
        messages = messages.filter(role=role)
    if not include_archived:
        messages = messages.filter(conversation__is_archived=False)
    return matching(messages, MESSAGE_INDEX, query)
