from django.contrib import admin

from knowledge.models import Document, Memory


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "memory_type", "importance_score", "source", "use_count", "created_at")
    list_filter = ("memory_type", "source")
    search_fields = ("content", "user__username")
    exclude = ("embedding",)
    raw_id_fields = ("user",)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "mime_type", "status", "chunk_count", "created_at")
    list_filter = ("status", "mime_type")
    search_fields = ("title", "owner__email")
    readonly_fields = ("chunk_count", "size_bytes", "error", "created_at", "updated_at")
    exclude = ("source",)
