"""The site's URLs: the admin, the chat app, and the app's login pages (docs/integrate.md)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from chatcluster.admin import cluster_view
from chatcluster.urls import auth_urlpatterns

urlpatterns = [
    path("admin/cluster/", admin.site.admin_view(cluster_view), name="admin-cluster"),
    # The app's admin pages moved with its label (chat -> chatcluster); old links still work.
    path("admin/chat/<path:rest>", RedirectView.as_view(url="/admin/chatcluster/%(rest)s", permanent=True)),
    path("admin/", admin.site.urls),
    path("", include("chatcluster.urls")),
    *auth_urlpatterns,
]
