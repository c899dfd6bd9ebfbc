"""OpenAI-compatible API, mounted at /v1/. Async views; errors in OpenAI's shape."""

from django.urls import path, re_path

from chats import schema
from chats.schema import documented
from chats.transports import anthropic, responses
from chats.transports import openai as views

urlpatterns = [
    path("chat/completions", documented(views.chat_completions, schema.OpenAIChatCompletionsDeclaration),
         name="openai-chat-completions"),
    path("models", documented(views.models, schema.OpenAIModelsDeclaration), name="openai-models"),
    path("models/<str:model_id>", documented(views.model_detail, schema.OpenAIModelDetailDeclaration),
         name="openai-model-detail"),
    path("embeddings", documented(views.embeddings_create, schema.OpenAIEmbeddingsDeclaration),
         name="openai-embeddings"),
    path("responses", documented(responses.responses_create, schema.ResponsesDeclaration), name="openai-responses"),
    path("responses/<str:response_id>", documented(responses.response_detail, schema.ResponseDetailDeclaration),
         name="openai-response-detail"),
    path("messages", documented(anthropic.messages_create, schema.AnthropicMessagesDeclaration),
         name="anthropic-messages"),
    path("messages/count_tokens", documented(anthropic.count_tokens, schema.AnthropicCountTokensDeclaration),
         name="anthropic-count-tokens"),
    re_path(r"^(?P<path>.*)$", views.not_found, name="openai-not-found"),
]
