from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from chatcluster import api, api_rooms, views

app_name = "chatcluster"

urlpatterns = [
    path("", views.index, name="index"),
    path("rooms/<slug:slug>/", views.index, name="room"),
    path("accounts/signup/", views.signup, name="signup"),
    path("api/token", api.token_view, name="api-token"),
    path("api/rooms", api.rooms_view, name="api-rooms"),
    path("api/dms", api.dms_view, name="api-dms"),
    path("api/search", api.search_view, name="api-search"),
    path("api/rooms/<str:slug>/messages", api.room_messages_view, name="api-room-messages"),
    path("api/rooms/<str:slug>/read", api.room_read_view, name="api-room-read"),
    path("api/rooms/<str:slug>/join", api_rooms.room_join_view, name="api-room-join"),
    path("api/rooms/<str:slug>/leave", api_rooms.room_leave_view, name="api-room-leave"),
    path("api/rooms/<str:slug>/members", api_rooms.room_members_view, name="api-room-members"),
    path("api/rooms/<str:slug>/moderation", api_rooms.room_moderation_view, name="api-room-moderation"),
    path("api/users", api_rooms.users_view, name="api-users"),
    path("healthz", api.healthz, name="healthz"),
    path("readyz", api.readyz, name="readyz"),
    path("metrics", api.metrics_view, name="metrics"),
]

# Django's own views under their usual names, so `{% url 'login' %}` works.
auth_urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(template_name="chatcluster/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
