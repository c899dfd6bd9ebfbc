"""Team routes: teams, members, invitations. Thin: the access rule is
``team_selectors.team_membership_or_404`` (non-members get 404), the role rules are in
``team_services``. Lists are bare JSON arrays with ``X-Total-Count`` and ``skip``/``limit``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import team_selectors as selectors
from accounts import team_services as services
from accounts.models import TeamMembership
from accounts.team_serializers import (
    InvitationCreateInput,
    InvitationOutput,
    MemberOutput,
    MemberRoleInput,
    TeamCreateInput,
    TeamOutput,
    TeamUpdateInput,
)
from chatplatform.api.exceptions import AppError
from chatplatform.api.pagination import OffsetPageInput, offset_page

TAGS = ["teams"]
PAGE_PARAMS = [
    OpenApiParameter("skip", int, description="Items to skip (default 0)."),
    OpenApiParameter("limit", int, description="Items to return (default 100, at most 1000)."),
]


def _body(serializer_class, request: Request, *, partial: bool = False) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _listing(request: Request, qs, output) -> Response:
    page = OffsetPageInput(data=request.query_params)
    page.is_valid(raise_exception=True)
    items, total = offset_page(qs, page.validated_data)
    return Response(output(items, many=True).data, headers={"X-Total-Count": str(total)})


def _team_view(membership: TeamMembership) -> dict:
    membership.member_count = selectors.team_member_count(membership.team)
    return TeamOutput(membership).data


class TeamListApi(APIView):
    @extend_schema(tags=TAGS, parameters=PAGE_PARAMS, responses={200: TeamOutput(many=True)},
                   description="The teams you belong to, with your role in each.")
    def get(self, request: Request) -> Response:
        return _listing(request, selectors.team_list(user=request.user), TeamOutput)

    @extend_schema(tags=TAGS, request=TeamCreateInput, responses={201: TeamOutput},
                   description="A new team; you are its owner.")
    def post(self, request: Request) -> Response:
        membership = services.team_create(user=request.user, **_body(TeamCreateInput, request))
        return Response(_team_view(membership), status=status.HTTP_201_CREATED)


class TeamDetailApi(APIView):
    @extend_schema(tags=TAGS, responses={200: TeamOutput}, description="Members only (others: 404).")
    def get(self, request: Request, team_id: str) -> Response:
        return Response(_team_view(selectors.team_membership_or_404(user=request.user, team_id=team_id)))

    @extend_schema(tags=TAGS, request=TeamUpdateInput, responses={200: TeamOutput},
                   description="Admins and owners. `settings` is merged key by key.")
    def patch(self, request: Request, team_id: str) -> Response:
        membership = selectors.team_membership_or_404(user=request.user, team_id=team_id)
        membership.team = services.team_update(membership=membership, **_body(TeamUpdateInput, request))
        return Response(_team_view(membership))

    put = patch

    @extend_schema(tags=TAGS, request=None, responses={204: None},
                   description="Owners only. Deletes the team, its memberships, invitations and provider "
                               "configurations; its chatbots stay with their owners.")
    def delete(self, request: Request, team_id: str) -> Response:
        services.team_delete(membership=selectors.team_membership_or_404(user=request.user, team_id=team_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TeamMemberListApi(APIView):
    @extend_schema(tags=TAGS, parameters=PAGE_PARAMS, responses={200: MemberOutput(many=True)})
    def get(self, request: Request, team_id: str) -> Response:
        membership = selectors.team_membership_or_404(user=request.user, team_id=team_id)
        return _listing(request, selectors.team_members(team=membership.team), MemberOutput)


def _member_or_404(membership: TeamMembership, user_id: str) -> TeamMembership:
    target = selectors.team_member_get(team=membership.team, user_id=user_id)
    if target is None:
        raise AppError("Member not found.", status_code=404)
    return target


class TeamMemberDetailApi(APIView):
    @extend_schema(tags=TAGS, responses={200: MemberOutput})
    def get(self, request: Request, team_id: str, user_id: str) -> Response:
        membership = selectors.team_membership_or_404(user=request.user, team_id=team_id)
        return Response(MemberOutput(_member_or_404(membership, user_id)).data)

    @extend_schema(tags=TAGS, request=MemberRoleInput, responses={200: MemberOutput},
                   description="Change a role: admins for members and admins, owners for anyone (and to "
                               "make owners). The last owner cannot step down (409).")
    def patch(self, request: Request, team_id: str, user_id: str) -> Response:
        membership = selectors.team_membership_or_404(user=request.user, team_id=team_id)
        target = _member_or_404(membership, user_id)
        role = _body(MemberRoleInput, request)["role"]
        return Response(MemberOutput(services.team_member_set_role(actor=membership, target=target, role=role)).data)

    put = patch

    @extend_schema(tags=TAGS, request=None, responses={204: None},
                   description="Remove a member (admins; owners for owners), or leave (your own id). The last "
                               "owner cannot leave (409).")
    def delete(self, request: Request, team_id: str, user_id: str) -> Response:
        membership = selectors.team_membership_or_404(user=request.user, team_id=team_id)
        services.team_member_remove(actor=membership, target=_member_or_404(membership, user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TeamInvitationListApi(APIView):
    @extend_schema(tags=TAGS, parameters=PAGE_PARAMS, responses={200: InvitationOutput(many=True)},
                   description="Pending invitations (admins and owners).")
    def get(self, request: Request, team_id: str) -> Response:
        membership = selectors.team_membership_or_404(user=request.user, team_id=team_id, role="admin")
        return _listing(request, selectors.invitations_pending(team=membership.team), InvitationOutput)

    @extend_schema(tags=TAGS, request=InvitationCreateInput, responses={201: InvitationOutput},
                   description="Invite by `username` or `email` (one of them), as `member` (default) or "
                               "`admin` (owners may invite owners). Valid seven days.")
    def post(self, request: Request, team_id: str) -> Response:
        membership = selectors.team_membership_or_404(user=request.user, team_id=team_id)
        invitation = services.team_invite(actor=membership, **_body(InvitationCreateInput, request))
        return Response(InvitationOutput(invitation).data, status=status.HTTP_201_CREATED)


class TeamInvitationDetailApi(APIView):
    @extend_schema(tags=TAGS, request=None, responses={200: InvitationOutput},
                   description="Revoke a pending invitation (admins and owners).")
    def delete(self, request: Request, team_id: str, invitation_id: str) -> Response:
        membership = selectors.team_membership_or_404(user=request.user, team_id=team_id)
        return Response(InvitationOutput(services.team_invitation_revoke(actor=membership,
                                                                         invitation_id=invitation_id)).data)


# --- the invitee's side ---------------------------------------------------------------------------


class MyInvitationListApi(APIView):
    @extend_schema(tags=TAGS, parameters=PAGE_PARAMS, responses={200: InvitationOutput(many=True)},
                   description="Pending invitations addressed to you (your username, or your account's email).")
    def get(self, request: Request) -> Response:
        return _listing(request, selectors.invitations_for(user=request.user), InvitationOutput)


def _my_invitation_or_404(request: Request, invitation_id: str):
    invitation = selectors.invitation_for(user=request.user, invitation_id=invitation_id)
    if invitation is None:
        raise AppError("Invitation not found.", status_code=404)
    return invitation


class InvitationAcceptApi(APIView):
    @extend_schema(tags=TAGS, request=None, responses={200: TeamOutput},
                   description="Join the team (the invitation's role). 409 if it expired or was answered.")
    def post(self, request: Request, invitation_id: str) -> Response:
        invitation = _my_invitation_or_404(request, invitation_id)
        membership = services.team_invitation_accept(user=request.user, invitation=invitation)
        return Response(_team_view(membership))


class InvitationDeclineApi(APIView):
    @extend_schema(tags=TAGS, request=None, responses={200: InvitationOutput})
    def post(self, request: Request, invitation_id: str) -> Response:
        invitation = _my_invitation_or_404(request, invitation_id)
        return Response(InvitationOutput(services.team_invitation_decline(user=request.user,
                                                                          invitation=invitation)).data)
