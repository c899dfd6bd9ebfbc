from django.urls import path

from knowledge import webhooks_apis

urlpatterns = [
    path("webhooks", webhooks_apis.WebhookListApi.as_view(), name="webhooks"),
    path("webhooks/<str:webhook_id>", webhooks_apis.WebhookDetailApi.as_view(), name="webhook-detail"),
    path("webhooks/<str:webhook_id>/deliveries", webhooks_apis.WebhookDeliveryListApi.as_view(),
         name="webhook-deliveries"),
]
