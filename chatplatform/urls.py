"""Root URLs. Every seed's routes answer under /api/v1 (seed 002's also at the root)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts.urls import auth_urlpatterns, team_urlpatterns, user_urlpatterns
from adminpanel import apis as adminpanel_apis
from support.urls import root_urlpatterns as support_root_urlpatterns

api_v1 = [
    path("health", adminpanel_apis.HealthApi.as_view(), name="health-v1"),
    path("health/detailed", adminpanel_apis.DetailedHealthApi.as_view(), name="health-detailed"),
    path("auth/", include(auth_urlpatterns)),
    path("users/", include(user_urlpatterns)),
    path("", include(team_urlpatterns)),
    path("", include("providers.urls")),
    path("", include("knowledge.urls")),
    path("", include("chats.urls")),
    path("", include("chats.urls_stream")),
    path("", include("support.urls")),  # after users/: /users/profile wins over /users/{user_id}
]

urlpatterns = [
    path("health", adminpanel_apis.HealthApi.as_view(), name="health"),
    path("api/v1/", include(api_v1)),
    path("v1/", include("chats.urls_openai")),
    path("", include(support_root_urlpatterns)),  # seed 002's routes at the root, as written there
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="swagger-ui"),
    path("redoc", SpectacularRedocView.as_view(url_name="openapi-schema"), name="redoc"),
    path("admin/", admin.site.urls),
]
