"""``GET /api/v1/users/usage``: the caller's usage, limits and remaining budgets. Staff may pass
``user_id`` to see anyone's (operators' view); for others that parameter is a 403."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatplatform.api.exceptions import AppError
from chatplatform.api.fields import validated_known
from providers import usage

_Totals = inline_serializer("UsageTotals", {
    "requests": serializers.IntegerField(), "prompt_tokens": serializers.IntegerField(),
    "completion_tokens": serializers.IntegerField(), "total_tokens": serializers.IntegerField(),
    "cost": serializers.FloatField()})

_Output = inline_serializer("UsageOutput", {
    "user_id": serializers.CharField(),
    "username": serializers.CharField(),
    "periods": serializers.DictField(child=_Totals),
    "by_model": serializers.ListField(child=serializers.DictField()),
    "limits": serializers.DictField(),
    "current": serializers.DictField(child=serializers.DictField()),
    "remaining": serializers.DictField(),
})


class UsageInput(serializers.Serializer):
    user_id = serializers.CharField(required=False, max_length=64)
    days = serializers.IntegerField(required=False, min_value=1, max_value=366, default=30)


class UsageApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["users"], responses={200: _Output}, summary="Usage, limits and remaining budgets",
                   parameters=[OpenApiParameter("user_id", str, description="Staff only: another user's usage."),
                               OpenApiParameter("days", int, description="The window of by_model (1-366, 30).")])
    def get(self, request: Request) -> Response:
        validated = validated_known(UsageInput, request.query_params)
        target = request.user
        user_id = validated.get("user_id")
        if user_id and user_id != str(request.user.pk):
            if not request.user.is_staff:
                raise AppError("Only staff may read another user's usage.", status_code=403)
            target = get_user_model().objects.filter(pk=user_id).first()
            if target is None:
                raise AppError("User not found.", status_code=404)
        return Response(usage.usage_for_user(user=target, days=validated["days"]))
