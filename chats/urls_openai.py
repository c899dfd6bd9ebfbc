"""OpenAI-compatible API, mounted at /v1/. Async views; errors in OpenAI's shape."""

from django.urls import path, re_path

from chats import openai_api as views
from chats.completion_apis import documented

urlpatterns = [
    path("chat/completions", documented(views.chat_completions, views.ChatCompletionsDeclaration),
         name="openai-chat-completions"),
    path("models", documented(views.models, views.ModelsDeclaration), name="openai-models"),
    path("models/<str:model_id>", documented(views.model_detail, views.ModelDetailDeclaration),
         name="openai-model-detail"),
    path("embeddings", documented(views.embeddings_create, views.EmbeddingsDeclaration), name="openai-embeddings"),
    re_path(r"^(?P<path>.*)$", views.not_found, name="openai-not-found"),
]
