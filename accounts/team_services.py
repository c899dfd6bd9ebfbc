"""Team writes: teams, members and their roles, invitations.

Roles: ``owner`` (everything, including deleting the team and making owners), ``admin`` (edit the
team, invite, change and remove members and admins, manage the team's shared objects), ``member``
(see the team and use what it shares). A team always keeps at least one owner.

``Team.settings`` is where a team's limits and budgets live (``TEAM_SETTING_KEYS``). They are stored
and validated here; enforcing them belongs to the budgets work (per-user and per-key budgets), which
reads them from there.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import (
    ROLE_RANK,
    InvitationStatus,
    Team,
    TeamInvitation,
    TeamMembership,
    TeamRole,
    User,
)
from accounts.team_selectors import require_role
from chatplatform.api.exceptions import AppError

INVITATION_TTL = timedelta(days=7)
MAX_TEAMS_PER_USER = 100
MAX_MEMBERS_PER_TEAM = 1000
MAX_PENDING_INVITATIONS = 200

# key -> (type, minimum): the documented limits and budgets a team may carry (not enforced yet).
TEAM_SETTING_KEYS: dict[str, tuple[type, float]] = {
    "monthly_budget_usd": (float, 0),
    "monthly_token_budget": (int, 0),
    "tokens_per_minute": (int, 0),
    "requests_per_minute": (int, 0),
}


def _limit(message: str) -> AppError:
    return AppError(message, status_code=409, code="TEAM_LIMIT_REACHED")


def team_settings_clean(value: Any) -> dict[str, Any]:
    """Validate a ``settings`` patch: known keys only, JSON numbers (not strings, not booleans) at or
    above each key's minimum; ``null`` removes a key. 422 naming the offending keys."""
    if not isinstance(value, dict):
        raise AppError("settings must be a JSON object.", status_code=422, details={"settings": ["A JSON object."]})
    problems: dict[str, list[str]] = {}
    for key, item in value.items():
        if key not in TEAM_SETTING_KEYS:
            problems[key] = [f"Unknown setting. Known: {', '.join(TEAM_SETTING_KEYS)}."]
            continue
        kind, minimum = TEAM_SETTING_KEYS[key]
        if item is None:
            continue
        allowed = (int, float) if kind is float else (int,)
        if isinstance(item, bool) or not isinstance(item, allowed) or item < minimum:
            problems[key] = [f"{'A number' if kind is float else 'An integer'} >= {minimum}, or null to clear."]
    if problems:
        raise AppError("Invalid team settings.", status_code=422, details={"settings": problems})
    return value


def _merged(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = {**(current or {}), **patch}
    return {k: v for k, v in merged.items() if v is not None}


# --- teams ------------------------------------------------------------------------------------


@transaction.atomic
def team_create(*, user: User, name: str, description: str = "", settings: dict | None = None) -> TeamMembership:
    """A new team with ``user`` as its owner; returns the owner's membership."""
    if TeamMembership.objects.filter(user=user).count() >= MAX_TEAMS_PER_USER:
        raise _limit(f"A user may belong to at most {MAX_TEAMS_PER_USER} teams.")
    team = Team.objects.create(name=name.strip(), description=description,
                               settings=_merged({}, team_settings_clean(settings or {})), created_by=user)
    return TeamMembership.objects.create(team=team, user=user, role=TeamRole.OWNER)


@transaction.atomic
def team_update(*, membership: TeamMembership, name: str | None = None, description: str | None = None,
                settings: dict | None = None) -> Team:
    """Admins and owners; ``settings`` is merged key by key (``null`` clears one)."""
    require_role(membership, TeamRole.ADMIN)
    team = Team.objects.select_for_update().get(pk=membership.team_id)
    if name is not None:
        team.name = name.strip()
    if description is not None:
        team.description = description
    if settings is not None:
        team.settings = _merged(team.settings, team_settings_clean(settings))
    team.save()
    return team


@transaction.atomic
def team_delete(*, membership: TeamMembership) -> None:
    """Owners only. The team's provider configurations go with it; its chatbots stay their
    owners' (no longer shared)."""
    require_role(membership, TeamRole.OWNER)
    Team.objects.filter(pk=membership.team_id).delete()


# --- members ------------------------------------------------------------------------------------


def _owners_left(team_id: str, *, without: TeamMembership) -> int:
    # Locked rows, counted in Python: PostgreSQL refuses FOR UPDATE with an aggregate.
    return len(TeamMembership.objects.select_for_update().filter(team_id=team_id, role=TeamRole.OWNER)
               .exclude(pk=without.pk).values_list("pk", flat=True))


def _may_act_on(actor: TeamMembership, target: TeamMembership, new_role: str | None = None) -> None:
    """Admins act on members and admins; only owners act on owners or make them."""
    require_role(actor, TeamRole.ADMIN)
    if TeamRole.OWNER in (target.role, new_role):
        require_role(actor, TeamRole.OWNER)


@transaction.atomic
def team_member_set_role(*, actor: TeamMembership, target: TeamMembership, role: str) -> TeamMembership:
    _may_act_on(actor, target, role)
    if target.role == TeamRole.OWNER and role != TeamRole.OWNER and not _owners_left(target.team_id, without=target):
        raise AppError("A team needs an owner: make someone else owner first.", status_code=409, code="LAST_OWNER")
    target.role = role
    target.save(update_fields=["role", "updated_at"])
    return target


@transaction.atomic
def team_member_remove(*, actor: TeamMembership, target: TeamMembership) -> None:
    """Anyone may leave; admins remove members and admins, owners anyone. The last owner stays."""
    if actor.pk != target.pk:
        _may_act_on(actor, target)
    if target.role == TeamRole.OWNER and not _owners_left(target.team_id, without=target):
        raise AppError("A team needs an owner: make someone else owner first (or delete the team).",
                       status_code=409, code="LAST_OWNER")
    target.delete()


@transaction.atomic
def teams_hand_over(*, user: User) -> None:
    """Before ``user``'s account is deleted: every team they alone own passes to its longest-standing
    admin (else member), or is deleted when nobody else is in it, so no team is left ownerless."""
    owned = TeamMembership.objects.select_for_update().filter(user=user, role=TeamRole.OWNER)
    for membership in owned:
        others = TeamMembership.objects.filter(team_id=membership.team_id).exclude(user=user)
        if others.filter(role=TeamRole.OWNER).exists():
            continue
        heir = others.filter(role=TeamRole.ADMIN).order_by("created_at").first() or others.order_by(
            "created_at").first()
        if heir is None:
            Team.objects.filter(pk=membership.team_id).delete()
        else:
            heir.role = TeamRole.OWNER
            heir.save(update_fields=["role", "updated_at"])


# --- invitations ------------------------------------------------------------------------------------


@transaction.atomic
def team_invite(*, actor: TeamMembership, username: str | None = None, email: str | None = None,
                role: str = TeamRole.MEMBER) -> TeamInvitation:
    """Invite a user by username, or an email address (accepted by the account holding it, now or
    once it is registered). Admins invite members and admins; only owners invite owners."""
    require_role(actor, TeamRole.ADMIN)
    if ROLE_RANK[role] > ROLE_RANK[TeamRole.ADMIN]:
        require_role(actor, TeamRole.OWNER)
    team = actor.team
    invitee = None
    if username:
        invitee = User.objects.filter(username__iexact=username, is_active=True).first()
        if invitee is None:
            raise AppError("No such user.", status_code=422, details={"username": ["No active user has that username."]})
        already = TeamMembership.objects.filter(team=team, user=invitee).exists()
        field = "username"
    else:
        email = (email or "").strip()
        already = TeamMembership.objects.filter(team=team, user__email__iexact=email).exists()
        field = "email"
    if already:
        raise AppError("Already a member of this team.", status_code=409, code="ALREADY_MEMBER",
                       details={field: ["Already a member."]})
    pending = TeamInvitation.objects.filter(team=team, status=InvitationStatus.PENDING)
    pending.filter(expires_at__lte=timezone.now()).delete()  # expired ones do not block a new one
    if pending.count() >= MAX_PENDING_INVITATIONS:
        raise _limit(f"A team may have at most {MAX_PENDING_INVITATIONS} pending invitations.")
    try:
        with transaction.atomic():
            return TeamInvitation.objects.create(team=team, invitee=invitee, email="" if invitee else email,
                                                 role=role, invited_by=actor.user,
                                                 expires_at=timezone.now() + INVITATION_TTL)
    except IntegrityError as exc:
        raise AppError("An invitation is already pending for them.", status_code=409, code="INVITATION_PENDING",
                       details={field: ["An invitation is already pending."]}) from exc


@transaction.atomic
def team_invitation_revoke(*, actor: TeamMembership, invitation_id: str) -> TeamInvitation:
    require_role(actor, TeamRole.ADMIN)
    invitation = TeamInvitation.objects.select_for_update().filter(
        pk=invitation_id, team_id=actor.team_id, status=InvitationStatus.PENDING).first()
    if invitation is None:
        raise AppError("Invitation not found.", status_code=404)
    invitation.status, invitation.responded_at = InvitationStatus.REVOKED, timezone.now()
    invitation.save(update_fields=["status", "responded_at"])
    return invitation


def _pending(invitation: TeamInvitation) -> TeamInvitation:
    locked = TeamInvitation.objects.select_for_update().select_related("team").get(pk=invitation.pk)
    if locked.status != InvitationStatus.PENDING:
        raise AppError(f"This invitation was already {locked.status}.", status_code=409, code="INVITATION_CLOSED")
    if locked.is_expired:
        raise AppError("This invitation has expired: ask for a new one.", status_code=409, code="INVITATION_EXPIRED")
    return locked


@transaction.atomic
def team_invitation_accept(*, user: User, invitation: TeamInvitation) -> TeamMembership:
    """Join the team with the invited role (a member already keeps the higher of the two)."""
    invitation = _pending(invitation)
    membership = TeamMembership.objects.filter(team=invitation.team, user=user).first()
    if membership is None:
        if TeamMembership.objects.filter(user=user).count() >= MAX_TEAMS_PER_USER:
            raise _limit(f"A user may belong to at most {MAX_TEAMS_PER_USER} teams.")
        if TeamMembership.objects.filter(team=invitation.team).count() >= MAX_MEMBERS_PER_TEAM:
            raise _limit(f"A team may have at most {MAX_MEMBERS_PER_TEAM} members.")
        membership = TeamMembership.objects.create(team=invitation.team, user=user, role=invitation.role)
    elif ROLE_RANK[invitation.role] > ROLE_RANK[membership.role]:
        membership.role = invitation.role
        membership.save(update_fields=["role", "updated_at"])
    invitation.status, invitation.responded_at, invitation.invitee = InvitationStatus.ACCEPTED, timezone.now(), user
    invitation.save(update_fields=["status", "responded_at", "invitee"])
    return membership


@transaction.atomic
def team_invitation_decline(*, user: User, invitation: TeamInvitation) -> TeamInvitation:
    invitation = _pending(invitation)
    invitation.status, invitation.responded_at, invitation.invitee = InvitationStatus.DECLINED, timezone.now(), user
    invitation.save(update_fields=["status", "responded_at", "invitee"])
    return invitation
