"""Test-only URLconf: the real routes plus a chat-like probe view that accepts chatbot keys.

Used with ``@pytest.mark.urls("support.tests.chatbot_probe_urls")`` so chatbot-key
authentication runs through the full middleware stack (the chat routes belong to the chat core).
"""

from __future__ import annotations

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from chatplatform.urls import urlpatterns as real_urlpatterns
from providers.profiles import profile_of
from support.authentication import ChatbotKeyAllowed


class ChatProbeApi(ChatbotKeyAllowed, APIView):
    def get(self, request):
        profile = profile_of(request.auth)
        return Response({
            "user_id": request.user.id,
            "auth": type(request.auth).__name__,
            "chatbot_id": request.auth.chatbot_id if profile else None,
            "system": profile.system_prompt if profile else None,
            "model": profile.model if profile else None,
        })


urlpatterns = [
    path("api/v1/_test/chat-probe", ChatProbeApi.as_view(), name="test-chat-probe"),
    *real_urlpatterns,
]
