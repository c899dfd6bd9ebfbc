"""WebSocket routes for chat (seeds 000, 001, 003)."""

from django.urls import re_path

from chats import consumers

websocket_urlpatterns: list = [
    re_path(r"^ws/chat/?$", consumers.ChatConsumer.as_asgi()),
    re_path(r"^ws/chat/(?P<conversation_id>[^/]+)/?$", consumers.ConversationChatConsumer.as_asgi()),
]
