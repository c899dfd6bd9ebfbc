"""Team input validation and output shapes."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import TeamInvitation, TeamMembership, TeamRole
from accounts.team_services import TEAM_SETTING_KEYS
from chatplatform.api import fields

SETTINGS_HELP = ("Limits and budgets, merged key by key (`null` clears one): "
                 + ", ".join(TEAM_SETTING_KEYS) + ". Stored for the budget checks; not enforced yet.")


class TeamCreateInput(fields.StrictInput):
    name = fields.TextField(max_length=100)
    description = fields.TextField(max_length=500, required=False, allow_blank=True, default="")
    settings = serializers.JSONField(required=False, help_text=SETTINGS_HELP)


class TeamUpdateInput(fields.StrictInput):
    name = fields.TextField(max_length=100, required=False)
    description = fields.TextField(max_length=500, required=False, allow_blank=True)
    settings = serializers.JSONField(required=False, help_text=SETTINGS_HELP)


class TeamOutput(serializers.Serializer):
    """A team as one of its members sees it; ``role`` is the caller's."""

    id = serializers.CharField(source="team.id")
    name = serializers.CharField(source="team.name")
    description = serializers.CharField(source="team.description")
    settings = serializers.DictField(source="team.settings")
    role = serializers.ChoiceField(choices=TeamRole.choices)
    member_count = serializers.IntegerField()
    created_by = serializers.CharField(source="team.created_by_id", allow_null=True)
    created_at = serializers.DateTimeField(source="team.created_at")
    updated_at = serializers.DateTimeField(source="team.updated_at")


class MemberOutput(serializers.ModelSerializer):
    user_id = serializers.CharField(source="user.id")
    username = serializers.CharField(source="user.username")
    email = serializers.EmailField(source="user.email")
    full_name = serializers.CharField(source="user.full_name")
    joined_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = TeamMembership
        fields = ["user_id", "username", "email", "full_name", "role", "joined_at", "updated_at"]
        read_only_fields = fields


class MemberRoleInput(fields.StrictInput):
    role = serializers.ChoiceField(choices=TeamRole.choices)


class InvitationCreateInput(fields.StrictInput):
    username = fields.TextField(max_length=150, required=False)
    email = serializers.EmailField(max_length=254, required=False)
    role = serializers.ChoiceField(choices=TeamRole.choices, required=False, default=TeamRole.MEMBER)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if bool(attrs.get("username")) == bool(attrs.get("email")):
            raise serializers.ValidationError({"username": ["Send either username or email (one of them)."]})
        return attrs


class InvitationOutput(serializers.ModelSerializer):
    team_id = serializers.CharField(read_only=True)
    team_name = serializers.CharField(source="team.name", read_only=True)
    invitee_username = serializers.CharField(source="invitee.username", read_only=True, allow_null=True,
                                             default=None)
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = TeamInvitation
        fields = ["id", "team_id", "team_name", "invitee_username", "email", "role", "status", "invited_by",
                  "created_at", "expires_at", "responded_at"]
        read_only_fields = fields
