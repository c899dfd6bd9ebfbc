"""Conversation and message writes. Generation itself lives in :mod:`chats.streaming`."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chatplatform.api.exceptions import AppError
from chats import selectors
from chats.models import Conversation, Message
from knowledge import webhooks
from providers.adapters.base import ChatMessage

TITLE_LENGTH = 60
MAX_IMPORT_MESSAGES = 2000
_CONVERSATION_FIELDS = {"title", "model", "provider", "system_prompt", "metadata", "settings",
                        "is_archived", "is_active"}
_VALID_ID = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")


def title_from(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_LENGTH else text[: TITLE_LENGTH - 1].rstrip() + "…"


# A step of a chat turn: atomic on its own, and inside the turn's transaction no savepoint of its own
# (a failure inside fails the whole turn, which rolls back anyway): a SAVEPOINT and a RELEASE per
# step were a third of a persisted turn's statements on PostgreSQL.
def atomic_step(func):
    return transaction.atomic(savepoint=False)(func)


def _new_conversation(*, user, conversation_id: str | None, fields: dict[str, Any]) -> Conversation:
    """An unsaved conversation. A client-chosen id (seed 000 lets a client name a new
    conversation, e.g. ``conv_123``) is honoured when it is free; a taken one is a 404 for
    anyone but its owner, so ids of other users' conversations are never revealed."""
    values = {k: v for k, v in fields.items() if k in _CONVERSATION_FIELDS and v is not None}
    if conversation_id is not None:
        conversation_id = str(conversation_id)
        if not _VALID_ID.match(conversation_id):
            raise AppError("Invalid conversation id.", status_code=422,
                           details={"conversation_id": ["Letters, digits, '_' and '-' only (max 40)."]})
        if Conversation.objects.filter(id=conversation_id).exists():
            raise AppError("Conversation not found.", status_code=404)
        values["id"] = conversation_id
    return Conversation(user=user, **values)


@atomic_step
def conversation_create(*, user, conversation_id: str | None = None, **fields: Any) -> Conversation:
    """Create an empty conversation (see :func:`_new_conversation` for the id)."""
    conversation = _new_conversation(user=user, conversation_id=conversation_id, fields=fields)
    conversation.save(force_insert=True)
    webhooks.emit(user, "chat.created", _chat_event(conversation))
    return conversation


def _chat_event(conversation: Conversation) -> dict[str, Any]:
    return {"id": conversation.id, "title": conversation.title, "model": conversation.model,
            "created_at": conversation.created_at.isoformat().replace("+00:00", "Z")}


def _message_event(conversation: Conversation, message: Message) -> None:
    """``message.created`` for a message saved live (user, tool result, the assistant's final reply)."""
    webhooks.emit(conversation.user_id, "message.created", {
        "id": message.id, "chat_id": conversation.id, "role": message.role, "content": message.content,
        "status": message.status, "model": message.model,
        "parent_message_id": message.parent_id,
        "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
    })


@atomic_step
def conversation_start(*, user, conversation_id: str | None = None, history: list[ChatMessage] | None = None,
                       messages: list[ChatMessage] | None = None, **fields: Any) -> Conversation:
    """A new conversation holding ``history`` (oldest first, one branch: the earlier turns a client
    brings when it starts a chat, seed 004), then ``messages``, this turn's new ones (each announced
    as ``message.created``, the first user message naming an untitled chat, as
    :func:`message_add` does). Its ``active_leaf`` is the last message saved.

    Two INSERTs whatever the length: the ids are chosen here, so the conversation is born with its
    leaf, count and title (the foreign keys are checked at commit), and the messages go in one
    statement. A new chat's turn used to insert the chat, insert the message, then UPDATE the chat."""
    conversation = _new_conversation(user=user, conversation_id=conversation_id, fields=fields)
    history, messages = history or [], messages or []
    saved = [Message(conversation=conversation, **message_fields(m)) for m in (*history, *messages)]
    parent = None
    for message in saved:  # one branch, in order (ordered by created_at: never two alike)
        message.parent = parent
        if parent is not None and message.created_at <= parent.created_at:
            message.created_at = parent.created_at + timedelta(microseconds=1)
        parent = message
    if saved:
        conversation.active_leaf, conversation.message_count = saved[-1], len(saved)
    first_user = next((m for m in messages if m.role == "user"), None)
    if not conversation.title and first_user is not None:
        conversation.title = title_from(first_user.content)
    conversation.save(force_insert=True)
    Message.objects.bulk_create(saved)
    webhooks.emit(user, "chat.created", _chat_event(conversation))
    for message in saved[len(history):]:
        _message_event(conversation, message)
    return conversation


def message_fields(message: ChatMessage) -> dict[str, Any]:
    """A :class:`ChatMessage` as Message fields (images kept, base64, in ``metadata``)."""
    fields: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        fields["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls]
    if message.role == "tool":
        fields.update(tool_call_id=message.tool_call_id or "", tool_name=message.name or "")
    if message.images:
        fields["metadata"] = {"images": [{"media_type": i.media_type, "data": i.base64} for i in message.images]}
    return fields


@transaction.atomic
def conversation_get_or_create(*, user, conversation_id: str | None, **fields: Any) -> Conversation:
    """The caller's conversation ``conversation_id``; an unknown id starts it; none starts a new one."""
    if conversation_id:
        existing = selectors.conversation_find(user=user, conversation_id=conversation_id)
        if existing is not None:
            return existing
    return conversation_create(user=user, conversation_id=conversation_id or None, **fields)


@transaction.atomic
def conversation_update(*, conversation: Conversation, **fields: Any) -> Conversation:
    changed = []
    for key, value in fields.items():
        if key in _CONVERSATION_FIELDS and value is not None:
            setattr(conversation, key, value)
            changed.append(key)
    conversation.updated_at = timezone.now()
    conversation.save(update_fields=[*changed, "updated_at"])
    return conversation


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    user, conversation_id = conversation.user, conversation.id
    conversation.delete()
    webhooks.emit(user, "chat.deleted", {"id": conversation_id})


def _touch(conversation: Conversation, *, leaf: Message, **fields: Any) -> None:
    """One UPDATE: the new leaf, the count, ``updated_at`` and any of ``fields`` (set on the object too)."""
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(
        active_leaf=leaf, message_count=F("message_count") + 1, updated_at=now, **fields)
    for name, value in fields.items():
        setattr(conversation, name, value)
    conversation.active_leaf = leaf
    conversation.updated_at = now
    conversation.message_count = (conversation.message_count or 0) + 1


@atomic_step
def message_add_user(*, conversation: Conversation, content: str, parent: Message | None = None,
                     parent_is_leaf: bool = True, metadata: dict | None = None) -> Message:
    """Save the user's message (before any provider is called: it is never lost).

    Without an explicit parent it continues the active branch."""
    if parent is None and parent_is_leaf:
        parent = conversation.active_leaf
    message = Message.objects.create(conversation=conversation, parent=parent, role=Message.Role.USER,
                                     content=content, metadata=metadata or {})
    _touch(conversation, leaf=message, **({} if conversation.title else {"title": title_from(content)}))
    _message_event(conversation, message)
    return message


@atomic_step
def message_add(*, conversation: Conversation, message: ChatMessage, parent: Message | None = None) -> Message:
    """Save a message the caller brings (their own, or a tool's result) after ``parent``, by
    default on the active branch."""
    if message.role == "user":
        return message_add_user(conversation=conversation, content=message.content, parent=parent,
                                metadata=message_fields(message).get("metadata"))
    saved = Message.objects.create(conversation=conversation, parent=parent or conversation.active_leaf,
                                   **message_fields(message))
    _touch(conversation, leaf=saved)
    _message_event(conversation, saved)
    return saved


@atomic_step
def message_save_assistant(
    *, conversation: Conversation, message_id: str, parent: Message | None, content: str, thinking: str = "",
    model: str = "", provider: str = "", prompt_tokens: int = 0, completion_tokens: int = 0,
    cost: Decimal = Decimal("0"), latency_ms: float = 0.0, finish_reason: str = "",
    status: str = Message.Status.COMPLETE, error_code: str = "", metadata: dict | None = None,
    tool_calls: list[dict] | None = None, final: bool = True, new: bool = False,
) -> Message:
    """Save (or, after a disconnect snapshot, complete) the assistant's message. ``final=False``
    is such a snapshot; ``message.created`` is sent once, with the final save. ``new``: the caller
    knows no snapshot was saved, so the row is inserted without looking for it first."""
    values = dict(
        conversation=conversation, parent=parent, role=Message.Role.ASSISTANT, content=content, thinking=thinking,
        model=model, provider=provider, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens, cost=cost, latency_ms=latency_ms,
        finish_reason=finish_reason, status=status, error_code=error_code, metadata=metadata or {},
        tool_calls=tool_calls or [],
    )
    if new:
        message, created = Message.objects.create(id=message_id, **values), True
    else:
        message, created = Message.objects.update_or_create(id=message_id, defaults=values)
    if created:
        _touch(conversation, leaf=message)
    if final:
        _message_event(conversation, message)
    return message


# --- branching ---------------------------------------------------------------------------------


@transaction.atomic
def message_edit(*, message: Message, content: str) -> Message:
    """Editing a user message makes a sibling (same parent) and moves the branch to it."""
    if message.role != Message.Role.USER:
        raise AppError("Only user messages can be edited; regenerate assistant replies instead.",
                       status_code=422, details={"message_id": ["Not a user message."]})
    return message_add_user(conversation=message.conversation, content=content, parent=message.parent,
                            parent_is_leaf=False)


def regenerate_target(*, message: Message) -> Message:
    """The user message a regenerated reply answers: the given assistant message's parent."""
    if message.role == Message.Role.USER:
        return message
    if message.parent is None or message.parent.role != Message.Role.USER:
        raise AppError("This message cannot be regenerated.", status_code=422,
                       details={"message_id": ["No user message precedes it."]})
    return message.parent


# --- export / import ---------------------------------------------------------------------------


def conversation_export(*, conversation: Conversation) -> dict:
    messages = conversation.messages.order_by("created_at")
    return {
        "format": "chatplatform.conversation.v1",
        "id": conversation.id, "title": conversation.title, "model": conversation.model,
        "provider": conversation.provider, "system_prompt": conversation.system_prompt,
        "metadata": conversation.metadata, "is_archived": conversation.is_archived,
        "created_at": conversation.created_at.isoformat(), "updated_at": conversation.updated_at.isoformat(),
        "active_leaf_id": conversation.active_leaf_id,
        "messages": [
            {"id": m.id, "parent_message_id": m.parent_id, "role": m.role, "content": m.content,
             "model": m.model, "provider": m.provider, "status": m.status,
             "prompt_tokens": m.prompt_tokens, "completion_tokens": m.completion_tokens,
             "created_at": m.created_at.isoformat(), "tool_calls": m.tool_calls or [],
             "tool_call_id": m.tool_call_id, "tool_name": m.tool_name}
            for m in messages
        ],
    }


def conversation_export_markdown(*, conversation: Conversation) -> str:
    lines = [f"# {conversation.title or 'Conversation'}", ""]
    if conversation.system_prompt:
        lines += [f"> System: {conversation.system_prompt}", ""]
    for message in selectors.thread(conversation):
        who = {"user": "User", "assistant": "Assistant", "system": "System", "tool": "Tool"}[message.role]
        suffix = f" ({message.model})" if message.role == "assistant" and message.model else ""
        if message.role == "tool":
            suffix = f" ({message.tool_name or message.tool_call_id})"
        lines += [f"**{who}{suffix}** — {message.created_at:%Y-%m-%d %H:%M} UTC", ""]
        lines += [message.content] if message.content else []
        lines += [f"Calls `{c['name']}({c.get('arguments') or '{}'})`" for c in message.tool_calls or []]
        lines.append("")
    return "\n".join(lines)


@transaction.atomic
def conversation_import(*, user, data: dict) -> Conversation:
    """Import an exported conversation as a new one (fresh ids; branches kept)."""
    messages = data.get("messages") or []
    if not isinstance(messages, list) or len(messages) > MAX_IMPORT_MESSAGES:
        raise AppError("Invalid import.", status_code=422,
                       details={"messages": [f"A list of at most {MAX_IMPORT_MESSAGES} messages."]})
    conversation = conversation_create(
        user=user, title=str(data.get("title") or "")[:200], model=str(data.get("model") or "")[:100],
        system_prompt=str(data.get("system_prompt") or ""), metadata=data.get("metadata") or {},
    )
    id_map: dict[str, Message] = {}
    leaf = None
    for index, raw in enumerate(messages):
        if not isinstance(raw, dict) or raw.get("role") not in Message.Role.values or not isinstance(
                raw.get("content"), str):
            raise AppError("Invalid import.", status_code=422,
                           details={f"messages[{index}]": ["Needs role (user/assistant/system/tool) and content."]})
        parent = id_map.get(str(raw.get("parent_message_id"))) if raw.get("parent_message_id") else leaf
        message = Message.objects.create(
            conversation=conversation, parent=parent, role=raw["role"], content=raw["content"],
            model=str(raw.get("model") or "")[:100], provider=str(raw.get("provider") or "")[:50],
            tool_calls=[dict(c) for c in raw.get("tool_calls") or []], tool_call_id=raw.get("tool_call_id") or "",
            tool_name=raw.get("tool_name") or "",
        )
        if raw.get("id"):
            id_map[str(raw["id"])] = message
        leaf = message
    active = id_map.get(str(data.get("active_leaf_id"))) if data.get("active_leaf_id") else leaf
    Conversation.objects.filter(pk=conversation.pk).update(active_leaf=active, message_count=len(messages))
    conversation.refresh_from_db()
    return conversation


def split_system(turns: list[dict]) -> tuple[str | None, list[ChatMessage]]:
    """(leading system messages joined, the rest as ChatMessages). Leading system turns become the
    system prompt, which trimming never drops; blank turns are skipped."""
    index = 0
    system: list[str] = []
    while index < len(turns) and turns[index]["role"] == "system":
        if turns[index]["content"].strip():
            system.append(turns[index]["content"])
        index += 1
    rest = [ChatMessage(t["role"], t["content"]) for t in turns[index:] if t["content"].strip()]
    return ("\n\n".join(system) or None), rest
