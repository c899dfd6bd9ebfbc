"""Seed 001's cache routes: ``GET /cache/stats``, ``POST /cache/warm`` (a Celery task; its status at
``GET /cache/warm/{task_id}``), ``DELETE /cache/clear?pattern=``. Warm and clear need an admin."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import AdminAPIView, AdminAuthMixin
from chatplatform.api import fields
from chatplatform.api.exceptions import AppError
from providers import cache_services

TAGS = ["cache"]


class CacheStatsOutput(serializers.Serializer):
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    bypasses = serializers.IntegerField()
    semantic_hits = serializers.IntegerField()
    hit_rate = serializers.FloatField()
    total_requests = serializers.IntegerField()
    cache_size_bytes = serializers.IntegerField()
    cache_size_human = serializers.CharField()
    entries = serializers.IntegerField()
    avg_response_time_ms = serializers.FloatField(help_text="Mean server time of a cache hit's lookup.")
    memory_usage_percent = serializers.FloatField(help_text="Of RESPONSE_CACHE_MAX_BYTES.")
    evictions = serializers.IntegerField()
    last_eviction = serializers.DateTimeField(allow_null=True)


class CacheWarmInput(fields.StrictInput):
    unknown_message = "Unsupported field."

    patterns = serializers.ListField(child=serializers.CharField(max_length=500), min_length=1, max_length=50)
    models = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list,
                                   max_length=10)
    limit = serializers.IntegerField(required=False, default=10, min_value=1,
                                     max_value=cache_services.WARM_LIMIT_MAX)



class CacheWarmOutput(serializers.Serializer):
    task_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "running", "completed"])
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    warmed = serializers.IntegerField()
    failed = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class CacheClearOutput(serializers.Serializer):
    cleared = serializers.IntegerField()
    pattern = serializers.CharField(allow_null=True)


class CacheStatsApi(AdminAuthMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=TAGS, responses={200: CacheStatsOutput})
    def get(self, request: Request) -> Response:
        return Response(CacheStatsOutput(cache_services.cache_stats()).data)


class CacheWarmApi(AdminAPIView):
    @extend_schema(tags=TAGS, request=CacheWarmInput, responses={202: CacheWarmOutput})
    def post(self, request: Request) -> Response:
        serializer = CacheWarmInput(data=request.data)
        if not serializer.is_valid():
            raise AppError("Invalid warming request.", status_code=400, details=serializer.errors)
        started = cache_services.cache_warm_enqueue(**serializer.validated_data)
        return Response(CacheWarmOutput(cache_services.warm_status(started["task_id"])).data,
                        status=status.HTTP_202_ACCEPTED)


class CacheWarmStatusApi(AdminAPIView):
    @extend_schema(tags=TAGS, responses={200: CacheWarmOutput})
    def get(self, request: Request, task_id: str) -> Response:
        return Response(CacheWarmOutput(cache_services.warm_status(task_id)).data)


class CacheClearApi(AdminAPIView):
    @extend_schema(tags=TAGS, parameters=[OpenApiParameter("pattern", str, required=False,
                                                           description="Clear only entries whose prompt "
                                                                       "or model contains it.")],
                   responses={200: CacheClearOutput})
    def delete(self, request: Request) -> Response:
        pattern = (request.query_params.get("pattern") or "").strip()[:500]
        cleared = cache_services.cache_clear(pattern=pattern)
        return Response({"cleared": cleared, "pattern": pattern or None})
