from django.urls import path

from providers import apis, cache_apis, team_apis

urlpatterns = [
    path("models", apis.ModelListApi.as_view(), name="models"),
    path("models/<str:model_id>", apis.ModelDetailApi.as_view(), name="model-detail"),
    path("providers", apis.ProviderListApi.as_view(), name="providers"),
    path("providers/<slug:name>", apis.ProviderDetailApi.as_view(), name="provider-detail"),
    path("providers/<slug:name>/test", apis.ProviderTestApi.as_view(), name="provider-test"),
    path("providers/<slug:name>/health", apis.ProviderHealthApi.as_view(), name="provider-health"),
    path("gemini/register", apis.GeminiRegisterApi.as_view(), name="gemini-register"),
    path("gemini/providers", apis.GeminiProvidersApi.as_view(), name="gemini-providers"),
    path("gemini/test", apis.GeminiTestApi.as_view(), name="gemini-test"),
    path("gemini/configure", apis.GeminiConfigureApi.as_view(), name="gemini-configure"),
    path("gemini/health", apis.GeminiHealthApi.as_view(), name="gemini-health"),
    path("cache/stats", cache_apis.CacheStatsApi.as_view(), name="cache-stats"),
    path("cache/warm", cache_apis.CacheWarmApi.as_view(), name="cache-warm"),
    path("cache/warm/<str:task_id>", cache_apis.CacheWarmStatusApi.as_view(), name="cache-warm-status"),
    path("cache/clear", cache_apis.CacheClearApi.as_view(), name="cache-clear"),
    path("teams/<str:team_id>/providers", team_apis.TeamProviderListApi.as_view(), name="team-providers"),
    path("teams/<str:team_id>/providers/<slug:name>", team_apis.TeamProviderDetailApi.as_view(),
         name="team-provider"),
]
