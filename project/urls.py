from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from chat.admin import cluster_view
from chat.urls import auth_urlpatterns

urlpatterns = [
    path("admin/cluster/", admin.site.admin_view(cluster_view), name="admin-cluster"),
    path("admin/", admin.site.urls),
    path("", include("chat.urls")),
    *auth_urlpatterns,
]
