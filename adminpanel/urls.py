"""Seed 000's operator routes, under /api/v1/admin/."""

from django.urls import path

from adminpanel import operator_apis

urlpatterns = [
    path("admin/system/status", operator_apis.SystemStatusApi.as_view(), name="admin-system-status"),
    path("admin/system/metrics", operator_apis.SystemMetricsApi.as_view(), name="admin-system-metrics"),
    path("admin/users/overview", operator_apis.UsersOverviewApi.as_view(), name="admin-users-overview"),
    path("admin/system/maintenance", operator_apis.MaintenanceApi.as_view(), name="admin-system-maintenance"),
    path("admin/logs", operator_apis.LogsApi.as_view(), name="admin-logs"),
]
