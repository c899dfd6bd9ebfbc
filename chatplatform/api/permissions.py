"""Permission classes and the base class for admin views."""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.views import APIView

from chatplatform.api.authentication import AdminSecretAuthentication


class IsAdmin(permissions.BasePermission):
    """The admin secret, or a staff user (JWT or API key). Others: 403; no credentials: 401."""

    message = "Admin privileges required."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


def admin_authentication_classes() -> list:
    from rest_framework.settings import api_settings

    return [AdminSecretAuthentication, *api_settings.DEFAULT_AUTHENTICATION_CLASSES]


class AdminAPIView(APIView):
    """Base for admin routes: accepts the admin secret besides the usual credentials."""

    permission_classes = [IsAdmin]

    def get_authenticators(self):
        return [cls() for cls in admin_authentication_classes()]


class OpenOrAuthenticated(permissions.BasePermission):
    """Seed 001's open routes: anyone while ANONYMOUS_CHAT is on, else authenticated callers."""

    def has_permission(self, request, view) -> bool:
        from django.conf import settings

        return bool(settings.ANONYMOUS_CHAT or (request.user and request.user.is_authenticated))



class AdminForWrites(permissions.BasePermission):
    """Reads for any authenticated caller; writes for admins only."""

    message = "Admin privileges required."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or bool(user.is_staff)


class AdminAuthMixin:
    """Accept the admin secret on this view besides the usual credentials."""

    def get_authenticators(self):
        return [cls() for cls in admin_authentication_classes()]
