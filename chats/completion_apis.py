"""Completion and SSE routes (seeds 001 and 004), as plain async Django views.

* ``POST /chat/completion`` (seed 001): stateless — the client sends ``conversation_history`` — and
  open to anonymous callers while ``ANONYMOUS_CHAT`` is on (public models only). ``stream: true``
  answers as ``/chat/stream`` does.
* ``POST /chat/stream`` (seed 001): Server-Sent Events, ``data: {"chunk", "index"}`` … then
  ``data: {"finished": true, "usage", …}``.
* ``POST /chat/completions`` (seed 004): a turn in one of the caller's chats (``chat_id``), or in a
  new chat made from ``messages``; ``stream: true`` streams the same SSE format.
* ``GET /chat/stream/{stream_id}``: resume a stream (``Last-Event-ID: <stream_id>:<n>``); the same
  header on the POST routes resumes too.

Every route goes through :mod:`chats.streaming` (one pipeline) and :mod:`chats.sse` (one wire
format). Errors raised here are rendered as the envelope by the error middleware.
``Idempotency-Key`` works on the POSTs: a retry gets the first JSON, or the same stream replayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from chatplatform.api import fields, idempotency
from chatplatform.api.asyncviews import authenticate, authenticate_open, json_body, validated
from chatplatform.api.context import current_request_id
from chatplatform.api.exceptions import AppError, envelope
from chatplatform.api.net import client_ip
from chats import selectors, services, sse, streaming
from chats.hub import RETENTION_SECONDS, get_hub
from chats.models import Conversation, Message
from chats.serializers import ReplyUsageOutput
from providers import selectors as provider_selectors
from providers import services as provider_services

MESSAGE_MAX_CHARS = 32_000
HISTORY_MAX_ITEMS = 200
MAX_TOKENS_BOUND = 1_000_000  # the model's own limit is checked too (422 naming it)
ROLES = Message.Role.choices
TAGS = ["chat"]


# --- input and output shapes --------------------------------------------------------------------


class TurnInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = fields.TextField(max_length=MESSAGE_MAX_CHARS, allow_blank=True, trim_whitespace=False)


class _ParametersInput(serializers.Serializer):
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    temperature = fields.NumberField(min_value=0.0, max_value=2.0, required=False, allow_null=True)
    max_tokens = fields.IntegerField(min_value=1, max_value=MAX_TOKENS_BOUND, required=False, allow_null=True)
    stream = serializers.BooleanField(required=False, default=False)


class CompletionInput(_ParametersInput):
    """Seed 001's chat completion request."""

    message = fields.TextField(max_length=MESSAGE_MAX_CHARS, trim_whitespace=False)
    system_prompt = fields.TextField(max_length=MESSAGE_MAX_CHARS, required=False, allow_blank=True,
                                     allow_null=True, trim_whitespace=False)
    conversation_history = TurnInput(many=True, required=False, max_length=HISTORY_MAX_ITEMS)

    def validate_message(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value


class ChatCompletionsInput(_ParametersInput):
    """Seed 004's completion request."""

    chat_id = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    messages = TurnInput(many=True, min_length=1, max_length=HISTORY_MAX_ITEMS)
    use_web_grounding = serializers.BooleanField(required=False, default=False)
    use_extended_thinking = serializers.BooleanField(required=False, default=False)
    use_rag = serializers.BooleanField(required=False, default=False)

    def validate_messages(self, value: list[dict]) -> list[dict]:
        users = [i for i, m in enumerate(value) if m["role"] == "user"]
        if not users:
            raise serializers.ValidationError("At least one user message is required.")
        if any(m["role"] != "system" for m in value[users[-1] + 1:]):
            raise serializers.ValidationError("The last message (other than system messages) must be the user's.")
        if not value[users[-1]]["content"].strip():
            raise serializers.ValidationError("The last user message may not be blank.")
        return value


class CompletionOutput(serializers.Serializer):
    response = serializers.CharField()
    model = serializers.CharField()
    provider = serializers.CharField()
    request_id = serializers.CharField()
    timestamp = serializers.DateTimeField()
    cached = serializers.BooleanField()
    cache_key = serializers.CharField(allow_null=True)
    similarity_score = serializers.FloatField(allow_null=True)
    finish_reason = serializers.CharField()
    usage = ReplyUsageOutput()


class AssistantMessageOutput(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()


class ChatCompletionsOutput(serializers.Serializer):
    id = serializers.CharField(help_text="The assistant message's id.")
    model = serializers.CharField()
    message = AssistantMessageOutput()
    tokens_used = serializers.IntegerField()
    finish_reason = serializers.CharField()
    chat_id = serializers.CharField()
    user_message_id = serializers.CharField()
    provider = serializers.CharField()
    usage = ReplyUsageOutput()
    thinking = serializers.CharField(required=False, help_text="Only when extended thinking produced some.")
    created_at = serializers.DateTimeField()


# --- small helpers ------------------------------------------------------------------------------


def _request_id(request: HttpRequest) -> str:
    return getattr(request, "request_id", "") or current_request_id() or ""


def _iso(value: str | None) -> str:
    return (value or "").replace("+00:00", "Z")


def _usage(event: dict) -> dict:
    return event.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _caller_scope(request: HttpRequest, user) -> str:
    return f"user:{user.pk}" if getattr(user, "pk", None) else f"ip:{client_ip(request)}"


def _owner_key(stream_id: str) -> str:
    return f"chat-stream-owner:{stream_id}"


def check_model_parameters(model_id: str | None, *, temperature: float | None, max_tokens: int | None) -> None:
    """What the provider layer would refuse (422), checked before anything is saved: the same
    planning and checks the pipeline runs, without calling anything."""
    if model_id:
        provider_services.chat_stream(provider_services.ChatCall(
            messages=[], model=model_id, temperature=temperature, max_tokens=max_tokens))


# --- idempotency --------------------------------------------------------------------------------


async def idempotency_release(idem: idempotency.Idempotency) -> None:
    """Drop the lock without keeping an outcome, so a retry runs again (``finish`` keeps no 5xx)."""
    await idempotency.afinish(idem, status=503)


async def run_to_end(reply: streaming.Reply, idem: idempotency.Idempotency,
                     build: Callable[[dict], dict]) -> tuple[int, dict]:
    """Wait for the reply, shape it, and store it for Idempotency-Key retries. Runs shielded, so a
    client that drops still gets its result on retry."""
    try:
        final = await reply.wait()
    except BaseException:
        await idempotency_release(idem)
        raise
    if final["type"] == "done":
        payload = build(final)
        await idempotency.afinish(idem, status=200, body=payload)
        return 200, payload
    await idempotency_release(idem)
    details = {"stream_id": final["stream_id"]}
    if final.get("conversation_id"):
        details.update(chat_id=final["conversation_id"], message_id=final["message_id"])
    return final["status_code"], envelope(final["status_code"], final["message"], code=final["code"],
                                          details=details)


def replayed_json(stored: dict, headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse(stored["body"], status=stored["status"])
    response["Idempotent-Replayed"] = "true"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


async def stream_or_404(stream_id: str) -> None:
    if not await get_hub().exists(stream_id):
        raise AppError("Stream not found or expired.", status_code=404)


# --- the SSE format of seeds 001 and 004 --------------------------------------------------------


def finished_data(event: dict, request_id: str) -> dict:
    """The last event: seed 001's ``finished``/``usage``, plus seed 004's response keys."""
    usage = _usage(event)
    data: dict[str, Any] = {
        "finished": True, "usage": usage, "response": event.get("content", ""), "model": event.get("model", ""),
        "provider": event.get("provider", ""), "finish_reason": event.get("finish_reason", ""),
        "status": event.get("status", ""), "stream_id": event["stream_id"], "request_id": request_id,
    }
    if event.get("conversation_id"):
        data.update(id=event.get("message_id") or event["stream_id"], chat_id=event["conversation_id"],
                    message={"role": "assistant", "content": event.get("content", "")},
                    tokens_used=usage["total_tokens"])
    if event.get("thinking"):
        data["thinking"] = event["thinking"]
    return data


def error_data(event: dict, request_id: str) -> dict:
    data = {"error": event.get("message", "The AI provider returned an error."), "code": event.get("code", ""),
            "status_code": event.get("status_code", 502), "finished": True, "usage": _usage(event),
            "response": event.get("content", ""), "status": "error", "stream_id": event["stream_id"],
            "request_id": request_id}
    if event.get("conversation_id"):
        data["chat_id"] = event["conversation_id"]
    return data


async def chat_sse(events: AsyncIterator[dict], *, request_id: str) -> AsyncIterator[bytes]:
    """Pipeline events -> seed 001's SSE: ``{"chunk", "index"}`` per delta, ``{"thinking"}`` as
    ``event: thinking``, then ``{"finished": true, …}`` or (``event: error``) ``{"error", "code"}``.
    The ``start`` event sends nothing (seed 001 clients read ``chunk``/``finished`` only); the
    stream id is in every event's ``id`` and in the ``X-Stream-ID`` header."""
    async with aclosing(events):
        async for event in events:
            kind = event["type"]
            eid = sse.event_id(event["stream_id"], event["id"])
            if kind == "delta":
                yield sse.encode({"chunk": event["text"], "index": event["index"]}, event_id=eid)
            elif kind == "thinking":
                yield sse.encode({"thinking": event["text"]}, event_id=eid, event="thinking")
            elif kind == "done":
                yield sse.encode(finished_data(event, request_id), event_id=eid)
            elif kind == "error":
                yield sse.encode(error_data(event, request_id), event_id=eid, event="error")


def chat_sse_response(events: AsyncIterator[dict], *, stream_id: str, request_id: str,
                      headers: dict[str, str] | None = None) -> StreamingHttpResponse:
    return sse.sse_response(chat_sse(events, request_id=request_id),
                            headers={"X-Stream-ID": stream_id, **(headers or {})})


async def resume_response(request: HttpRequest, user, stream_id: str, after: int) -> StreamingHttpResponse:
    """The events of ``stream_id`` after ``after``, then the rest live. Streams of a conversation are
    their owner's; stateless streams their caller's (user, or address when anonymous). 404 otherwise."""
    owner = await cache.aget(_owner_key(stream_id))
    if owner is not None:
        if owner != _caller_scope(request, user):
            raise AppError("Stream not found.", status_code=404)
    else:
        await streaming.stream_owner_check(stream_id, user)
    await stream_or_404(stream_id)
    return chat_sse_response(streaming.reply_events(stream_id, after=after), stream_id=stream_id,
                             request_id=_request_id(request))


async def start_stream(events: AsyncIterator[dict]) -> tuple[dict, AsyncIterator[dict]]:
    """Run ``stream_reply`` up to its first event, so invalid requests fail (4xx) before any byte
    of the 200 is sent. Returns that event and the whole stream (it included)."""
    first = await anext(events)
    return first, sse.prepend(first, events)


async def _remember_owner(request: HttpRequest, user, stream_id: str) -> None:
    await cache.aset(_owner_key(stream_id), _caller_scope(request, user), timeout=RETENTION_SECONDS + 60)


async def _begin_idempotent(request: HttpRequest, user, body: dict,
                            replay: Callable[[dict], Awaitable[HttpResponse]]
                            ) -> tuple[idempotency.Idempotency, HttpResponse | None]:
    idem = idempotency.idempotency_for(request, user, body)
    stored = await idempotency.abegin(idem)
    if stored is None:
        return idem, None
    return idem, await replay(stored)


def _replayer(request: HttpRequest, headers: dict[str, str]):
    async def replay(stored: dict) -> HttpResponse:
        if stored.get("stream_id"):
            stream_id = stored["stream_id"]
            _, after = sse.parse_last_event_id(request.headers.get("Last-Event-ID"), stream_id=stream_id)
            await stream_or_404(stream_id)
            response = chat_sse_response(streaming.reply_events(stream_id, after=after), stream_id=stream_id,
                                         request_id=_request_id(request), headers=headers)
            response["Idempotent-Replayed"] = "true"
            return response
        return replayed_json(stored, headers)
    return replay


# --- seed 001 -----------------------------------------------------------------------------------


def completion_data(final: dict, request_id: str) -> dict:
    return {
        "response": final["content"], "model": final["model"], "provider": final["provider"],
        "request_id": request_id, "timestamp": _iso(final.get("timestamp")), "cached": False,
        "cache_key": None, "similarity_score": None, "finish_reason": final["finish_reason"],
        "usage": _usage(final),
    }


async def _seed001(request: HttpRequest, *, force_stream: bool) -> HttpResponse:
    user, auth = await authenticate_open(request, chatbot_keys=True)
    headers = {"X-Cache-Status": "BYPASS"}
    if request.headers.get("Last-Event-ID"):
        stream_id, after = sse.parse_last_event_id(request.headers["Last-Event-ID"])
        return await resume_response(request, user, stream_id, after)
    body = json_body(request)
    data = validated(CompletionInput, body)
    streamed = force_stream or data["stream"]
    model = data.get("model") or None
    if not user.is_authenticated:
        model = await sync_to_async(provider_selectors.anonymous_model)(model)
    request_id = _request_id(request)
    system, history = services.split_system(data.get("conversation_history") or [])
    if data.get("system_prompt"):
        system = "\n\n".join(p for p in (data["system_prompt"], system) if p)
    options = streaming.ReplyOptions(model=model, system=system, temperature=data.get("temperature"),
                                     max_tokens=data.get("max_tokens"), history=history,
                                     fallback=user.is_authenticated)  # anonymous: public models only
    call = dict(conversation=None, user_message=None, options=options, user=user, api_key=auth,
                request_id=request_id, prompt=data["message"])
    idem, replayed = await _begin_idempotent(request, user, body, _replayer(request, headers))
    if replayed is not None:
        return replayed
    if streamed:
        try:
            first, events = await start_stream(streaming.stream_reply(**call))
        except BaseException:
            await idempotency_release(idem)
            raise
        await _remember_owner(request, user, first["stream_id"])
        await idempotency.afinish(idem, status=200, stream_id=first["stream_id"])
        return chat_sse_response(events, stream_id=first["stream_id"], request_id=request_id, headers=headers)
    try:
        reply = await streaming.begin_reply(**call)
    except BaseException:
        await idempotency_release(idem)
        raise
    status, payload = await asyncio.shield(run_to_end(reply, idem, lambda f: completion_data(f, request_id)))
    return JsonResponse(payload, status=status, headers=headers)


@csrf_exempt
@require_POST
async def chat_completion(request: HttpRequest) -> HttpResponse:
    """Seed 001: ``POST /chat/completion`` (JSON, or SSE with ``stream: true``)."""
    return await _seed001(request, force_stream=False)


@csrf_exempt
@require_POST
async def chat_stream(request: HttpRequest) -> HttpResponse:
    """Seed 001: ``POST /chat/stream`` (always SSE)."""
    return await _seed001(request, force_stream=True)


@csrf_exempt
@require_GET
async def chat_stream_resume(request: HttpRequest, stream_id: str) -> HttpResponse:
    """Resume a stream: the events after ``Last-Event-ID`` (or ``?last_event_id=``), then live."""
    user, _ = await authenticate_open(request)
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    _, after = sse.parse_last_event_id(raw, stream_id=stream_id)
    return await resume_response(request, user, stream_id, after)


# --- seed 004 -----------------------------------------------------------------------------------


def chat_completions_data(final: dict) -> dict:
    usage = _usage(final)
    data = {
        "id": final["message_id"] or final["stream_id"], "model": final["model"],
        "message": {"role": "assistant", "content": final["content"]}, "tokens_used": usage["total_tokens"],
        "finish_reason": final["finish_reason"], "chat_id": final["conversation_id"],
        "user_message_id": final["user_message_id"], "provider": final["provider"], "usage": usage,
        "created_at": _iso(final.get("timestamp")),
    }
    if final.get("thinking"):
        data["thinking"] = final["thinking"]
    return data


def _find_chat(user, chat_id: str | None) -> Conversation | None:
    return selectors.conversation_get(user=user, conversation_id=chat_id) if chat_id else None


@transaction.atomic
def _save_turn(*, user, conversation: Conversation | None, messages: list[dict], model: str | None
               ) -> tuple[Conversation, Message, str | None]:
    """Save the last user message of ``messages`` (the turn's prompt). In an existing chat its thread
    is the history and earlier ``messages`` are not stored again; with no chat, a new one is made
    from the earlier messages. System messages become the turn's (or the new chat's) system prompt."""
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system" and m["content"].strip()) or None
    if conversation is None:
        earlier = [{"role": m["role"], "content": m["content"]} for m in messages[:last_user]
                   if m["role"] != "system" and m["content"].strip()]
        first_user = next(m["content"] for m in messages if m["role"] == "user")
        conversation = services.conversation_import(user=user, data={
            "title": services.title_from(first_user), "model": model or "", "system_prompt": system or "",
            "metadata": {"source": "chat/completions"}, "messages": earlier,
        })
        system = None  # stored on the chat
    user_message = services.message_add_user(conversation=conversation, content=messages[last_user]["content"])
    return conversation, user_message, system


@csrf_exempt
@require_POST
async def chat_completions(request: HttpRequest) -> HttpResponse:
    """Seed 004: ``POST /chat/completions`` (JSON, or SSE with ``stream: true``)."""
    user, auth = await authenticate(request, chatbot_keys=True)
    headers = {"X-Cache-Status": "BYPASS"}
    if request.headers.get("Last-Event-ID"):
        stream_id, after = sse.parse_last_event_id(request.headers["Last-Event-ID"])
        return await resume_response(request, user, stream_id, after)
    body = json_body(request)
    data = validated(ChatCompletionsInput, body)
    conversation = await sync_to_async(_find_chat)(user, data.get("chat_id") or None)
    model = data.get("model") or (conversation.model if conversation else "") or None
    await sync_to_async(check_model_parameters)(model, temperature=data.get("temperature"),
                                                max_tokens=data.get("max_tokens"))
    idem, replayed = await _begin_idempotent(request, user, body, _replayer(request, headers))
    if replayed is not None:
        return replayed
    request_id = _request_id(request)
    try:
        conversation, user_message, system = await sync_to_async(_save_turn)(
            user=user, conversation=conversation, messages=data["messages"], model=data.get("model") or None)
        options = streaming.ReplyOptions(
            model=data.get("model") or None, system=system, temperature=data.get("temperature"),
            max_tokens=data.get("max_tokens"), thinking=data["use_extended_thinking"],
            web_grounding=data["use_web_grounding"], use_rag=data["use_rag"],
        )
        call = dict(conversation=conversation, user_message=user_message, options=options, user=user,
                    api_key=auth, request_id=request_id)
        if data["stream"]:
            first, events = await start_stream(streaming.stream_reply(**call))
        else:
            reply = await streaming.begin_reply(**call)
    except BaseException:
        await idempotency_release(idem)
        raise
    if data["stream"]:
        await idempotency.afinish(idem, status=200, stream_id=first["stream_id"])
        return chat_sse_response(events, stream_id=first["stream_id"], request_id=request_id,
                                 headers={**headers, "X-Chat-ID": conversation.id})
    status, payload = await asyncio.shield(run_to_end(reply, idem, chat_completions_data))
    return JsonResponse(payload, status=status, headers=headers)


# --- OpenAPI declarations -----------------------------------------------------------------------
# drf-spectacular documents DRF views only. These never-routed APIViews carry the schema of the
# async views above; :func:`documented` points a view's ``cls`` at one (as DRF's ``as_view`` does),
# so the generator lists the route with this declaration.

SSE_DESCRIPTION = (
    "Server-Sent Events (`text/event-stream`). Each event has `id: <stream_id>:<n>` and one `data:` line: "
    '`{"chunk": "...", "index": 0}` per piece of text, `{"thinking": "..."}` (`event: thinking`) when '
    'extended thinking streams, then `{"finished": true, "usage": {...}, "response": "...", ...}`, or on '
    'failure `event: error` with `{"error": "...", "code": "PROVIDER_ERROR", ...}`. `: ping` comments every '
    "15 s while idle. Reconnect with `Last-Event-ID` to get the missed events (GET /chat/stream/{stream_id})."
)
IDEMPOTENCY = OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
                               description="A retry with the same key returns the first result "
                                           "(or replays the same stream) without a second provider call.")
LAST_EVENT_ID = OpenApiParameter("Last-Event-ID", str, OpenApiParameter.HEADER, required=False,
                                 description="`<stream_id>:<n>`: resume that stream after event n.")
_sse = OpenApiResponse(response=OpenApiTypes.STR, description=SSE_DESCRIPTION)


class _Declaration(APIView):
    """Schema-only: these classes are never routed."""

    parser_classes = [JSONParser]

    def _never_called(self, *args, **kwargs):  # pragma: no cover
        raise NotImplementedError


class ChatCompletionDeclaration(_Declaration):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=TAGS, request=CompletionInput, parameters=[IDEMPOTENCY, LAST_EVENT_ID],
        responses={(200, "application/json"): CompletionOutput, (200, "text/event-stream"): _sse},
        description="Seed 001's chat completion; stateless (send `conversation_history`). Open to anonymous "
                    "callers while ANONYMOUS_CHAT is on, limited to public models. `stream: true` answers as "
                    "POST /chat/stream. `X-Cache-Status: BYPASS`.",
    )
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class ChatStreamDeclaration(_Declaration):
    permission_classes = [AllowAny]

    @extend_schema(tags=TAGS, request=CompletionInput, parameters=[IDEMPOTENCY, LAST_EVENT_ID],
                   responses={(200, "text/event-stream"): _sse},
                   description="Seed 001's streaming chat (same request as /chat/completion).")
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class ChatStreamResumeDeclaration(_Declaration):
    permission_classes = [AllowAny]

    @extend_schema(tags=TAGS, parameters=[LAST_EVENT_ID, OpenApiParameter(
        "last_event_id", str, OpenApiParameter.QUERY, required=False, description="Same as the header.")],
        responses={(200, "text/event-stream"): _sse},
        description="Resume a stream: the events after `Last-Event-ID`, then the rest live. 404 for "
                    "another caller's stream or one that expired (10 minutes after its end).")
    def get(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


class ChatCompletionsDeclaration(_Declaration):
    @extend_schema(
        tags=TAGS, request=ChatCompletionsInput, parameters=[IDEMPOTENCY, LAST_EVENT_ID],
        responses={(200, "application/json"): ChatCompletionsOutput, (200, "text/event-stream"): _sse},
        description="Seed 004's completion. With `chat_id` (one of your chats; 404 otherwise) the last user "
                    "message is added to the chat; without it a new chat is created from `messages` and "
                    "its id returned as `chat_id`. `use_extended_thinking` and `use_web_grounding` reach "
                    "providers that support them; `use_rag` is accepted.",
    )
    def post(self, request, *args, **kwargs):  # pragma: no cover
        self._never_called()


def documented(view, declaration: type[APIView]):
    """Let the schema generator document the async ``view`` with ``declaration``."""
    view.cls = declaration
    view.initkwargs = {}
    return view
