"""Admin views: the admin secret is accepted besides the usual credentials.

The permission classes themselves (``IsAdmin``, ``AdminForWrites``, ...) are generic and live in
``chatplatform.api.permissions``; what needs the admin-secret class lives here, beside it.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.views import APIView

from accounts.authentication import AdminSecretAuthentication
from chatplatform.api.permissions import IsAdmin


def admin_authentication_classes() -> list:
    """The admin secret first, then the project's usual classes (the catch-all stays last)."""
    return [AdminSecretAuthentication, *api_settings.DEFAULT_AUTHENTICATION_CLASSES]


class AdminAuthMixin:
    """Accept the admin secret on this view besides the usual credentials."""

    def get_authenticators(self):
        return [cls() for cls in admin_authentication_classes()]


class AdminAPIView(AdminAuthMixin, APIView):
    """Base for admin routes: accepts the admin secret besides the usual credentials."""

    permission_classes = [IsAdmin]
