"""Conversation routes (seeds 000, 003, 004): thin DRF views over ``chats.services``/``selectors``.

Routes that produce a reply run the one pipeline (:func:`chats.streaming.begin_reply`) to its
terminal event and answer with JSON. The user's message is saved (and committed) before the
provider is called; a provider failure answers with the error envelope (502, 504 or 429, from the
error event) and the user's message stays. Another user's conversation or message is a 404 on
every route. Lists are bare JSON arrays (as the seeds show them) with the total in
``X-Total-Count`` and ``Link`` next/prev headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from asgiref.sync import async_to_sync
from django.db import transaction
from django.http import HttpResponse
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatplatform.api import idempotency
from chatplatform.api.exceptions import AppError
from chats import selectors, services, streaming
from chats.models import Conversation, Message
from chats.serializers import (
    BranchOutput,
    ChatListQuery,
    ConversationAnalyticsOutput,
    ConversationCreatedOutput,
    ConversationCreateInput,
    ConversationDeletedOutput,
    ConversationDetailOutput,
    ConversationExportOutput,
    ConversationImportInput,
    ConversationListItemOutput,
    ConversationListQuery,
    ConversationMessageOutput,
    ConversationOutput,
    ConversationStartInput,
    ConversationUpdateInput,
    ExportQuery,
    MessageEditInput,
    MessageListQuery,
    RegenerateInput,
    SendMessageInput,
    SendMessageOutput,
    SupportChatOutput,
    conversation_detail,
)
from providers.services import ChatCall, chat_stream
from support import selectors as support_selectors
from support import services as support_services

CHAT_TAG = ["chat"]
CHATS_TAG = ["chats"]

LIST_HEADERS = [
    OpenApiParameter("X-Total-Count", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[200],
                     description="Total number of items (the body is one page)."),
    OpenApiParameter("Link", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200],
                     description='`<url>; rel="next"`, `<url>; rel="prev"` when there are more pages.'),
]
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="A retry with the same key returns the first result (no second provider call).")
REPLY_ERRORS = {
    404: OpenApiResponse(description="Conversation or message not found (or not yours)."),
    422: OpenApiResponse(description="Validation error."),
    429: OpenApiResponse(description="The provider is rate limiting."),
    502: OpenApiResponse(description="The provider failed; the user's message is kept."),
    504: OpenApiResponse(description="The provider timed out; the user's message is kept."),
}


# --- helpers -----------------------------------------------------------------------------------


def _valid(serializer_class, data: Any, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _query(serializer_class, request: Request) -> dict:
    return _valid(serializer_class, request.query_params.dict())


def _conversation(request: Request, kwargs: dict) -> Conversation:
    conversation_id = kwargs.get("chat_id") or kwargs.get("conversation_id")
    return selectors.conversation_get(user=request.user, conversation_id=conversation_id)


def _message(request: Request, kwargs: dict) -> tuple[Conversation, Message]:
    conversation = _conversation(request, kwargs)
    message = selectors.message_get(user=request.user, message_id=kwargs["message_id"])
    if message.conversation_id != conversation.id:
        raise AppError("Message not found.", status_code=404)
    return conversation, message


def _page_response(request: Request, items, *, total: int, limit: int, offset: int, serializer_class) -> Response:
    headers = {"X-Total-Count": str(total)}
    links = []
    if offset + limit < total:
        links.append(f'<{_page_url(request, offset + limit, limit)}>; rel="next"')
    if offset > 0:
        links.append(f'<{_page_url(request, max(0, offset - limit), limit)}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    return Response(serializer_class(items, many=True).data, headers=headers)


def _page_url(request: Request, offset: int, limit: int) -> str:
    params = request.query_params.copy()
    params.pop("skip", None)
    params["offset"], params["limit"] = str(offset), str(limit)
    return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


def _options(data: dict) -> streaming.ReplyOptions:
    params = data.get("model_parameters") or {}
    return streaming.ReplyOptions(
        model=data.get("model") or None, provider=data.get("provider") or None,
        temperature=params.get("temperature"), max_tokens=params.get("max_tokens"), top_p=params.get("top_p"),
    )


def _precheck(user, conversation: Conversation, options: streaming.ReplyOptions) -> None:
    """Refuse an impossible model/provider/parameter choice before anything is saved (the
    pipeline checks again; this resolves the model the same way it does)."""
    prefs = getattr(user, "preferences", None) or {}
    chat_stream(ChatCall(
        messages=[], model=options.model or conversation.model or prefs.get("default_model") or None,
        provider=options.provider or conversation.provider or None, temperature=options.temperature,
        max_tokens=options.max_tokens, top_p=options.top_p, endpoint=options.endpoint, fallback=options.fallback,
    ))


def _generate(request: Request, conversation: Conversation, user_message: Message,
              options: streaming.ReplyOptions) -> dict:
    """Run the reply to ``user_message`` to the end; its ``done`` event, or the error envelope."""

    async def run() -> dict:
        reply = await streaming.begin_reply(
            conversation=conversation, user_message=user_message, options=options, user=request.user,
            # A chatbot key's overrides are already in ``options`` (applied before the precheck):
            # not passing the key keeps begin_reply from resolving and SSRF-checking them again.
            api_key=None if support_selectors.is_chatbot_key(request.auth) else request.auth,
            request_id=getattr(request, "request_id", ""),
        )
        return await reply.wait()

    final = async_to_sync(run)()
    if final["type"] == "error":
        raise AppError(final["message"], status_code=final["status_code"], code=final["code"], details={
            "conversation_id": conversation.id, "user_message_id": user_message.id,
            "message_id": final.get("message_id"),
        })
    return final


def _reply_payload(final: dict, started: float) -> dict:
    usage = final["usage"]
    return SendMessageOutput({
        "message": final["content"], "response": final["content"],
        "conversation_id": final["conversation_id"], "message_id": final["message_id"],
        "user_message_id": final["user_message_id"], "parent_message_id": final["parent_message_id"],
        "model_used": final["model"], "provider_used": final["provider"],
        "tokens_used": usage["total_tokens"], "usage": usage,
        "processing_time": round(time.perf_counter() - started, 3),
        "timestamp": datetime.fromisoformat(final["timestamp"]),
        "finish_reason": final["finish_reason"], "status": final["status"],
    }).data


def _idempotent(request: Request, run: Callable[[], tuple[Any, int]]) -> Response:
    """Honour ``Idempotency-Key``: a stored result is replayed; only successes are stored."""
    idem = idempotency.idempotency_for(request, request.user, request.data)
    stored = idempotency.begin(idem)
    if stored is not None:
        return Response(stored["body"], status=stored["status"], headers={"Idempotent-Replayed": "true"})
    try:
        body, status_code = run()
    except BaseException:
        # Not stored (finish() keeps only < 500): the lock is released and a retry runs again,
        # so a provider failure (429/502/504) can be retried with the same key.
        idempotency.finish(idem, status=500)
        raise
    idempotency.finish(idem, status=status_code, body=body)
    return Response(body, status=status_code)


def _branch_payload(conversation: Conversation, user_message: Message, final: dict) -> dict:
    assistant = Message.objects.get(id=final["message_id"])
    user_message.refresh_from_db()
    return BranchOutput({
        "conversation_id": conversation.id, "user_message": user_message, "assistant_message": assistant,
        "message": assistant.content, "response": assistant.content,
    }).data


# --- seed 000: chat/message, chat/conversation ---------------------------------------------------


class SendMessageApi(APIView):
    chatbot_key_allowed = True  # a chatbot's key chats as that chatbot (support.authentication)
    @extend_schema(
        tags=CHAT_TAG, request=SendMessageInput, responses={200: SendMessageOutput, **REPLY_ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        description="Send a message and get the assistant's reply (seed 000). `conversation_id`: one of "
                    "yours, or a new id to start that conversation, or omitted for a new one. "
                    "`user_id` is ignored: the caller is the user.")
    def post(self, request: Request) -> Response:
        data = _valid(SendMessageInput, request.data)
        started = time.perf_counter()
        return _idempotent(request, lambda: (self.reply(request, data, started), status.HTTP_200_OK))

    @staticmethod
    def reply(request: Request, data: dict, started: float, *, system: str | None = None) -> dict:
        options = _options(data)
        options.system = system or options.system
        overrides = support_selectors.chat_overrides_for(request.auth)
        if overrides is not None:
            options = streaming.with_chatbot(options, overrides)
        with transaction.atomic():
            conversation = services.conversation_get_or_create(
                user=request.user, conversation_id=data.get("conversation_id") or None)
            _precheck(request.user, conversation, options)
            user_message = services.message_add_user(conversation=conversation, content=data["message"])
        final = _generate(request, conversation, user_message, options)
        return _reply_payload(final, started)


class SupportChatApi(APIView):
    chatbot_key_allowed = True
    @extend_schema(
        tags=CHAT_TAG, request=SendMessageInput, responses={200: SupportChatOutput, **REPLY_ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        description="Seed 003's chat: `message` and an optional `conversation_id` (a new conversation "
                    "when omitted). Returns `response`, `conversation_id`, `tokens_used` and "
                    "`response_time` (ms), plus the fields of `POST /chat/message`.")
    def post(self, request: Request) -> Response:
        data = _valid(SendMessageInput, request.data)
        started = time.perf_counter()

        def run() -> tuple[dict, int]:
            # The support assistant answers from the FAQs most relevant to the question; when the
            # user asks for a person, or no FAQ grounds an answer, a customer log is opened.
            grounding = support_selectors.support_grounding(data["message"])
            payload = SendMessageApi.reply(request, data, started, system=grounding.system_prompt)
            payload.update(
                response_time=int(round(payload["processing_time"] * 1000)), grounded=grounding.grounded,
                faqs=[{"id": faq.id, "question": faq.question, "score": round(score, 3)}
                      for faq, score in grounding.faqs],
                escalated=False, customer_log_id=None,
            )
            if grounding.should_escalate:
                log = support_services.customer_log_open_from_chat(
                    user=request.user, question=data["message"], conversation_id=payload["conversation_id"])
                notice = support_services.escalation_notice(log)
                payload.update(escalated=True, customer_log_id=log.id,
                               response=f"{payload['response']}\n\n{notice}".strip(),
                               message=f"{payload['message']}\n\n{notice}".strip())
            return payload, status.HTTP_200_OK

        return _idempotent(request, run)


class ConversationStartApi(APIView):
    @extend_schema(
        tags=CHAT_TAG, request=ConversationStartInput, responses={201: ConversationCreatedOutput, **REPLY_ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        description="Start a conversation (seed 000). With `initial_message`, the first turn runs too "
                    "and `reply` holds the answer; if the provider then fails, the error envelope "
                    "names the created `conversation_id` in `details`.")
    def post(self, request: Request) -> Response:
        data = dict(_valid(ConversationStartInput, request.data))
        initial = data.pop("initial_message", "") or ""
        started = time.perf_counter()

        def run() -> tuple[dict, int]:
            options = _options(data)
            fields = {k: v for k, v in data.items() if k != "model_parameters"}
            with transaction.atomic():
                conversation = services.conversation_create(user=request.user, **fields)
                if not initial.strip():
                    return {**conversation_detail(conversation, []), "reply": None}, status.HTTP_201_CREATED
                _precheck(request.user, conversation, options)
                user_message = services.message_add_user(conversation=conversation, content=initial)
            final = _generate(request, conversation, user_message, options)
            conversation.refresh_from_db()
            return ({**conversation_detail(conversation, selectors.thread(conversation)),
                     "reply": _reply_payload(final, started)}, status.HTTP_201_CREATED)

        return _idempotent(request, run)


class ConversationReadApi(APIView):
    @extend_schema(tags=CHAT_TAG, responses={200: ConversationDetailOutput},
                   description="The conversation and the messages of its active branch.")
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = _conversation(request, {"conversation_id": conversation_id})
        return Response(conversation_detail(conversation, selectors.thread(conversation)))


class ConversationDetailApi(ConversationReadApi):
    @extend_schema(tags=CHAT_TAG, request=ConversationUpdateInput, responses={200: ConversationOutput},
                   description="Update title, settings, system_prompt, model, provider, metadata, is_archived.")
    def put(self, request: Request, conversation_id: str) -> Response:
        conversation = _conversation(request, {"conversation_id": conversation_id})
        data = _valid(ConversationUpdateInput, request.data)
        conversation = services.conversation_update(conversation=conversation, **data)
        return Response(ConversationOutput(conversation).data)

    patch = put

    @extend_schema(tags=CHAT_TAG, request=None, responses={200: ConversationDeletedOutput})
    def delete(self, request: Request, conversation_id: str) -> Response:
        conversation = _conversation(request, {"conversation_id": conversation_id})
        services.conversation_delete(conversation=conversation)
        return Response({"message": "Conversation deleted", "conversation_id": conversation_id})


class ConversationListApi(APIView):
    @extend_schema(
        tags=CHAT_TAG, parameters=[ConversationListQuery, *LIST_HEADERS],
        responses={200: ConversationListItemOutput(many=True)},
        description="Your conversations, most recently updated first: a bare list (seed 003's shape, "
                    "with seed 000's fields too); the total is in `X-Total-Count`. `limit` 1-100 "
                    "(default 20; more is a 422), `offset` (or seed 003's `skip`).")
    def get(self, request: Request) -> Response:
        query = _query(ConversationListQuery, request)
        offset = query["offset"] if "offset" in request.query_params else query.get("skip", 0)
        conversations = selectors.conversation_list(user=request.user,
                                                    include_archived=query["include_archived"])
        limit = query["limit"]
        return _page_response(request, conversations[offset:offset + limit], total=conversations.count(),
                              limit=limit, offset=offset, serializer_class=ConversationListItemOutput)


class AnalyticsApi(APIView):
    @extend_schema(tags=["users"], responses={200: ConversationAnalyticsOutput})
    def get(self, request: Request) -> Response:
        return Response(ConversationAnalyticsOutput(selectors.conversation_analytics(user=request.user)).data)


# --- seed 004: chats ----------------------------------------------------------------------------


class ChatListApi(APIView):
    @extend_schema(tags=CHATS_TAG, parameters=[ChatListQuery, *LIST_HEADERS],
                   responses={200: ConversationOutput(many=True)},
                   description="Your chats, most recently updated first; archived ones only with "
                               "`include_archived=true`. `limit` 1-100 (default 50).")
    def get(self, request: Request) -> Response:
        query = _query(ChatListQuery, request)
        chats = selectors.conversation_list(user=request.user, include_archived=query["include_archived"])
        limit, offset = query["limit"], query["offset"]
        return _page_response(request, chats[offset:offset + limit], total=chats.count(), limit=limit,
                              offset=offset, serializer_class=ConversationOutput)

    @extend_schema(tags=CHATS_TAG, request=ConversationCreateInput, responses={201: ConversationOutput})
    def post(self, request: Request) -> Response:
        data = _valid(ConversationCreateInput, request.data)
        conversation = services.conversation_create(user=request.user, **data)
        return Response(ConversationOutput(conversation).data, status=status.HTTP_201_CREATED)


class ChatDetailApi(APIView):
    @extend_schema(tags=CHATS_TAG, responses={200: ConversationOutput})
    def get(self, request: Request, chat_id: str) -> Response:
        return Response(ConversationOutput(_conversation(request, {"chat_id": chat_id})).data)

    @extend_schema(tags=CHATS_TAG, request=ConversationUpdateInput, responses={200: ConversationOutput},
                   description="Partial update: title, is_archived, model, provider, system_prompt, metadata, settings.")
    def patch(self, request: Request, chat_id: str) -> Response:
        conversation = _conversation(request, {"chat_id": chat_id})
        data = _valid(ConversationUpdateInput, request.data)
        return Response(ConversationOutput(services.conversation_update(conversation=conversation, **data)).data)

    put = patch

    @extend_schema(tags=CHATS_TAG, request=None, responses={204: None})
    def delete(self, request: Request, chat_id: str) -> Response:
        services.conversation_delete(conversation=_conversation(request, {"chat_id": chat_id}))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageListApi(APIView):
    @extend_schema(tags=CHATS_TAG, parameters=[MessageListQuery, *LIST_HEADERS],
                   responses={200: ConversationMessageOutput(many=True)},
                   description="The messages of the active branch, oldest first (`all_branches=true`: every "
                               "message, with `parent_message_id` to rebuild the tree). `limit` 1-100.")
    def get(self, request: Request, **kwargs: str) -> Response:
        conversation = _conversation(request, kwargs)
        query = _query(MessageListQuery, request)
        limit, offset = query["limit"], query["offset"]
        if query["all_branches"]:
            messages = conversation.messages.order_by("created_at", "id")
            total = messages.count()
        else:
            messages = selectors.thread(conversation)
            total = len(messages)
        return _page_response(request, messages[offset:offset + limit], total=total, limit=limit,
                              offset=offset, serializer_class=ConversationMessageOutput)


class MessageDetailApi(APIView):
    @extend_schema(tags=CHATS_TAG, responses={200: ConversationMessageOutput})
    def get(self, request: Request, **kwargs: str) -> Response:
        _, message = _message(request, kwargs)
        return Response(ConversationMessageOutput(message).data)

    @extend_schema(tags=CHATS_TAG, request=MessageEditInput, responses={200: BranchOutput, **REPLY_ERRORS},
                   parameters=[IDEMPOTENCY_HEADER],
                   description="Edit a user message: a new sibling message (same parent) with this content "
                               "and a new reply to it; the conversation follows the new branch. "
                               "The original messages stay (see `all_branches=true`).")
    def put(self, request: Request, **kwargs: str) -> Response:
        conversation, message = _message(request, kwargs)
        data = _valid(MessageEditInput, request.data)

        def run() -> tuple[dict, int]:
            options = _options(data)
            with transaction.atomic():
                _precheck(request.user, conversation, options)
                edited = services.message_edit(message=message, content=data["content"])
            final = _generate(request, conversation, edited, options)
            return _branch_payload(conversation, edited, final), status.HTTP_200_OK

        return _idempotent(request, run)


class RegenerateApi(APIView):
    @extend_schema(tags=CHATS_TAG, request=RegenerateInput, responses={200: BranchOutput, **REPLY_ERRORS},
                   parameters=[IDEMPOTENCY_HEADER],
                   description="A new reply to the user message this assistant message answered (or to the "
                               "given user message): a sibling of the earlier replies; the conversation "
                               "follows it. Optional `model`, `provider`, `model_parameters`.")
    def post(self, request: Request, **kwargs: str) -> Response:
        conversation, message = _message(request, kwargs)
        data = _valid(RegenerateInput, request.data)
        target = services.regenerate_target(message=message)

        def run() -> tuple[dict, int]:
            options = _options(data)
            _precheck(request.user, conversation, options)
            final = _generate(request, conversation, target, options)
            return _branch_payload(conversation, target, final), status.HTTP_200_OK

        return _idempotent(request, run)


class ExportApi(APIView):
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request, force=False):
        # ``?format=`` is this route's own parameter, not DRF's renderer override: JSON and errors
        # are rendered as JSON, the Markdown export is a plain HttpResponse.
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(tags=CHATS_TAG, parameters=[ExportQuery],
                   responses={(200, "application/json"): ConversationExportOutput,
                              (200, "text/markdown"): OpenApiTypes.STR},
                   description="`format=json` (every branch, importable with POST /chats/import) or "
                               "`format=markdown` (the active branch, as a download).")
    def get(self, request: Request, chat_id: str) -> Response | HttpResponse:
        conversation = _conversation(request, {"chat_id": chat_id})
        query = _query(ExportQuery, request)
        if query["format"] == "markdown":
            text = services.conversation_export_markdown(conversation=conversation)
            response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
            filename = f"{slugify(conversation.title)[:60] or conversation.id}.md"
            response["Content-Disposition"] = f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
            return response
        return Response(services.conversation_export(conversation=conversation))


class ImportApi(APIView):
    @extend_schema(tags=CHATS_TAG, request=ConversationImportInput, responses={201: ConversationDetailOutput},
                   description="Import a JSON export as a new conversation (new ids; branches kept).")
    def post(self, request: Request) -> Response:
        data = _valid(ConversationImportInput, request.data)
        conversation = services.conversation_import(user=request.user, data=data)
        return Response(conversation_detail(conversation, selectors.thread(conversation)),
                        status=status.HTTP_201_CREATED)
