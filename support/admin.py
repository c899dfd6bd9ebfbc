from django import forms
from django.contrib import admin

from chatplatform.api.exceptions import AppError
from support import services
from support.models import FAQ, Chatbot, ChatbotAPIKey, CustomerLog


@admin.register(FAQ)
class FAQAdmin(admin.ModelAdmin):
    list_display = ["question", "category", "published", "order", "view_count", "updated_at"]
    list_filter = ["published", "category"]
    list_editable = ["published", "order"]
    search_fields = ["question", "answer"]
    readonly_fields = ["view_count", "created_at", "updated_at"]
    actions = ["reindex_embeddings"]

    @admin.action(description="Recompute the embeddings of the selected FAQs (in the background)")
    def reindex_embeddings(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        services.faq_reindex_enqueue(faq_ids=ids)
        self.message_user(request, f"Re-indexing {len(ids)} FAQs in the background.")

    def save_model(self, request, obj, form, change):
        # Through the service, so the embedding is (re)computed in the background with the text.
        fields = {name: form.cleaned_data[name] for name in ("question", "answer", "category", "published", "order")
                  if name in form.cleaned_data}
        if change:
            original = FAQ.objects.get(pk=obj.pk)
            services.faq_update(faq=original, **fields)
        else:
            created = services.faq_create(**fields)
            obj.pk, obj.id = created.pk, created.id


@admin.register(CustomerLog)
class CustomerLogAdmin(admin.ModelAdmin):
    list_display = ["title", "user", "log_type", "status", "priority", "category", "created_at", "resolved_at"]
    list_filter = ["status", "priority", "log_type", "category"]
    search_fields = ["title", "description", "user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "updated_at", "resolved_at", "conversation_id"]

    def save_model(self, request, obj, form, change):
        if change:
            original = CustomerLog.objects.get(pk=obj.pk)
            fields = {name: form.cleaned_data[name] for name in
                      ("title", "description", "category", "priority", "log_type", "status")
                      if name in form.cleaned_data}
            services.customer_log_update(log=original, actor=request.user, **fields)
        else:
            super().save_model(request, obj, form, change)


class ChatbotAPIKeyInline(admin.TabularInline):
    model = ChatbotAPIKey
    extra = 0
    can_delete = False
    fields = ["name", "masked", "revoked", "created_at", "last_used_at"]
    readonly_fields = ["name", "masked", "created_at", "last_used_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # keys are made through the API, which shows the raw key once


class ChatbotAdminForm(forms.ModelForm):
    class Meta:
        model = Chatbot
        fields = ["name", "owner", "llm_endpoint_url", "model", "system_prompt"]

    def clean(self):
        data = super().clean()
        try:
            data["llm_endpoint_url"] = services.chatbot_validate_fields(
                llm_endpoint_url=data.get("llm_endpoint_url") or "", model=(data.get("model") or "").strip())
        except AppError as exc:
            for field, messages in (exc.details or {"llm_endpoint_url": [exc.message]}).items():
                self.add_error(field if field in self.fields else None, messages)
        return data


@admin.register(Chatbot)
class ChatbotAdmin(admin.ModelAdmin):
    form = ChatbotAdminForm
    list_display = ["name", "owner", "model", "llm_endpoint_url", "created_at"]
    search_fields = ["name", "owner__username"]
    raw_id_fields = ["owner"]
    inlines = [ChatbotAPIKeyInline]

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in ("name", "llm_endpoint_url", "model", "system_prompt")
                  if name in form.cleaned_data}
        if change:
            services.chatbot_update(chatbot=Chatbot.objects.get(pk=obj.pk), **fields)
        else:
            created = services.chatbot_create(owner=form.cleaned_data["owner"], **fields)
            obj.pk, obj.id = created.pk, created.id
