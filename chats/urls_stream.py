"""Completion and SSE routes (seeds 001 and 004), included under /api/v1/. Async views."""

from django.urls import path

from chats import completion_apis as views
from chats.completion_apis import documented

urlpatterns = [
    path("chat/completion", documented(views.chat_completion, views.ChatCompletionDeclaration),
         name="chat-completion"),
    path("chat/stream", documented(views.chat_stream, views.ChatStreamDeclaration), name="chat-stream"),
    path("chat/stream/<str:stream_id>",
         documented(views.chat_stream_resume, views.ChatStreamResumeDeclaration), name="chat-stream-resume"),
    path("chat/completions", documented(views.chat_completions, views.ChatCompletionsDeclaration),
         name="chat-completions"),
]
