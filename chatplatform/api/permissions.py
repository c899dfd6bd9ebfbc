"""Permission classes shared by every app (the admin-secret view helpers are in
``accounts.permissions``, beside the admin-secret authentication class)."""

from __future__ import annotations

from rest_framework import permissions


class IsAdmin(permissions.BasePermission):
    """The admin secret, or a staff user (JWT or API key). Others: 403; no credentials: 401."""

    message = "Admin privileges required."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


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
