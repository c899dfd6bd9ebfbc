"""Team reads, and the one access rule every team route (and every app sharing with teams) uses:
a team is visible to its members only (anyone else gets a 404); roles decide who may change it."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import ROLE_RANK, InvitationStatus, Team, TeamInvitation, TeamMembership, TeamRole
from chatplatform.api.exceptions import AppError


def _user_pk(user: Any) -> str | None:
    return getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None


def membership_of(*, user: Any, team_id: Any) -> TeamMembership | None:
    """The caller's membership of ``team_id`` (team loaded), or None."""
    pk = _user_pk(user)
    if not pk or not isinstance(team_id, str):
        return None
    return TeamMembership.objects.select_related("team").filter(team_id=team_id, user_id=pk).first()


def team_membership_or_404(*, user: Any, team_id: Any, role: str = TeamRole.MEMBER) -> TeamMembership:
    """The caller's membership of the team: 404 when they are not a member (the team's existence is
    not revealed), 403 when their role is below ``role``."""
    membership = membership_of(user=user, team_id=team_id)
    if membership is None:
        raise AppError("Team not found.", status_code=404)
    require_role(membership, role)
    return membership


def require_role(membership: TeamMembership, role: str) -> None:
    if ROLE_RANK[membership.role] < ROLE_RANK[role]:
        raise AppError(f"This needs the team's {role} role (yours: {membership.role}).", status_code=403,
                       code="TEAM_ROLE_REQUIRED", details={"role": [f"Needs {role} or higher."]})


def has_role(*, user: Any, team_id: Any, role: str) -> bool:
    membership = membership_of(user=user, team_id=team_id)
    return membership is not None and ROLE_RANK[membership.role] >= ROLE_RANK[role]


def team_ids_of(user: Any, *, role: str = TeamRole.MEMBER) -> QuerySet:
    """The ids of the teams ``user`` belongs to with at least ``role`` (a subquery)."""
    roles = [r for r, rank in ROLE_RANK.items() if rank >= ROLE_RANK[role]]
    return TeamMembership.objects.filter(user_id=_user_pk(user), role__in=roles).values("team_id")


def team_list(*, user: Any) -> QuerySet[TeamMembership]:
    """The caller's memberships, oldest first, each with its team and member count."""
    return (TeamMembership.objects.filter(user_id=_user_pk(user)).select_related("team")
            .annotate(member_count=Count("team__memberships")).order_by("created_at"))


def team_member_count(team: Team) -> int:
    return team.memberships.count()


def team_members(*, team: Team) -> QuerySet[TeamMembership]:
    return TeamMembership.objects.filter(team=team).select_related("user").order_by("created_at")


def team_member_get(*, team: Team, user_id: Any) -> TeamMembership | None:
    if not isinstance(user_id, str):
        return None
    return TeamMembership.objects.select_related("user").filter(team=team, user_id=user_id).first()


def invitations_pending(*, team: Team) -> QuerySet[TeamInvitation]:
    return (TeamInvitation.objects.filter(team=team, status=InvitationStatus.PENDING, expires_at__gt=timezone.now())
            .select_related("invitee", "invited_by").order_by("-created_at"))


def _addressed_to(user: Any) -> Q:
    email = (getattr(user, "email", "") or "").strip()
    mine = Q(invitee_id=_user_pk(user))
    return mine | (Q(invitee__isnull=True, email__iexact=email) if email else Q(pk__in=[]))


def invitations_for(*, user: Any) -> QuerySet[TeamInvitation]:
    """Pending, unexpired invitations addressed to the caller (by account, or by their email)."""
    return (TeamInvitation.objects.filter(_addressed_to(user), status=InvitationStatus.PENDING,
                                          expires_at__gt=timezone.now())
            .select_related("team", "invited_by", "invitee").order_by("-created_at"))


def invitation_for(*, user: Any, invitation_id: Any) -> TeamInvitation | None:
    """An invitation addressed to the caller (any status), or None (the route answers 404)."""
    if not isinstance(invitation_id, str):
        return None
    return (TeamInvitation.objects.filter(_addressed_to(user), pk=invitation_id)
            .select_related("team").first())
