"""The one way a reply starts: :func:`turn_begin`.

Every transport (REST JSON, SSE, WebSocket, the OpenAI-compatible API) turns its request into a
:class:`Turn` and calls :func:`turn_begin`, which, once and in this order:

1. applies the caller's credential profile (a chatbot key: its system prompt, model and endpoint)
   and the user's preferences (default model and provider, system prompt, temperature, max_tokens);
2. finds the conversation (owner-scoped; another user's is a 404) or plans a new one;
3. resolves the model and its routes and checks the parameters against the model, and the prompt
   (system prompt and history, the conversation's thread or the request's own) against its
   context window: anything refused is a 4xx before anything is saved;
4. saves the new conversation and the user's message, in one transaction with the checks;
5. starts the generation (:mod:`chats.streaming`) and returns its :class:`~chats.streaming.Reply`,
   whose events the transports only format.

The response cache, memories and document context (``use_rag``: :func:`knowledge.selectors.rag_context`),
tools and budget checks enter a turn here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import transaction

from accounts.models import ApiKey
from chatplatform.api.exceptions import AppError
from chats import selectors, services, streaming
from chats.models import Conversation, Message
from knowledge import memories_services
from knowledge import selectors as knowledge_selectors
from providers import budgets
from providers import cache as response_cache
from providers import selectors as provider_selectors
from providers import services as provider_services
from providers.adapters.base import ChatMessage
from providers.cache import scope_of
from providers.images import resolved
from providers.params import GenerationParams
from providers.profiles import CredentialProfile, profile_of

T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """Who starts the turn: the user (or AnonymousUser), the credential they presented
    (``request.auth``), their address and the request id."""

    user: Any
    credential: Any = None
    address: str = ""
    request_id: str = ""

    @property
    def authenticated(self) -> bool:
        return bool(getattr(self.user, "is_authenticated", False))

    @property
    def scope(self) -> str:
        """Who owns this caller's stateless streams: the user, or the address when anonymous."""
        return f"user:{self.user.pk}" if self.authenticated else f"ip:{self.address}"


@dataclass(frozen=True)
class NewConversation:
    """A conversation the turn starts: an id the client chose (seed 000), fields, earlier turns."""

    id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    history: list[ChatMessage] = field(default_factory=list)


@dataclass
class Turn:
    """What a transport asks for. Exactly one of: ``history`` (stateless: nothing is saved but
    usage), ``conversation``/``conversation_id`` (a conversation of the caller's; with ``create`` an
    unknown id starts it), or ``new`` (a conversation to start)."""

    text: str | None = None  # the new user message (None: answer ``reply_to`` again)
    inputs: list[ChatMessage] = field(default_factory=list)  # instead of ``text``: tool results, images
    history: list[ChatMessage] | None = None
    conversation_id: str | None = None
    create: bool = False
    conversation: Conversation | None = None
    new: NewConversation | None = None
    reply_to: Message | None = None  # regenerate: a saved user message to answer again
    sibling_of: Message | None = None  # edit: the new message replaces this one (same parent)
    after: Message | None = None  # continue the thread after this message (not the active leaf)
    system: str | None = None  # this turn's system prompt (the request's)
    model: str | None = None
    provider: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    end_user: str | None = None  # the client's own id for its end user (OpenAI's ``user``), sent upstream
    cache: bool = False  # the response cache may answer (routes that offer it; off with Cache-Control: no-cache)
    use_rag: bool = False  # the caller's document chunks join the prompt; the reply cites them

    @property
    def stateless(self) -> bool:
        return self.history is not None

    @property
    def new_messages(self) -> list[ChatMessage]:
        """What this turn adds to the conversation: ``inputs``, or a user message of ``text``."""
        return self.inputs or [ChatMessage("user", self.text or "")]


@dataclass
class _Prepared:
    conversation: Conversation | None
    user_message: Message | None
    stream: provider_services.ChatStream
    metadata: dict[str, Any] = field(default_factory=dict)  # the reply's (e.g. the memory ids used)
    extract: bool = False  # extract memories from this exchange once the reply is saved
    citations: list[dict] | None = None  # a use_rag turn's document citations


async def turn_begin(caller: Caller, turn: Turn) -> streaming.Reply:
    """Check, save and start one turn (see the module docstring). 4xx before anything is saved;
    provider failures arrive later as the reply's ``error`` event."""
    return (await turn_begin_after(lambda: (caller, turn, None)))[2]


async def turn_begin_after(checks: Callable[[], tuple[Caller, Turn, T]]) -> tuple[Caller, T, streaming.Reply]:
    """:func:`turn_begin` of the caller and turn that ``checks()`` returns (blocking work before the
    turn: authentication, the body, lookups), both in one thread hop; with ``checks()``'s third value."""
    def checked() -> tuple[Caller, T, _Prepared]:
        caller, turn, extra = checks()
        return caller, extra, _prepare(caller, turn)

    caller, extra, prepared = await sync_to_async(checked)()
    after = _extract_memories(caller.user) if prepared.extract else None
    return caller, extra, await streaming.start(
        conversation=prepared.conversation, user_message=prepared.user_message, stream=prepared.stream,
        metadata=prepared.metadata, after_saved=after, citations=prepared.citations)


def _prepare(caller: Caller, turn: Turn) -> _Prepared:
    imposed = profile_of(caller.credential)
    profile = imposed or CredentialProfile()
    prefs = (getattr(caller.user, "preferences", None) or {}) if caller.authenticated else {}
    # A stateless turn saves nothing here (its usage row is written when the reply ends): no
    # transaction, which on SQLite would take the database's write lock for nothing.
    with nullcontext() if turn.stateless else transaction.atomic():
        conversation = _conversation(caller, turn)
        stored = _stored(conversation, turn)
        model, provider = _choice(turn, profile, stored, prefs)
        if not caller.authenticated:
            model, provider = provider_selectors.anonymous_model(model), None
        messages = _history(turn, conversation)
        system = (profile.system_prompt or turn.system or stored.get("system_prompt") or prefs.get("system_prompt")
                  or None)
        # A credential with a profile (a chatbot's key) chats for others: its owner's memories and
        # documents stay out.
        personal = imposed is None
        blocks = _knowledge(caller, turn, prefs) if personal else []
        system = knowledge_selectors.render(system, blocks)
        rag = _rag(caller, turn, stored, messages, personal=personal)
        if rag is not None and rag.block:
            system = f"{system}\n\n{rag.block}" if system else rag.block
        call = provider_services.ChatCall(
            messages=messages, model=model, provider=provider, system=system,
            params=turn.params, endpoint=profile.endpoint,
            fallback=caller.authenticated and profile.endpoint is None,  # anonymous: public models only
            user=caller.user if caller.authenticated else None,
            api_key=caller.credential if isinstance(caller.credential, ApiKey) else None,
            request_id=caller.request_id, end_user=turn.end_user,
        )
        stream = provider_services.chat_stream(call)  # plans and checks (the request's own values)
        preferred = _preferred_params(call.params, prefs, stream)
        capped = budgets.capped_max_tokens(preferred.max_tokens)  # the operator's cap (runtime setting)
        if capped != preferred.max_tokens:
            preferred = replace(preferred, max_tokens=capped)
        if preferred != call.params:
            call.params = preferred
            stream = provider_services.chat_stream(call)
        stream = response_cache.cached_stream(stream, enabled=turn.cache and not turn.reply_to, scope=scope_of(
            caller.user if caller.authenticated else None, call.api_key, caller.address))
        citations = rag.citations if rag is not None else None
        if turn.stateless:
            _reserve(caller, stream)
            return _Prepared(None, None, stream, citations=citations)
        if conversation is None:  # a new chat is saved with this turn's messages (see conversation_start)
            new = turn.new or NewConversation(id=turn.conversation_id)
            conversation = services.conversation_start(user=caller.user, conversation_id=new.id,
                                                       history=new.history, messages=turn.new_messages,
                                                       **new.fields)
            user_message = conversation.active_leaf
        else:
            user_message = _user_message(turn, conversation)
        memories_services.memories_mark_used(memory_ids=[i for b in blocks if b.kind == "memory_ids"
                                                         for i in b.sources])
        _reserve(caller, stream)  # last: a refusal (402/429) rolls the saves back
        return _Prepared(conversation, user_message, stream,
                         metadata=knowledge_selectors.sources_metadata(blocks),
                         extract=personal and bool(prefs.get("memory_extraction")), citations=citations)


def _knowledge(caller: Caller, turn: Turn, prefs: dict) -> list[knowledge_selectors.ContextBlock]:
    """Memories (and other knowledge) for a conversation turn of a signed-in user; stateless
    gateway calls get none (their clients send their own context)."""
    if not caller.authenticated or turn.stateless:
        return []
    return knowledge_selectors.turn_context(user=caller.user, text=_user_text(turn), preferences=prefs)


def _user_text(turn: Turn) -> str:
    """The text of the user message this turn answers ("" for tool results alone)."""
    if turn.text is not None:
        return turn.text
    if turn.reply_to is not None:
        return turn.reply_to.content
    return next((m.content for m in reversed(turn.inputs) if m.role == "user"), "")


def _extract_memories(user):
    """After a complete reply is saved: a Celery task (enqueued on commit) extracts durable facts."""
    def after(user_message: Message | None, reply: Message) -> None:
        if (user_message is None or user_message.role != Message.Role.USER
                or reply.status != Message.Status.COMPLETE or not reply.content.strip()):
            return
        memories_services.memories_extract_later(user_id=user.pk, user_text=user_message.content,
                                               reply_text=reply.content, model=reply.model,
                                               provider=reply.provider)
    return after


def _reserve(caller: Caller, stream: provider_services.ChatStream) -> None:
    """Hold the turn's estimated tokens on the caller's limits and budgets (user, API key or
    chatbot key), settled with the real usage when the reply ends; 429/402 when over."""
    scopes = budgets.scopes_for(user=caller.user, credential=caller.credential, address=caller.address)
    stream.call.reservation = budgets.reserve(scopes, provider_services.call_token_estimate(stream.call))


def _rag(caller: Caller, turn: Turn, stored: dict[str, Any], messages: list[ChatMessage], *,
         personal: bool) -> knowledge_selectors.RagContext | None:
    """Document context when the turn (or its chat's ``settings.use_rag``) asks for it: the caller's
    chunks nearest the last user message. None when not asked."""
    if not (turn.use_rag or (stored.get("settings") or {}).get("use_rag") is True):
        return None
    if not personal:
        raise AppError("use_rag is not available to a chatbot's key: documents are their owner's own.",
                       status_code=403, code="RAG_NOT_ALLOWED")
    if not caller.authenticated:
        raise AppError("use_rag needs an account: documents are per user.", status_code=401)
    query = next((m.content for m in reversed(messages) if m.role == "user" and m.content.strip()), "")
    return knowledge_selectors.rag_context(user=caller.user, query=query)


def _stored(conversation: Conversation | None, turn: Turn) -> dict[str, Any]:
    """The conversation's own model, provider and system prompt (or the new one's)."""
    if conversation is not None:
        return {"model": conversation.model, "provider": conversation.provider,
                "system_prompt": conversation.system_prompt, "settings": conversation.settings}
    return dict(turn.new.fields) if turn.new else {}


def _preferred_params(params: GenerationParams, prefs: dict, stream: provider_services.ChatStream) -> GenerationParams:
    """The user's preferred temperature and max_tokens where the request set none, fitted to the
    model (a preference is not a request: it is brought within the model's limits, not refused)."""
    model = stream.routes[0].model if stream.routes else None
    if model is None or (prefs.get("temperature") is None and prefs.get("max_tokens") is None):
        return params
    fitted = GenerationParams(temperature=prefs.get("temperature"), max_tokens=prefs.get("max_tokens")).fitted_to(model)
    return params.with_defaults(temperature=fitted.temperature, max_tokens=fitted.max_tokens)


def _conversation(caller: Caller, turn: Turn) -> Conversation | None:
    """The caller's conversation for this turn; None when stateless or when one is to be started."""
    if turn.stateless or turn.new is not None:
        return None
    if turn.conversation is not None:
        return turn.conversation
    if not caller.authenticated:
        raise AppError("Conversations need an account: sign in.", status_code=401)
    if turn.conversation_id:
        found = selectors.conversation_find(user=caller.user, conversation_id=turn.conversation_id)
        if found is not None:
            return found
    if not turn.create:
        raise AppError("Conversation not found.", status_code=404)
    return None


def _choice(turn: Turn, profile: CredentialProfile, stored: dict[str, Any],
            prefs: dict) -> tuple[str | None, str | None]:
    """(model, provider): the credential's profile, else the first of the request, the
    conversation and the preferences that names either."""
    if profile.model or profile.endpoint is not None:
        return profile.model or turn.model, None
    for model, provider in ((turn.model, turn.provider), (stored.get("model"), stored.get("provider")),
                            (prefs.get("default_model"), prefs.get("default_provider"))):
        if model or provider:
            return model or None, provider or None
    return None, None


def _history(turn: Turn, conversation: Conversation | None) -> list[ChatMessage]:
    """The messages the model reads, oldest first, ending with the ones it answers."""
    if turn.stateless:
        messages = [*(turn.history or []), *turn.new_messages]
    elif turn.reply_to is not None:
        messages = _thread(conversation, leaf_id=turn.reply_to.id)
    elif conversation is None:  # a conversation to start: its earlier turns, then the new message
        messages = [*(turn.new.history if turn.new else []), *turn.new_messages]
    else:
        leaf = (turn.sibling_of.parent_id if turn.sibling_of is not None
                else turn.after.id if turn.after is not None else conversation.active_leaf_id)
        messages = [*(_thread(conversation, leaf_id=leaf) if leaf else []), *turn.new_messages]
    _check_tool_results(messages)
    return [replace(m, images=resolved(m.images)) if any(i.url and not i.data for i in m.images) else m
            for m in messages]


def _thread(conversation: Conversation | None, *, leaf_id: str | None) -> list[ChatMessage]:
    return selectors.thread_for_model(conversation, leaf_id=leaf_id) if conversation is not None else []


def _check_tool_results(messages: list[ChatMessage]) -> None:
    """Every tool result answers a call an earlier assistant turn made (providers refuse others)."""
    calls: set[str] = set()
    for index, message in enumerate(messages):
        calls.update(c.id for c in message.tool_calls)
        if message.role == "tool" and message.tool_call_id not in calls:
            raise AppError("A tool result answers no earlier tool call.", status_code=422, details={
                f"messages[{index}]": [f"tool_call_id {message.tool_call_id!r} matches no assistant tool call."]})


def _user_message(turn: Turn, conversation: Conversation) -> Message:
    """Save this turn's new messages; the last is the one the reply answers."""
    if turn.reply_to is not None:
        return turn.reply_to
    if turn.sibling_of is not None:
        return services.message_edit(message=turn.sibling_of, content=turn.text or "")
    saved = None
    for message in turn.new_messages:
        saved = services.message_add(conversation=conversation, message=message, parent=saved or turn.after)
    assert saved is not None
    return saved
