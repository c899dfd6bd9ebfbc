from django.contrib import admin

from knowledge.models import Memory


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "memory_type", "importance_score", "source", "use_count", "created_at")
    list_filter = ("memory_type", "source")
    search_fields = ("content", "user__username")
    exclude = ("embedding",)
    raw_id_fields = ("user",)
