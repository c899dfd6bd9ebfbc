from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import (
            checks,  # noqa: F401  (registers the SSO configuration checks)
            credential_cache,
            runtime,
        )
        from accounts.models import ApiKey, AuthSession, User
        from chatplatform.api import config

        config.register(runtime.source)
        credential_cache.watch(User, ApiKey, AuthSession)
