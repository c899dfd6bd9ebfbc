from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts import runtime
from accounts.models import ApiKey, AuthSession, RuntimeSetting, SsoIdentity, Team, TeamInvitation, TeamMembership, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["-created_at"]
    list_display = ["id", "username", "email", "full_name", "auth_provider", "is_staff", "is_active", "created_at"]
    list_filter = ["is_staff", "is_active", "auth_provider"]
    search_fields = ["id", "username", "email", "full_name"]
    readonly_fields = ["id", "created_at", "updated_at", "last_login"]
    fieldsets = (
        (None, {"fields": ("id", "username", "password")}),
        ("Profile", {"fields": ("email", "full_name", "auth_provider", "preferences")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "created_at", "updated_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "email", "password1", "password2")}),)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are shown masked; the hash is never displayed and keys cannot be created here."""

    list_display = ["id", "name", "user", "masked", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["id", "name", "prefix", "user__username", "user__email"]
    fields = ["id", "name", "user", "masked", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = ["id", "user", "masked", "created_at", "last_used_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset) -> None:
        from django.utils import timezone

        from accounts import credential_cache

        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        credential_cache.invalidate()  # a bulk update sends no save signal


@admin.register(AuthSession)
class AuthSessionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "created_at", "revoked_at", "ip_address"]
    search_fields = ["id", "user__username"]
    readonly_fields = ["id", "user", "created_at", "user_agent", "ip_address"]


@admin.register(SsoIdentity)
class SsoIdentityAdmin(admin.ModelAdmin):
    """Identities at OpenID Connect providers; deleting one unlinks it (the account stays)."""

    list_display = ["id", "user", "provider", "subject", "email", "created_at", "last_login_at"]
    list_filter = ["provider"]
    search_fields = ["id", "subject", "email", "user__username", "user__email"]
    readonly_fields = ["id", "user", "provider", "issuer", "subject", "email", "created_at", "last_login_at"]

    def has_add_permission(self, request) -> bool:
        return False


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["user"]


class TeamInvitationInline(admin.TabularInline):
    model = TeamInvitation
    fk_name = "team"
    extra = 0
    fields = ["invitee", "email", "role", "status", "invited_by", "created_at", "expires_at"]
    readonly_fields = ["invited_by", "created_at"]
    raw_id_fields = ["invitee"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    """Teams with their members and invitations. The REST API keeps a team's last owner; here an
    operator may fix anything, so mind that a team without an owner can only be changed here."""

    list_display = ["id", "name", "created_by", "created_at"]
    search_fields = ["id", "name", "memberships__user__username"]
    readonly_fields = ["id", "created_at", "updated_at"]
    raw_id_fields = ["created_by"]
    inlines = [TeamMembershipInline, TeamInvitationInline]


@admin.register(TeamInvitation)
class TeamInvitationAdmin(admin.ModelAdmin):
    list_display = ["id", "team", "invitee", "email", "role", "status", "created_at", "expires_at"]
    list_filter = ["status", "role"]
    search_fields = ["id", "email", "invitee__username", "team__name"]
    raw_id_fields = ["team", "invitee", "invited_by"]


@admin.register(RuntimeSetting)
class RuntimeSettingAdmin(admin.ModelAdmin):
    """Runtime settings (``accounts.runtime``): a save is effective in every worker within a second."""

    list_display = ["key", "value", "updated_at"]

    def save_model(self, request, obj, form, change) -> None:
        obj.value = runtime.runtime_validate({obj.key: obj.value})[obj.key]
        super().save_model(request, obj, form, change)
        runtime.runtime_refresh()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        runtime.runtime_refresh()

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset)
        runtime.runtime_refresh()
