"""OpenAI-compatible API, mounted at /v1/."""

urlpatterns: list = []
