"""The chatbots a team shares (``GET /teams/{team_id}/chatbots``); members only, like every team route."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.team_selectors import team_membership_or_404
from chatplatform.api.pagination import OffsetPageInput, offset_page
from support import selectors
from support.apis import PAGE_PARAMS
from support.serializers import ChatbotOutput


class TeamChatbotListApi(APIView):
    @extend_schema(tags=["teams"], parameters=PAGE_PARAMS, responses={200: ChatbotOutput(many=True)},
                   description="Chatbots shared with the team (share one with `team_id` on `POST`/`PATCH "
                               "/chatbots`). Members see them; the team's admins and owners manage them.")
    def get(self, request: Request, team_id: str) -> Response:
        membership = team_membership_or_404(user=request.user, team_id=team_id)
        page = OffsetPageInput(data=request.query_params)
        page.is_valid(raise_exception=True)
        items, total = offset_page(selectors.team_chatbot_list(team_id=membership.team_id), page.validated_data)
        return Response(ChatbotOutput(items, many=True).data, headers={"X-Total-Count": str(total)})
