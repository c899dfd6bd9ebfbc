from django import forms
from django.contrib import admin

from providers.models import Model, ProviderConfig, UsageRecord


class ProviderConfigForm(forms.ModelForm):
    new_api_key = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                                  help_text="Leave empty to keep the stored key. Stored encrypted.")
    clear_api_key = forms.BooleanField(required=False)

    class Meta:
        model = ProviderConfig
        fields = ["name", "kind", "team", "description", "base_url", "default_model", "enabled", "is_default",
                  "priority", "timeout", "max_retries", "settings", "fallbacks"]

    def save(self, commit: bool = True):
        config = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            config.api_key = ""
        elif self.cleaned_data.get("new_api_key"):
            config.api_key = self.cleaned_data["new_api_key"]
        if commit:
            config.save()
        return config


@admin.register(ProviderConfig)
class ProviderConfigAdmin(admin.ModelAdmin):
    form = ProviderConfigForm
    list_display = ["name", "kind", "team", "masked_key", "default_model", "enabled", "is_default", "priority"]
    list_filter = ["kind", "enabled", ("team", admin.EmptyFieldListFilter)]
    raw_id_fields = ["team"]
    readonly_fields = ["masked_key", "created_at", "updated_at"]


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ["id", "provider", "upstream_name", "context_length", "max_output_tokens",
                    "input_cost_per_1k", "output_cost_per_1k", "enabled", "public"]
    list_filter = ["provider", "enabled", "public"]
    search_fields = ["id", "name", "upstream_name"]


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "user", "provider", "model", "total_tokens", "cost", "latency_ms",
                    "status", "streamed"]
    list_filter = ["provider", "status", "streamed"]
    search_fields = ["id", "user__username", "request_id"]
    readonly_fields = [f.name for f in UsageRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
