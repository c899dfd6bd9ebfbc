from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_save


class ProvidersConfig(AppConfig):
    name = "providers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from providers import selectors
        from providers.models import Model, ProviderConfig

        def _announce(*args, **kwargs) -> None:
            selectors.announce_change()

        def _invalidate(*args, **kwargs) -> None:
            selectors.invalidate()

        for model in (ProviderConfig, Model):
            post_save.connect(_announce, sender=model, dispatch_uid=f"providers-invalidate-save-{model.__name__}")
            post_delete.connect(_announce, sender=model, dispatch_uid=f"providers-invalidate-del-{model.__name__}")
        setting_changed.connect(_invalidate, dispatch_uid="providers-invalidate-settings")
