"""Seed 000's operator routes under ``/api/v1/admin/``: status, metrics, users overview,
maintenance and logs. Admin secret or a staff user; other users 403, anonymous 401. Thin: reads in
``adminpanel.selectors``, work in ``adminpanel.services`` through ``adminpanel.tasks``."""

from __future__ import annotations

import uuid

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import AdminAPIView
from adminpanel import maintenance, selectors, tasks
from chatplatform.api.exceptions import AppError
from chatplatform.api.fields import validated_known

TAGS = ["admin"]


def _query(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """Validated query parameters; an unknown one is a 400 naming it."""
    return validated_known(serializer_class, request.query_params)


class MetricsQuery(serializers.Serializer):
    hours = serializers.IntegerField(min_value=1, max_value=168, default=24)


class UsersOverviewQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class MaintenanceQuery(serializers.Serializer):
    task = serializers.CharField(max_length=64)

    def validate_task(self, value: str) -> str:
        if value not in maintenance.TASKS:  # a 400 (not the 422 of a malformed value), as seed 000's clients expect
            valid = maintenance.task_names()
            raise AppError(f"Unknown task {value!r}. Valid tasks: {', '.join(valid)}.", code="UNKNOWN_TASK",
                           details={"task": [f"Valid tasks: {', '.join(valid)}."], "valid_tasks": valid})
        return value


class LogsQuery(serializers.Serializer):
    level = serializers.ChoiceField(choices=selectors.LOG_LEVELS, required=False)
    lines = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    service = serializers.CharField(max_length=100, required=False)

    def to_internal_value(self, data):
        if isinstance(data.get("level"), str):
            data = data.copy()
            data["level"] = data["level"].upper()
        return super().to_internal_value(data)


_StatusOutput = inline_serializer("AdminSystemStatusOutput", {
    "status": serializers.CharField(), "timestamp": serializers.DateTimeField(),
    "admin_info": serializers.DictField(), "checks": serializers.DictField()})
_MetricsOutput = inline_serializer("AdminSystemMetricsOutput", {
    "period": serializers.DictField(), "api_metrics": serializers.DictField(),
    "chat_metrics": serializers.DictField(), "llm_metrics": serializers.DictField()})
_UsersOutput = inline_serializer("AdminUsersOverviewOutput", {
    "total_users": serializers.IntegerField(), "active_users": serializers.IntegerField(),
    "staff_users": serializers.IntegerField(), "limit": serializers.IntegerField(),
    "users": serializers.ListField(child=serializers.DictField())})
_MaintenanceOutput = inline_serializer("AdminMaintenanceOutput", {
    "task": serializers.CharField(), "task_id": serializers.CharField(),
    "status": serializers.ChoiceField(choices=["queued", "completed"]), "message": serializers.CharField(),
    "result": serializers.DictField(allow_null=True), "valid_tasks": serializers.ListField(child=serializers.CharField())})
_LogsOutput = inline_serializer("AdminLogsOutput", {
    "source": serializers.ChoiceField(choices=["file", "memory"]), "level": serializers.CharField(),
    "service": serializers.CharField(allow_null=True), "lines": serializers.IntegerField(),
    "count": serializers.IntegerField(), "logs": serializers.ListField(child=serializers.DictField())})


class SystemStatusApi(AdminAPIView):
    @extend_schema(tags=TAGS, responses={200: _StatusOutput})
    def get(self, request: Request) -> Response:
        _query(serializers.Serializer, request)
        return Response(selectors.system_status())


class SystemMetricsApi(AdminAPIView):
    @extend_schema(tags=TAGS, parameters=[MetricsQuery], responses={200: _MetricsOutput})
    def get(self, request: Request) -> Response:
        return Response(selectors.system_metrics(hours=_query(MetricsQuery, request)["hours"]))


class UsersOverviewApi(AdminAPIView):
    @extend_schema(tags=TAGS, parameters=[UsersOverviewQuery], responses={200: _UsersOutput},
                   description="The newest `limit` users with their activity; the total is also in `X-Total-Count`.")
    def get(self, request: Request) -> Response:
        overview = selectors.users_overview(limit=_query(UsersOverviewQuery, request)["limit"])
        return Response(overview, headers={"X-Total-Count": str(overview["total_users"])})


class MaintenanceApi(AdminAPIView):
    @extend_schema(tags=TAGS, parameters=[MaintenanceQuery], request=None, responses={202: _MaintenanceOutput},
                   description="Runs a maintenance task on a Celery worker (in-process in the embedded mode, "
                               "where the answer carries its result). Tasks: "
                               + ", ".join(f"`{t.name}` ({t.description})" for t in maintenance.TASKS.values())
                               + " An unknown task is a 400 listing the valid ones.")
    def post(self, request: Request) -> Response:
        name = _query(MaintenanceQuery, request)["task"]
        task_id = str(uuid.uuid4())
        if settings.CELERY_TASK_ALWAYS_EAGER or tasks.maintenance_run.app.conf.task_always_eager:
            result = tasks.maintenance_run.apply(args=[name], task_id=task_id).get()
            state, message = "completed", f"Task {name} completed."
        else:
            tasks.maintenance_run.apply_async(args=[name], task_id=task_id)
            result, state, message = None, "queued", f"Task {name} queued for a worker."
        return Response({"task": name, "task_id": task_id, "status": state, "message": message, "result": result,
                         "valid_tasks": maintenance.task_names()}, status=status.HTTP_202_ACCEPTED)


class LogsApi(AdminAPIView):
    @extend_schema(tags=TAGS, parameters=[LogsQuery], responses={200: _LogsOutput},
                   description="The application's own log, newest last: records at `level` or above from loggers "
                               "named `service` or below it (e.g. `chats`, `providers`, `django`). From `LOG_FILE` "
                               "(every worker) when set, else this worker's recent records.")
    def get(self, request: Request) -> Response:
        query = _query(LogsQuery, request)
        return Response(selectors.logs_recent(level=query.get("level"), lines=query["lines"],
                                              service=query.get("service")))
