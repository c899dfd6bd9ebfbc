from django.apps import AppConfig


class ApiConfig(AppConfig):
    """Shared API plumbing: error envelope, middleware, auth classes, system checks."""

    name = "chatplatform.api"
    label = "api"

    def ready(self) -> None:
        from chatplatform.api import checks, schema  # noqa: F401  (registers checks and extensions)
