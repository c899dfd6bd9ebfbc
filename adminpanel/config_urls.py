from django.urls import path

from adminpanel import config_apis

urlpatterns = [
    path("admin/system/config", config_apis.SystemConfigApi.as_view(), name="admin-system-config"),
]
