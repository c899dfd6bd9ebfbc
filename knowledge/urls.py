"""Knowledge routes, included at the /api/v1 root."""

from django.urls import path

from knowledge import documents_apis

urlpatterns = [
    path("documents", documents_apis.DocumentListApi.as_view(), name="documents"),
    path("documents/search", documents_apis.DocumentSearchApi.as_view(), name="documents-search"),
    path("documents/<str:document_id>", documents_apis.DocumentDetailApi.as_view(), name="documents-detail"),
]
