"""Support routes: FAQs and customer logs (seed 003), chatbots, keys, users and db-status (seed 002).
Thin: validate, call a selector or service, shape the output. Lists are bare JSON arrays (as the
seeds show them) with the total in ``X-Total-Count``."""

from __future__ import annotations

import time
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import AdminAuthMixin
from accounts.serializers import UserOutput
from chatplatform.api.exceptions import AppError
from chatplatform.api.permissions import AdminForWrites, IsAdmin
from chats.inputs import GenerationInput, SendMessageInput
from chats.schema import IDEMPOTENCY_HEADER, REPLY_ERRORS
from chats.serializers import SupportChatOutput
from chats.transports import formats, replay, rest
from chats.turn_apis import caller_of
from chats.turns import Turn
from support import selectors, services
from support.authentication import ChatbotKeyAllowed
from support.models import Chatbot
from support.serializers import (
    ChatbotInput,
    ChatbotKeyCreatedOutput,
    ChatbotKeyCreateInput,
    ChatbotKeyOutput,
    ChatbotOutput,
    DbStatusOutput,
    FAQInput,
    FAQListInput,
    FAQOutput,
    FAQSearchInput,
    FAQSearchOutput,
    HoursInput,
    LogCreateInput,
    LogFilterInput,
    LogOutput,
    LogSummaryOutput,
    LogUpdateInput,
    PageInput,
    TrendingInput,
    TrendingOutput,
)

FAQ_TAGS = ["faqs"]
LOG_TAGS = ["customer-logs"]
BOT_TAGS = ["chatbots"]
USER_TAGS = ["users"]


def _body(serializer_class, request: Request, *, partial: bool = False) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _query(serializer_class, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return {k: v for k, v in serializer.validated_data.items() if v != ""}


def _page(qs: QuerySet, params: dict[str, Any]) -> tuple[list, int]:
    total = qs.count()
    skip, limit = params.get("skip", 0), params.get("limit", 100)
    return list(qs[skip:skip + limit]), total


def _listing(data: list, total: int) -> Response:
    return Response(data, headers={"X-Total-Count": str(total)})


def _is_staff(request: Request) -> bool:
    return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class ReadOnly(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS


PUBLIC_READS_ADMIN_WRITES = [ReadOnly | AdminForWrites]
PAGE_PARAMS = [
    OpenApiParameter("skip", int, description="Items to skip (default 0)."),
    OpenApiParameter("limit", int, description="Items to return (default 100, at most 1000)."),
]


# --- FAQs (seed 003) -----------------------------------------------------------------------------------


class FAQListApi(ChatbotKeyAllowed, AdminAuthMixin, APIView):
    permission_classes = PUBLIC_READS_ADMIN_WRITES

    @extend_schema(tags=FAQ_TAGS, parameters=[FAQListInput], responses={200: FAQOutput(many=True)},
                   description="Published FAQs (public), optionally by `category`; viewing the list counts no views.")
    def get(self, request: Request) -> Response:
        params = _query(FAQListInput, request)
        qs = selectors.faq_list(category=params.get("category"),
                                include_unpublished=params["include_unpublished"] and _is_staff(request))
        items, total = _page(qs, params)
        return _listing(FAQOutput(items, many=True).data, total)

    @extend_schema(tags=FAQ_TAGS, request=FAQInput, responses={201: FAQOutput},
                   description="Staff (or the admin secret) only. The FAQ's embedding is computed here.")
    def post(self, request: Request) -> Response:
        faq = services.faq_create(**_body(FAQInput, request))
        return Response(FAQOutput(faq).data, status=status.HTTP_201_CREATED)


class FAQSearchApi(ChatbotKeyAllowed, AdminAuthMixin, APIView):
    permission_classes = PUBLIC_READS_ADMIN_WRITES

    @extend_schema(tags=FAQ_TAGS, parameters=[FAQSearchInput], responses={200: FAQSearchOutput(many=True)},
                   description="Semantic search (all-MiniLM-L6-v2 cosine similarity), best match first, "
                               "each with its `score`.")
    def get(self, request: Request) -> Response:
        params = _query(FAQSearchInput, request)
        ranked = selectors.faq_search(query=params["q"], limit=params["limit"], category=params.get("category"),
                                      min_score=params["min_score"])
        data = [{**FAQOutput(faq).data, "score": score} for faq, score in ranked]
        return _listing(data, len(data))


class FAQDetailApi(ChatbotKeyAllowed, AdminAuthMixin, APIView):
    permission_classes = PUBLIC_READS_ADMIN_WRITES

    def _faq(self, request: Request, faq_id: str):
        faq = selectors.faq_get(faq_id=faq_id, include_unpublished=True)
        if faq is None:
            raise AppError("FAQ not found.", status_code=404)
        return faq

    @extend_schema(tags=FAQ_TAGS, responses={200: FAQOutput},
                   description="One FAQ; counts a view. Unpublished FAQs are visible to staff only.")
    def get(self, request: Request, faq_id: str) -> Response:
        faq = services.faq_record_view(faq_id=faq_id, include_unpublished=_is_staff(request))
        return Response(FAQOutput(faq).data)

    @extend_schema(tags=FAQ_TAGS, request=FAQInput, responses={200: FAQOutput},
                   description="Staff only. PUT replaces the fields, PATCH changes those sent.")
    def put(self, request: Request, faq_id: str) -> Response:
        faq = self._faq(request, faq_id)
        data = _body(FAQInput, request, partial=request.method == "PATCH")
        return Response(FAQOutput(services.faq_update(faq=faq, **data)).data)

    patch = put

    @extend_schema(tags=FAQ_TAGS, responses={204: None}, description="Staff only.")
    def delete(self, request: Request, faq_id: str) -> Response:
        services.faq_delete(faq=self._faq(request, faq_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- customer logs (seed 003) ---------------------------------------------------------------------------


class LogListApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=LOG_TAGS, parameters=[LogFilterInput], responses={200: LogOutput(many=True)},
                   description="Logs created in the last `hours` (default 24), newest first; staff see "
                               "everyone's, users their own. Invalid `status`/`priority` -> 422.")
    def get(self, request: Request) -> Response:
        params = _query(LogFilterInput, request)
        qs = selectors.customer_log_list(actor=request.user, status=params.get("status"),
                                         category=params.get("category"), priority=params.get("priority"),
                                         hours=params["hours"])
        items, total = _page(qs, params)
        return _listing(LogOutput(items, many=True).data, total)

    @extend_schema(tags=LOG_TAGS, request=LogCreateInput, responses={201: LogOutput})
    def post(self, request: Request) -> Response:
        log = services.customer_log_create(user=request.user, **_body(LogCreateInput, request))
        return Response(LogOutput(log).data, status=status.HTTP_201_CREATED)


class LogDetailApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    def _log(self, request: Request, log_id: str):
        log = selectors.customer_log_get(actor=request.user, log_id=log_id)
        if log is None:
            raise AppError("Customer log not found.", status_code=404)
        return log

    @extend_schema(tags=LOG_TAGS, responses={200: LogOutput})
    def get(self, request: Request, log_id: str) -> Response:
        return Response(LogOutput(self._log(request, log_id)).data)

    @extend_schema(tags=LOG_TAGS, request=LogUpdateInput, responses={200: LogOutput},
                   description="Partial update. Owners edit title, description, category, priority and "
                               "type, and may close; other status changes need staff (403).")
    def put(self, request: Request, log_id: str) -> Response:
        log = self._log(request, log_id)
        data = _body(LogUpdateInput, request)
        return Response(LogOutput(services.customer_log_update(log=log, actor=request.user, **data)).data)

    patch = put


class LogSummaryApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=LOG_TAGS, parameters=[HoursInput], responses={200: LogSummaryOutput},
                   description="Counts by status, category and priority over the visible logs.")
    def get(self, request: Request) -> Response:
        params = _query(HoursInput, request)
        return Response(selectors.customer_log_summary(actor=request.user, hours=params["hours"]))


class LogTrendingApi(AdminAuthMixin, APIView):
    permission_classes = [IsAdmin]

    @extend_schema(tags=LOG_TAGS, parameters=[TrendingInput], responses={200: TrendingOutput(many=True)},
                   description="Admin only. The most frequent terms in log titles and descriptions "
                               "(stop-words removed, counted once per log).")
    def get(self, request: Request) -> Response:
        params = _query(TrendingInput, request)
        return Response(selectors.customer_log_trending(hours=params["hours"], limit=params["limit"]))


# --- seed 002: database status, users, chatbots, keys ------------------------------------------------------


class DbStatusApi(AdminAuthMixin, APIView):
    permission_classes = [IsAdmin]

    @extend_schema(tags=BOT_TAGS, responses={200: DbStatusOutput, 503: DbStatusOutput},
                   description="Admin only. Database connection status and record counts per table.")
    def get(self, request: Request) -> Response:
        report = selectors.db_status()
        return Response(report, status=200 if report["status"] == "connected" else 503)


class UserListApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=USER_TAGS, parameters=PAGE_PARAMS, responses={200: UserOutput(many=True)},
                   description="Admins see every user; anyone else a list of one: themself.")
    def get(self, request: Request) -> Response:
        items, total = _page(selectors.users_visible_to(request.user), _query(PageInput, request))
        return _listing(UserOutput(items, many=True).data, total)


def _user_or_404(request: Request, user_id: str):
    user = selectors.user_get(actor=request.user, user_id=user_id)
    if user is None:
        raise AppError("User not found.", status_code=404)
    return user


class UserDetailApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=USER_TAGS, responses={200: UserOutput}, description="Admins, or the user themself.")
    def get(self, request: Request, user_id: str) -> Response:
        return Response(UserOutput(_user_or_404(request, user_id)).data)


class UserChatbotsApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=BOT_TAGS, parameters=PAGE_PARAMS, responses={200: ChatbotOutput(many=True)},
                   description="Admins, or the user themself.")
    def get(self, request: Request, user_id: str) -> Response:
        user = _user_or_404(request, user_id)
        items, total = _page(selectors.chatbot_list(actor=request.user, owner_id=user.pk),
                             _query(PageInput, request))
        return _listing(ChatbotOutput(items, many=True).data, total)


def _chatbot_or_404(request: Request, chatbot_id: str, *, manage: bool = False) -> Chatbot:
    """A chatbot the caller sees (404 otherwise); ``manage``: one they may change (403 for a team
    member without the team's admin role)."""
    chatbot = selectors.chatbot_get(actor=request.user, chatbot_id=chatbot_id)
    if chatbot is None:
        raise AppError("Chatbot not found.", status_code=404)
    if manage and not selectors.chatbot_manageable(actor=request.user, chatbot=chatbot):
        raise AppError("Only the chatbot's owner or its team's admins may change it.", status_code=403,
                       code="TEAM_ROLE_REQUIRED")
    return chatbot


class ChatbotListApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=BOT_TAGS, parameters=PAGE_PARAMS, responses={200: ChatbotOutput(many=True)},
                   description="Admins see every chatbot, users their own and those shared with their teams.")
    def get(self, request: Request) -> Response:
        items, total = _page(selectors.chatbot_list(actor=request.user), _query(PageInput, request))
        return _listing(ChatbotOutput(items, many=True).data, total)

    @extend_schema(tags=BOT_TAGS, request=ChatbotInput, responses={201: ChatbotOutput},
                   description="The caller owns the chatbot (admins may pass `owner_id`). `llm_endpoint_url` "
                               "must be a public http(s) URL (422 otherwise) unless ALLOW_PRIVATE_OUTBOUND is set.")
    def post(self, request: Request) -> Response:
        data = _body(ChatbotInput, request)
        owner_id = data.pop("owner_id", None)
        owner = request.user
        if owner_id and owner_id != getattr(owner, "pk", None):
            if not _is_staff(request):
                raise AppError("Only admins may create chatbots for other users.", status_code=403)
            owner = selectors.user_list().filter(pk=owner_id).first()
            if owner is None:
                raise AppError("Unknown user.", status_code=422, details={"owner_id": ["No such user."]})
        team = services.chatbot_team_for(actor=request.user, team_id=data.pop("team_id", None))
        chatbot = services.chatbot_create(owner=owner, team=team, **data)
        return Response(ChatbotOutput(chatbot).data, status=status.HTTP_201_CREATED)


class ChatbotDetailApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=BOT_TAGS, responses={200: ChatbotOutput})
    def get(self, request: Request, chatbot_id: str) -> Response:
        return Response(ChatbotOutput(_chatbot_or_404(request, chatbot_id)).data)

    @extend_schema(tags=BOT_TAGS, request=ChatbotInput, responses={200: ChatbotOutput},
                   description="PUT replaces the fields, PATCH changes those sent (`team_id` only when sent). "
                               "The owner, the team's admins and owners, or a staff admin.")
    def put(self, request: Request, chatbot_id: str) -> Response:
        chatbot = _chatbot_or_404(request, chatbot_id, manage=True)
        data = _body(ChatbotInput, request, partial=request.method == "PATCH")
        data.pop("owner_id", None)
        if "team_id" in data:
            data["team"] = services.chatbot_team_for(actor=request.user, team_id=data.pop("team_id"))
        return Response(ChatbotOutput(services.chatbot_update(chatbot=chatbot, **data)).data)

    patch = put

    @extend_schema(tags=BOT_TAGS, responses={204: None}, description="Deletes the chatbot and its keys.")
    def delete(self, request: Request, chatbot_id: str) -> Response:
        services.chatbot_delete(chatbot=_chatbot_or_404(request, chatbot_id, manage=True))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChatbotKeyListApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=BOT_TAGS, responses={200: ChatbotKeyOutput(many=True)},
                   description="The chatbot's keys, masked (the hash is never returned).")
    def get(self, request: Request, chatbot_id: str) -> Response:
        keys = list(selectors.chatbot_api_key_list(chatbot=_chatbot_or_404(request, chatbot_id))[:1000])
        return _listing(ChatbotKeyOutput(keys, many=True).data, len(keys))

    @extend_schema(tags=BOT_TAGS, request=ChatbotKeyCreateInput, responses={201: ChatbotKeyCreatedOutput},
                   description="A new key `cbk_…`, shown once; only its hash is stored.")
    def post(self, request: Request, chatbot_id: str) -> Response:
        chatbot = _chatbot_or_404(request, chatbot_id, manage=True)
        key, raw = services.chatbot_api_key_create(chatbot=chatbot, **_body(ChatbotKeyCreateInput, request))
        key.api_key = raw
        key.message = "Store this key now: it will not be shown again."
        return Response(ChatbotKeyCreatedOutput(key).data, status=status.HTTP_201_CREATED)


class ChatbotKeyRevokeApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=BOT_TAGS, responses={200: ChatbotKeyOutput},
                   description="Revokes the key (it stops authenticating at once); the row is kept.")
    def delete(self, request: Request, chatbot_id: str, key_id: str) -> Response:
        key = services.chatbot_api_key_revoke(chatbot=_chatbot_or_404(request, chatbot_id, manage=True),
                                              key_id=key_id)
        return Response(ChatbotKeyOutput(key).data)


# --- seed 003's support chat ----------------------------------------------------------------------------


class SupportChatApi(APIView):
    chatbot_key_allowed = True

    @extend_schema(
        tags=["chat"], request=SendMessageInput, responses={200: SupportChatOutput, **REPLY_ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        description="Seed 003's chat: `message` and an optional `conversation_id` (a new conversation "
                    "when omitted). The assistant answers from the most relevant FAQs; asking for a person, "
                    "or a real question no FAQ grounds, opens a customer log. Returns `response`, "
                    "`conversation_id`, `tokens_used` and `response_time` (ms), plus the fields of "
                    "`POST /chat/message`.")
    def post(self, request: Request) -> Response:
        data = _body(SendMessageInput, request)
        started = time.perf_counter()

        def run() -> tuple[dict, int]:
            grounding = selectors.support_grounding(data["message"])
            turn = Turn(text=data["message"], conversation_id=data.get("conversation_id") or None, create=True,
                        system=grounding.system_prompt, **GenerationInput.choice(data))
            payload = rest.answer(caller_of(request), turn, lambda final: formats.message_body(final, started))
            payload.update(
                response_time=int(round(payload["processing_time"] * 1000)), grounded=grounding.grounded,
                faqs=[{"id": faq.id, "question": faq.question, "score": round(score, 3)}
                      for faq, score in grounding.faqs],
                escalated=False, customer_log_id=None,
            )
            if grounding.should_escalate:
                log = services.customer_log_open_from_chat(
                    user=request.user, question=data["message"], conversation_id=payload["conversation_id"])
                notice = services.escalation_notice(log)
                payload.update(escalated=True, customer_log_id=log.id,
                               response=f"{payload['response']}\n\n{notice}".strip(),
                               message=f"{payload['message']}\n\n{notice}".strip())
            return payload, status.HTTP_200_OK

        return replay.idempotent_view(request, run)
