"""Test-only URLconf: the real routes plus one admin probe view (no admin routes exist yet).

Used with ``@pytest.mark.urls("accounts.tests.admin_probe_urls")`` so the probe runs through the
full middleware stack (request ids, error envelope).
"""

from __future__ import annotations

from django.urls import path
from rest_framework.response import Response

from accounts.permissions import AdminAPIView
from chatplatform.urls import urlpatterns as real_urlpatterns


class AdminProbeApi(AdminAPIView):
    def get(self, request):
        return Response({"ok": True, "principal": getattr(request.user, "username", None)})


urlpatterns = [
    path("api/v1/_test/admin-probe", AdminProbeApi.as_view(), name="test-admin-probe"),
    *real_urlpatterns,
]
