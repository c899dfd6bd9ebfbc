"""Test-only URLconf: the real routes plus a chat-like probe view that accepts chatbot keys.

Used with ``@pytest.mark.urls("support.tests.chatbot_probe_urls")`` so chatbot-key
authentication runs through the full middleware stack (the chat routes belong to the chat core).
"""

from __future__ import annotations

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from chatplatform.urls import urlpatterns as real_urlpatterns
from support import selectors
from support.authentication import ChatbotKeyAllowed


class ChatProbeApi(ChatbotKeyAllowed, APIView):
    def get(self, request):
        overrides = selectors.chat_overrides_for(request.auth)
        return Response({
            "user_id": request.user.id,
            "auth": type(request.auth).__name__,
            "chatbot_id": overrides["chatbot_id"] if overrides else None,
            "system": overrides["system"] if overrides else None,
            "model": overrides["model"] if overrides else None,
        })


urlpatterns = [
    path("api/v1/_test/chat-probe", ChatProbeApi.as_view(), name="test-chat-probe"),
    *real_urlpatterns,
]
