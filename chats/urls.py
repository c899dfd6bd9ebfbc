"""Conversation routes (seeds 000, 003, 004). Streaming and completion routes: urls_stream. Seed
003's support chat (``chat/chat``) is the support app's.

Included at the /api/v1 root, so ``users/conversations/analytics`` is /api/v1/users/conversations/analytics
(accounts' /users/ routes are fixed names; none shadows it).
"""

from django.urls import path

from chats import apis, schema, search_apis, turn_apis
from chats.schema import documented

_message_routes = [
    ("messages", apis.MessageListApi, "messages"),
    ("messages/<str:message_id>", turn_apis.MessageDetailApi, "message-detail"),
    ("messages/<str:message_id>/regenerate", turn_apis.RegenerateApi, "message-regenerate"),
]

urlpatterns = [
    # seed 000
    path("chat/message", documented(turn_apis.send_message, schema.SendMessageDeclaration), name="chat-message"),
    path("chat/conversation", turn_apis.ConversationStartApi.as_view(), name="chat-conversation-create"),
    path("chat/conversation/<str:conversation_id>", apis.ConversationDetailApi.as_view(),
         name="chat-conversation-detail"),
    *[path(f"chat/conversation/<str:conversation_id>/{suffix}", view.as_view(), name=f"chat-conversation-{name}")
      for suffix, view, name in _message_routes],
    # seeds 000 and 003 (one response serves both: see docs/compat.md)
    path("chat/conversations", apis.ConversationListApi.as_view(), name="chat-conversations"),
    path("chat/conversations/search", search_apis.ConversationSearchApi.as_view(), name="chat-conversations-search"),
    path("chat/conversations/<str:conversation_id>", apis.ConversationReadApi.as_view(),
         name="chat-conversations-detail"),
    path("users/conversations/analytics", apis.AnalyticsApi.as_view(), name="users-conversation-analytics"),
    # seed 004
    path("chats", apis.ChatListApi.as_view(), name="chats"),
    path("chats/import", apis.ImportApi.as_view(), name="chats-import"),
    path("chats/search", search_apis.ChatSearchApi.as_view(), name="chats-search"),
    path("chats/<str:chat_id>", apis.ChatDetailApi.as_view(), name="chats-detail"),
    path("chats/<str:chat_id>/export", apis.ExportApi.as_view(), name="chats-export"),
    *[path(f"chats/<str:chat_id>/{suffix}", view.as_view(), name=f"chats-{name}")
      for suffix, view, name in _message_routes],
]
