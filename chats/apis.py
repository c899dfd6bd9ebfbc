"""Conversation routes (seeds 000, 003, 004): thin DRF views over ``chats.services``/``selectors``.

Reading, listing, updating, deleting, exporting and importing conversations and their messages;
the routes that start a turn are in :mod:`chats.turn_apis`. Another user's conversation or
message is a 404 on every route. Lists are bare JSON arrays (as the seeds show them) with the
total in ``X-Total-Count`` and ``Link`` next/prev headers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.http import HttpResponse
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chats import selectors, services
from chats.models import Conversation
from chats.schema import CHAT_TAG, CHATS_TAG
from chats.serializers import (
    ChatListQuery,
    ConversationAnalyticsOutput,
    ConversationCreateInput,
    ConversationDeletedOutput,
    ConversationDetailOutput,
    ConversationExportOutput,
    ConversationImportInput,
    ConversationListItemOutput,
    ConversationListQuery,
    ConversationMessageOutput,
    ConversationOutput,
    ConversationUpdateInput,
    ExportQuery,
    MessageListQuery,
    conversation_detail,
)

LIST_HEADERS = [
    OpenApiParameter("X-Total-Count", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[200],
                     description="Total number of items (the body is one page)."),
    OpenApiParameter("Link", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200],
                     description='`<url>; rel="next"`, `<url>; rel="prev"` when there are more pages.'),
]


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


# --- seeds 000 and 003: conversations -----------------------------------------------------------


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
