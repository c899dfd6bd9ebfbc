"""Completion and SSE routes (seeds 001 and 004), included under /api/v1/. Async views."""

from django.urls import path

from chats import schema, turn_apis
from chats.schema import documented

urlpatterns = [
    path("chat/completion", documented(turn_apis.chat_completion, schema.ChatCompletionDeclaration),
         name="chat-completion"),
    path("chat/stream", documented(turn_apis.chat_stream, schema.ChatStreamDeclaration), name="chat-stream"),
    path("chat/stream/<str:stream_id>",
         documented(turn_apis.chat_stream_resume, schema.ChatStreamResumeDeclaration), name="chat-stream-resume"),
    path("chat/completions", documented(turn_apis.chat_completions, schema.ChatCompletionsDeclaration),
         name="chat-completions"),
]
