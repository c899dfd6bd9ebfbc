"""Django admin for conversations and messages: read-mostly (titles and archive flags may be
edited, conversations deleted; messages are never edited or added here)."""

from __future__ import annotations

from django.contrib import admin

from chats.models import Conversation, Message


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "user", "model", "message_count", "is_archived", "updated_at")
    list_filter = ("is_archived", "is_active", "provider")
    search_fields = ("id", "title", "user__username", "user__email")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    ordering = ("-updated_at",)
    fields = ("id", "user", "title", "model", "provider", "system_prompt", "metadata", "settings",
              "is_archived", "is_active", "active_leaf", "message_count", "created_at", "updated_at")
    readonly_fields = ("id", "user", "model", "provider", "system_prompt", "metadata", "settings",
                       "active_leaf", "message_count", "created_at", "updated_at")
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "role", "short_content", "model", "status", "total_tokens",
                    "created_at")
    list_filter = ("role", "status", "provider")
    search_fields = ("id", "conversation__id", "conversation__user__username")
    list_select_related = ("conversation",)
    ordering = ("-created_at",)
    show_full_result_count = False

    @admin.display(description="content")
    def short_content(self, message: Message) -> str:
        return message.content[:80]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # view-only: the change page renders read-only for users with view permission
