"""WebSocket routes for chat (seeds 000, 001, 003)."""

websocket_urlpatterns: list = []
