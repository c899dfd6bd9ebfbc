"""Conversation routes (seeds 000, 003, 004). Streaming and completion routes: urls_stream."""

urlpatterns: list = []
