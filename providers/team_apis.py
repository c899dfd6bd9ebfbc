"""A team's own providers: ``/teams/{team_id}/providers`` (members read, admins and owners write;
non-members get 404 like on every team route). A team member's chat request uses one by naming it
(``provider``, or the ``default_provider`` preference)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.team_selectors import team_membership_or_404
from chatplatform.api.exceptions import AppError
from chatplatform.api.fields import StrictInput
from providers import selectors, team_services
from providers.models import ProviderConfig

TAGS = ["teams"]


class TeamProviderInput(StrictInput):
    name = serializers.SlugField(max_length=50)
    kind = serializers.ChoiceField(choices=[k.value for k in team_services.TEAM_KINDS])
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    base_url = serializers.URLField(max_length=500, required=False, allow_blank=True,
                                    help_text="An OpenAI-compatible (or the kind's own) API URL; must be public "
                                              "unless ALLOW_PRIVATE_OUTBOUND is set.")
    api_key = serializers.CharField(max_length=500, required=False, allow_blank=True, write_only=True)
    default_model = serializers.CharField(max_length=100, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    timeout = serializers.FloatField(min_value=1, max_value=600, required=False)
    max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False, allow_null=True)
    max_tokens = serializers.IntegerField(min_value=1, max_value=200000, required=False, allow_null=True)
    validate_key = serializers.BooleanField(required=False, default=True,
                                            help_text="Make a real call with a new key before saving.")


class TeamProviderUpdateInput(TeamProviderInput):
    """Everything but ``name`` and ``kind`` (the path names the provider; the kind stays)."""

    name = None
    kind = None


class TeamProviderOutput(serializers.ModelSerializer):
    team_id = serializers.CharField(read_only=True)
    api_key = serializers.CharField(source="masked_key", read_only=True, help_text="Masked.")
    temperature = serializers.SerializerMethodField()
    max_tokens = serializers.SerializerMethodField()

    class Meta:
        model = ProviderConfig
        fields = ["name", "kind", "team_id", "description", "base_url", "api_key", "default_model", "enabled",
                  "timeout", "max_retries", "temperature", "max_tokens", "created_at", "updated_at"]
        read_only_fields = fields

    def get_temperature(self, row: ProviderConfig) -> float | None:
        return (row.settings or {}).get("temperature")

    def get_max_tokens(self, row: ProviderConfig) -> int | None:
        return (row.settings or {}).get("max_tokens")


def _body(serializer_class, request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _row_or_404(team_id: str, name: str) -> ProviderConfig:
    row = selectors.team_provider_row(team_id=team_id, name=name)
    if row is None:
        raise AppError(f"Provider '{name}' not found.", status_code=404)
    return row


class TeamProviderListApi(APIView):
    @extend_schema(tags=TAGS, responses={200: TeamProviderOutput(many=True)},
                   description="The team's own providers (keys masked).")
    def get(self, request: Request, team_id: str) -> Response:
        membership = team_membership_or_404(user=request.user, team_id=team_id)
        rows = list(selectors.team_provider_rows(team_id=membership.team_id))
        return Response(TeamProviderOutput(rows, many=True).data, headers={"X-Total-Count": str(len(rows))})

    @extend_schema(tags=TAGS, request=TeamProviderInput, responses={201: TeamProviderOutput},
                   description="Admins and owners. Names are unique on the server (409 when taken).")
    def post(self, request: Request, team_id: str) -> Response:
        membership = team_membership_or_404(user=request.user, team_id=team_id)
        row = team_services.team_provider_create(membership=membership, **_body(TeamProviderInput, request))
        return Response(TeamProviderOutput(row).data, status=status.HTTP_201_CREATED)


class TeamProviderDetailApi(APIView):
    @extend_schema(tags=TAGS, responses={200: TeamProviderOutput})
    def get(self, request: Request, team_id: str, name: str) -> Response:
        membership = team_membership_or_404(user=request.user, team_id=team_id)
        return Response(TeamProviderOutput(_row_or_404(membership.team_id, name)).data)

    @extend_schema(tags=TAGS, request=TeamProviderUpdateInput, responses={200: TeamProviderOutput},
                   description="Admins and owners; changes the fields sent (`api_key` left out: kept).")
    def patch(self, request: Request, team_id: str, name: str) -> Response:
        membership = team_membership_or_404(user=request.user, team_id=team_id)
        row = _row_or_404(membership.team_id, name)
        row = team_services.team_provider_update(membership=membership, row=row,
                                                 **_body(TeamProviderUpdateInput, request))
        return Response(TeamProviderOutput(row).data)

    put = patch

    @extend_schema(tags=TAGS, request=None, responses={204: None}, description="Admins and owners.")
    def delete(self, request: Request, team_id: str, name: str) -> Response:
        membership = team_membership_or_404(user=request.user, team_id=team_id)
        team_services.team_provider_delete(membership=membership, row=_row_or_404(membership.team_id, name))
        return Response(status=status.HTTP_204_NO_CONTENT)
