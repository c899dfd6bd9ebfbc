"""WebSocket routes, collected from the apps that stream (chats adds its consumers here)."""

websocket_urlpatterns: list = []
