"""Health routes (seeds 000 and 001)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adminpanel import selectors

_HealthOutput = inline_serializer(
    "HealthOutput",
    {
        "status": serializers.CharField(),
        "version": serializers.CharField(),
        "service": serializers.CharField(),
        "timestamp": serializers.DateTimeField(),
        "environment": serializers.CharField(),
        "providers_configured": serializers.DictField(child=serializers.BooleanField()),
    },
)

_DetailedHealthOutput = inline_serializer(
    "DetailedHealthOutput",
    {
        "status": serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"]),
        "version": serializers.CharField(),
        "service": serializers.CharField(),
        "timestamp": serializers.DateTimeField(),
        "environment": serializers.CharField(),
        "providers_configured": serializers.DictField(child=serializers.BooleanField()),
        "checks": serializers.DictField(),
        "components": serializers.DictField(child=serializers.DictField()),
        "system_info": serializers.DictField(),
    },
)


class HealthApi(APIView):
    """Liveness: answers without touching the database."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(tags=["health"], responses={200: _HealthOutput})
    def get(self, request: Request) -> Response:
        return Response(selectors.health_basic())


class DetailedHealthApi(APIView):
    """Readiness: database, cache, channel layer, broker, memory and CPU. 503 if a required
    component is down."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(tags=["health"], responses={200: _DetailedHealthOutput, 503: _DetailedHealthOutput})
    def get(self, request: Request) -> Response:
        report = selectors.health_detailed()
        return Response(report, status=503 if report["status"] == "unhealthy" else 200)
