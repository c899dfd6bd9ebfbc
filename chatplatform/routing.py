"""WebSocket routes, collected from the apps that stream."""

from chats.routing import websocket_urlpatterns as chat_websockets

websocket_urlpatterns: list = [*chat_websockets]
