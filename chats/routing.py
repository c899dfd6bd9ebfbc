"""WebSocket routes for chat (seeds 000, 001, 003)."""

from django.urls import re_path

from chats.transports import websocket

websocket_urlpatterns: list = [
    re_path(r"^ws/chat/?$", websocket.ChatConsumer.as_asgi()),
    re_path(r"^ws/chat/(?P<conversation_id>[^/]+)/?$", websocket.ConversationChatConsumer.as_asgi()),
]
