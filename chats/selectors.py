"""Conversation and message reads. Another user's conversation is simply not found (404)."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone

from chatplatform.api.exceptions import AppError
from chats.models import Conversation, Message
from providers.adapters.base import ChatMessage, Image, ToolCall

MAX_THREAD_MESSAGES = 5000


def conversation_get(*, user, conversation_id: str) -> Conversation:
    conversation = Conversation.objects.filter(id=str(conversation_id), user=user).first()
    if conversation is None:
        raise AppError("Conversation not found.", status_code=404)
    return conversation


def conversation_find(*, user, conversation_id: str) -> Conversation | None:
    return Conversation.objects.filter(id=str(conversation_id), user=user).first()


def conversation_list(*, user, include_archived: bool = True) -> QuerySet[Conversation]:
    qs = Conversation.objects.filter(user=user)
    if not include_archived:
        qs = qs.filter(is_archived=False)
    return qs.order_by("-updated_at", "-created_at")


def thread(conversation: Conversation, *, leaf_id: str | None = None) -> list[Message]:
    """The messages of the active branch, oldest first (root -> leaf).

    The most recent messages are read in one query; ancestors older than that window (very long
    conversations) are fetched as the walk reaches them."""
    recent = list(conversation.messages.order_by("-created_at")[:MAX_THREAD_MESSAGES])
    if not recent:
        return []
    by_id = {m.id: m for m in recent}
    leaf = by_id.get(leaf_id or conversation.active_leaf_id or "")
    if leaf is None and (leaf_id or conversation.active_leaf_id):
        leaf = conversation.messages.filter(id=leaf_id or conversation.active_leaf_id).first()
    leaf = leaf or recent[0]
    chain: list[Message] = []
    seen: set[str] = set()
    node: Message | None = leaf
    while node is not None and node.id not in seen:
        chain.append(node)
        seen.add(node.id)
        parent_id = node.parent_id
        node = (by_id.get(parent_id) or conversation.messages.filter(id=parent_id).first()) if parent_id else None
    chain.reverse()
    return chain


def message_get(*, user, message_id: str) -> Message:
    message = Message.objects.select_related("conversation").filter(
        id=str(message_id), conversation__user=user).first()
    if message is None:
        raise AppError("Message not found.", status_code=404)
    return message


def conversation_analytics(*, user) -> dict:
    """Seed 000's analytics: totals, busiest weekday, topics (by model used), monthly usage."""
    conversations = Conversation.objects.filter(user=user)
    total_conversations = conversations.count()
    total_messages = Message.objects.filter(conversation__user=user).count()
    days = Counter(
        created.strftime("%A")
        for created in Message.objects.filter(conversation__user=user, role=Message.Role.USER)
        .values_list("created_at", flat=True)[:20000]
    )
    since = timezone.now() - timedelta(days=365)
    monthly = (
        conversations.filter(created_at__gte=since).annotate(month=TruncMonth("created_at"))
        .values("month").annotate(count=Count("id")).order_by("month")
    )
    topics = Counter((c.get("metadata") or {}).get("topic") or "general"
                     for c in conversations.values("metadata")[:20000])
    return {
        "total_conversations": total_conversations,
        "total_messages": total_messages,
        "average_messages_per_conversation": round(total_messages / total_conversations, 1)
        if total_conversations else 0.0,
        "most_active_day": days.most_common(1)[0][0] if days else None,
        "conversation_topics": [{"topic": t, "count": n} for t, n in topics.most_common(10)],
        "monthly_usage": [{"month": row["month"].strftime("%Y-%m"), "conversations": row["count"]}
                          for row in monthly],
    }


def thread_for_model(conversation: Conversation, *, leaf_id: str | None = None) -> list[ChatMessage]:
    """The thread ending at ``leaf_id`` as the model reads it: no system turns, no failed replies,
    nothing empty."""
    return [as_chat_message(m) for m in thread(conversation, leaf_id=leaf_id)
            if m.role != Message.Role.SYSTEM and (m.content or m.tool_calls) and m.status != Message.Status.ERROR]


def response_message(*, user, message_id: str) -> Message | None:
    """The caller's stored assistant reply ``message_id`` (a Responses API response), or None."""
    if not getattr(user, "pk", None):
        return None
    return (Message.objects.select_related("conversation")
            .filter(id=message_id, role=Message.Role.ASSISTANT, conversation__user=user).first())


def previous_reply(message: Message) -> Message | None:
    """The assistant reply before ``message`` on its branch (the response it continued), or None."""
    parent = message.parent
    while parent is not None and parent.role != Message.Role.ASSISTANT:
        parent = parent.parent
    return parent


def as_chat_message(message: Message) -> ChatMessage:
    """A stored message as the provider layer reads it (tool calls, tool results, images)."""
    images = tuple(Image(media_type=i["media_type"], data=base64.b64decode(i["data"]))
                   for i in (message.metadata or {}).get("images", []))
    return ChatMessage(role=message.role, content=message.content, images=images,
                       tool_calls=tuple(ToolCall(id=c["id"], name=c["name"], arguments=c.get("arguments") or "{}")
                                        for c in message.tool_calls or []),
                       tool_call_id=message.tool_call_id or None, name=message.tool_name or None)
