"""The HTTP routes that start a turn. Thin: validate with the shared serializers, describe the turn,
:func:`chats.turns.turn_begin`, and hand its reply to a transport (REST JSON or SSE).

* Seed 000: ``POST /chat/message``, ``POST /chat/conversation`` (with ``initial_message``), and
  message edits and regenerations (DRF views, JSON).
* Seed 001: ``POST /chat/completion`` (JSON, or SSE with ``stream: true``) and ``POST /chat/stream``
  (SSE): stateless, open to anonymous callers while ``ANONYMOUS_CHAT`` (public models only).
* Seed 004: ``POST /chat/completions``: a turn in one of the caller's chats (``chat_id``), or in a
  new chat made from ``messages``; JSON or SSE.
* ``GET /chat/stream/{stream_id}``: resume a stream (``Last-Event-ID``); the same header on the
  POST routes resumes too.

``Idempotency-Key`` works on every POST: a retry gets the first JSON, or the same stream replayed.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatplatform.api.asyncviews import authenticate, authenticate_open, json_body, validated
from chatplatform.api.exceptions import AppError
from chatplatform.api.net import client_ip
from chats import schema, selectors, services
from chats.inputs import (
    ChatCompletionsInput,
    CompletionInput,
    ConversationStartInput,
    GenerationInput,
    MessageEditInput,
    RegenerateInput,
    SendMessageInput,
)
from chats.models import Conversation, Message
from chats.openai_inputs import ToolParamsInput, split_inputs
from chats.serializers import BranchOutput, ConversationMessageOutput, conversation_detail
from chats.transports import formats, replay, rest, sse
from chats.transports.openai import BegunTurn, begin_turn, gateway_turn
from chats.turns import Caller, NewConversation, Turn
from providers.serializers import GenerationParamsInput

CACHE_HEADERS = {"X-Cache-Status": "BYPASS"}


def caller_of(request: HttpRequest | Request, user=None, credential=None) -> Caller:
    return Caller(user=user if user is not None else request.user,
                  credential=credential if user is not None else getattr(request, "auth", None),
                  address=client_ip(request), request_id=getattr(request, "request_id", ""))


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- seed 000: JSON turns ------------------------------------------------------------------------


def _branch_payload(final: dict) -> dict:
    assistant = Message.objects.get(id=final["message_id"])
    user_message = Message.objects.get(id=final["user_message_id"])
    return BranchOutput({"conversation_id": final["conversation_id"], "user_message": user_message,
                         "assistant_message": assistant, "message": assistant.content,
                         "response": assistant.content}).data


@csrf_exempt
@require_POST
async def send_message(request: HttpRequest) -> HttpResponse:
    """Seed 000: ``POST /chat/message``, answered as JSON once the reply has ended. A chatbot's key
    chats as that chatbot (its profile applies). Async, as the other turn routes: no thread is held
    while the provider answers."""
    started = time.perf_counter()
    begun = await gateway_turn(request, SendMessageInput, lambda caller, data: Turn(
        text=data["message"], conversation_id=data.get("conversation_id") or None, create=True,
        **GenerationInput.choice(data)))
    return await _respond(request, begun, streamed=False, build=lambda final: formats.message_body(final, started),
                          headers=CACHE_HEADERS)


class ConversationStartApi(APIView):
    @schema.CONVERSATION_START
    def post(self, request: Request) -> Response:
        data = dict(_valid(ConversationStartInput, request.data))
        initial = data.pop("initial_message", "") or ""
        choice = GenerationInput.choice(data)
        fields_ = {k: v for k, v in data.items() if k != "model_parameters"}
        started = time.perf_counter()

        def run() -> tuple[dict, int]:
            if not initial.strip():
                conversation = services.conversation_create(user=request.user, **fields_)
                return {**conversation_detail(conversation, []), "reply": None}, status.HTTP_201_CREATED
            turn = Turn(text=initial, new=NewConversation(fields=fields_), **choice)
            reply = rest.answer(caller_of(request), turn, lambda final: formats.message_body(final, started))
            conversation = selectors.conversation_get(user=request.user, conversation_id=reply["conversation_id"])
            return ({**conversation_detail(conversation, selectors.thread(conversation)), "reply": reply},
                    status.HTTP_201_CREATED)

        return replay.idempotent_view(request, run)


def _message(request: Request, kwargs: dict) -> tuple[Conversation, Message]:
    conversation = selectors.conversation_get(user=request.user,
                                              conversation_id=kwargs.get("chat_id") or kwargs.get("conversation_id"))
    message = selectors.message_get(user=request.user, message_id=kwargs["message_id"])
    if message.conversation_id != conversation.id:
        raise AppError("Message not found.", status_code=404)
    return conversation, message


class MessageDetailApi(APIView):
    @extend_schema(tags=schema.CHATS_TAG, responses={200: ConversationMessageOutput})
    def get(self, request: Request, **kwargs: str) -> Response:
        _, message = _message(request, kwargs)
        return Response(ConversationMessageOutput(message).data)

    @schema.MESSAGE_EDIT
    def put(self, request: Request, **kwargs: str) -> Response:
        conversation, message = _message(request, kwargs)
        data = _valid(MessageEditInput, request.data)
        turn = Turn(text=data["content"], conversation=conversation, sibling_of=message, **GenerationInput.choice(data))
        return replay.idempotent_view(request, lambda: (rest.answer(caller_of(request), turn, _branch_payload),
                                                        status.HTTP_200_OK))


class RegenerateApi(APIView):
    @schema.REGENERATE
    def post(self, request: Request, **kwargs: str) -> Response:
        conversation, message = _message(request, kwargs)
        data = _valid(RegenerateInput, request.data)
        turn = Turn(conversation=conversation, reply_to=services.regenerate_target(message=message),
                    **GenerationInput.choice(data))
        return replay.idempotent_view(request, lambda: (rest.answer(caller_of(request), turn, _branch_payload),
                                                        status.HTTP_200_OK))


# --- seeds 001 and 004: JSON or SSE ------------------------------------------------------------------


def completion_turn(data: dict) -> Turn:
    """Seed 001: stateless; ``conversation_history``'s leading system turns join ``system_prompt``."""
    system, history = services.split_system(data.get("conversation_history") or [])
    return Turn(text=data["message"], history=history, model=data.get("model") or None,
                system="\n\n".join(p for p in (data.get("system_prompt"), system) if p) or None,
                params=GenerationParamsInput.params(data))


def chat_completions_turn(data: dict) -> Turn:
    """Seed 004: system messages are the turn's (or the new chat's) system prompt; the trailing user
    message (and tool results, answering the reply's tool calls) is the turn's new input. With
    ``chat_id`` the chat's thread is the history (earlier ``messages`` are not stored again);
    without, a new chat holds the earlier messages."""
    messages = [m["message"] for m in data["messages"]]
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content.strip()) or None
    earlier, inputs = split_inputs([m for m in messages if m.role != "system"])
    users = [m for m in inputs if m.role == "user"]
    inputs = [m for m in inputs if m.role == "tool" or m is users[-1]] if users else inputs
    params = GenerationParamsInput.params(data, thinking=data["use_extended_thinking"],
                                          web_grounding=data["use_web_grounding"],
                                          **ToolParamsInput.tool_params(data))
    turn = Turn(inputs=inputs, model=data.get("model") or None, params=params, use_rag=data["use_rag"])
    if data.get("chat_id"):
        turn.conversation_id, turn.system = data["chat_id"], system
    else:
        first_user = next((m.content for m in messages if m.role == "user"), "")
        turn.new = NewConversation(
            fields={"title": services.title_from(first_user), "model": data.get("model") or "",
                    "system_prompt": system or "", "metadata": {"source": "chat/completions"}},
            history=[m for m in earlier if m.content.strip() or m.tool_calls or m.role == "tool"])
    return turn


async def _answer(request: HttpRequest, caller: Caller, body: dict, turn: Turn, *, streamed: bool,
                  build, headers: dict[str, str]) -> HttpResponse:
    """Start ``turn`` (or replay its stored outcome) and answer as JSON or SSE."""
    begun = await begin_turn(request, caller, body, {}, lambda caller, data: turn)
    return await _respond(request, begun, streamed=streamed, build=build, headers=headers)


async def _respond(request: HttpRequest, begun: BegunTurn, *, streamed: bool, build,
                   headers: dict[str, str]) -> HttpResponse:
    """The answer to a begun turn (or the replay of its stored outcome), as JSON or SSE."""
    caller, idem = begun.caller, begun.idem
    if begun.stored is not None:
        return await replay.replayed(request, begun.stored, headers, lambda stream_id, after: sse.replay_response(
            stream_id, after, request_id=caller.request_id))
    reply = begun.reply
    headers = {**headers, **rest.cache_headers(reply)}
    if not streamed:
        return await rest.respond(reply, idem, build, headers=headers)
    if reply.conversation is None:
        await replay.remember_owner(reply.stream_id, caller)
    else:
        headers = {**headers, "X-Chat-ID": reply.conversation.id}
    await replay.keep_stream(idem, reply.stream_id)
    return sse.reply_response(reply, request_id=caller.request_id, headers=headers)


async def _caller(request: HttpRequest, *, open_route: bool) -> Caller:
    user, auth = await (authenticate_open if open_route else authenticate)(request, chatbot_keys=True)
    return caller_of(request, user, auth)


async def _seed001(request: HttpRequest, *, force_stream: bool) -> HttpResponse:
    caller = await _caller(request, open_route=True)
    if request.headers.get("Last-Event-ID"):  # an EventSource reconnecting
        return await sse.resume(request, caller, *sse.last_event(request))
    body = json_body(request)
    data = validated(CompletionInput, body)
    turn = completion_turn(data)
    turn.cache = rest.cache_allowed(request, data)
    return await _answer(request, caller, body, turn, streamed=force_stream or data["stream"],
                         build=lambda final: formats.completion_body(final, caller.request_id),
                         headers=CACHE_HEADERS)


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
    user, auth = await authenticate_open(request)
    return await sse.resume(request, caller_of(request, user, auth), *sse.last_event(request, stream_id=stream_id))


@csrf_exempt
@require_POST
async def chat_completions(request: HttpRequest) -> HttpResponse:
    """Seed 004: ``POST /chat/completions`` (JSON, or SSE with ``stream: true``)."""
    caller = await _caller(request, open_route=False)
    if request.headers.get("Last-Event-ID"):
        return await sse.resume(request, caller, *sse.last_event(request))
    body = json_body(request)
    data = validated(ChatCompletionsInput, body)
    turn = chat_completions_turn(data)
    turn.cache = rest.cache_allowed(request, data)
    return await _answer(request, caller, body, turn, streamed=data["stream"],
                         build=formats.chat_completions_body, headers=CACHE_HEADERS)
