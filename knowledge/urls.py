"""Knowledge routes (seed 004), included at the /api/v1 root."""

from django.urls import path

from knowledge import documents_apis, memories_apis

urlpatterns = [
    path("memories", memories_apis.MemoryListApi.as_view(), name="memories"),
    path("memories/search", memories_apis.MemorySearchApi.as_view(), name="memories-search"),
    path("memories/<str:memory_id>", memories_apis.MemoryDetailApi.as_view(), name="memories-detail"),
    path("documents", documents_apis.DocumentListApi.as_view(), name="documents"),
    path("documents/search", documents_apis.DocumentSearchApi.as_view(), name="documents-search"),
    path("documents/<str:document_id>", documents_apis.DocumentDetailApi.as_view(), name="documents-detail"),
]
