"""``GET /api/v1/chats/search`` (seed 004 style) and ``GET /api/v1/chat/conversations/search`` (seed
000's conversations): full-text search over the caller's own messages, highlighted snippets, paged
as the other lists (a bare list, the total in ``X-Total-Count``, ``Link`` next/prev)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatplatform.api import fields
from chatplatform.api.pagination import MAX_OFFSET
from chats.apis import LIST_HEADERS, _page_response, _query
from chats.models import Message
from chats.schema import CHAT_TAG, CHATS_TAG
from chats.search import message_search
from knowledge.fulltext import MAX_QUERY_CHARS


class MessageSearchQuery(fields.StrictInput):
    unknown_message = "Unknown query parameter."
    q = serializers.CharField(max_length=MAX_QUERY_CHARS, help_text="Words to find (all must match).")
    role = serializers.ChoiceField(choices=[Message.Role.USER, Message.Role.ASSISTANT], required=False)
    include_archived = serializers.BooleanField(default=True)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)


class MessageSearchHitOutput(serializers.Serializer):
    id = serializers.CharField(help_text="The message's id.")
    message_id = serializers.CharField(source="id")
    chat_id = serializers.CharField(source="conversation_id")
    conversation_id = serializers.CharField()
    chat_title = serializers.CharField(source="conversation.title")
    role = serializers.CharField()
    snippet = serializers.CharField(source="fts_snippet",
                                    help_text="The matching passage, matched words between <mark> and </mark> "
                                              "(the message's own text, not HTML-escaped).")
    score = serializers.FloatField(source="fts_rank", help_text="Relevance (higher is better).")
    created_at = serializers.DateTimeField()


class _MessageSearchApi(APIView):
    def get(self, request: Request) -> Response:
        query = _query(MessageSearchQuery, request)
        hits = message_search(user=request.user, query=query["q"], role=query.get("role"),
                              include_archived=query["include_archived"])
        limit, offset = query["limit"], query["offset"]
        return _page_response(request, hits[offset:offset + limit], total=hits.count(), limit=limit,
                              offset=offset, serializer_class=MessageSearchHitOutput)


_DESCRIPTION = ("Full-text search over your own messages (every word must match), best first, with a "
                "highlighted snippet. A bare list; the total is in `X-Total-Count`. `limit` 1-100 (default 20).")


class ChatSearchApi(_MessageSearchApi):
    @extend_schema(tags=CHATS_TAG, parameters=[MessageSearchQuery, *LIST_HEADERS],
                   responses={200: MessageSearchHitOutput(many=True)}, description=_DESCRIPTION)
    def get(self, request: Request) -> Response:
        return super().get(request)


class ConversationSearchApi(_MessageSearchApi):
    @extend_schema(tags=CHAT_TAG, parameters=[MessageSearchQuery, *LIST_HEADERS],
                   responses={200: MessageSearchHitOutput(many=True)}, description=_DESCRIPTION)
    def get(self, request: Request) -> Response:
        return super().get(request)
