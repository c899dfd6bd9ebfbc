"""The request log in the Django admin (read-only), and the usage dashboard linked from the index."""

from __future__ import annotations

from django.contrib import admin

from adminpanel.models import RequestLog

admin.site.index_template = "adminpanel/admin_index.html"


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "method", "path", "status", "duration_ms", "user", "request_id")
    list_filter = ("status", "method")
    search_fields = ("request_id", "path", "route")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in RequestLog._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
