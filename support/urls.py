"""Support routes. ``urlpatterns`` go under /api/v1 (after the accounts ``users/`` routes, so
``/users/profile`` keeps winning over ``/users/{user_id}``); ``root_urlpatterns`` are seed 002's
routes again at the root, as that seed writes them."""

from django.urls import path

from support import apis, team_apis


def seed_002_urlpatterns(suffix: str = "") -> list:
    return [
        path("db-status", apis.DbStatusApi.as_view(), name=f"db-status{suffix}"),
        path("users", apis.UserListApi.as_view(), name=f"users{suffix}"),
        path("users/<str:user_id>", apis.UserDetailApi.as_view(), name=f"user-detail{suffix}"),
        path("users/<str:user_id>/chatbots", apis.UserChatbotsApi.as_view(), name=f"user-chatbots{suffix}"),
        path("chatbots", apis.ChatbotListApi.as_view(), name=f"chatbots{suffix}"),
        path("chatbots/<str:chatbot_id>", apis.ChatbotDetailApi.as_view(), name=f"chatbot-detail{suffix}"),
        path("chatbots/<str:chatbot_id>/api-keys", apis.ChatbotKeyListApi.as_view(),
             name=f"chatbot-api-keys{suffix}"),
        path("chatbots/<str:chatbot_id>/api-keys/<str:key_id>", apis.ChatbotKeyRevokeApi.as_view(),
             name=f"chatbot-api-key-revoke{suffix}"),
    ]


urlpatterns = [
    path("chat/chat", apis.SupportChatApi.as_view(), name="chat-chat"),
    path("chat/faqs", apis.FAQListApi.as_view(), name="faqs"),
    path("chat/faqs/search", apis.FAQSearchApi.as_view(), name="faq-search"),
    path("chat/faqs/<str:faq_id>", apis.FAQDetailApi.as_view(), name="faq-detail"),
    path("logs/logs", apis.LogListApi.as_view(), name="customer-logs"),
    path("logs/logs/summary", apis.LogSummaryApi.as_view(), name="customer-logs-summary"),
    path("logs/logs/trending", apis.LogTrendingApi.as_view(), name="customer-logs-trending"),
    path("logs/logs/<str:log_id>", apis.LogDetailApi.as_view(), name="customer-log-detail"),
    path("teams/<str:team_id>/chatbots", team_apis.TeamChatbotListApi.as_view(), name="team-chatbots"),
    *seed_002_urlpatterns(),
]

root_urlpatterns = seed_002_urlpatterns("-root")
