from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_cluster_page_renders_for_staff() -> None:
    client = Client()
    client.force_login(User.objects.create_user("op", is_staff=True, is_superuser=True))
    response = client.get("/admin/cluster/")
    assert response.status_code == 200
    assert b"Live nodes" in response.content and b"Pub/sub channels" in response.content


def test_the_cluster_page_is_refused_to_non_staff() -> None:
    client = Client()
    client.force_login(User.objects.create_user("plain"))
    response = client.get("/admin/cluster/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_cluster_page_is_refused_to_staff_without_the_cluster_permission() -> None:
    client = Client()
    client.force_login(User.objects.create_user("helpdesk", is_staff=True))
    response = client.get("/admin/cluster/")
    assert response.status_code == 403
    assert b"Live nodes" not in response.content
    # ...and the admin does not link to it for them.
    assert b'href="/admin/cluster/"' not in client.get("/admin/").content


def test_the_cluster_page_opens_to_staff_given_the_cluster_permission() -> None:
    operator = User.objects.create_user("operator", is_staff=True)
    operator.user_permissions.add(
        Permission.objects.get(codename="view_cluster", content_type__app_label="chatcluster")
    )
    client = Client()
    client.force_login(operator)
    response = client.get("/admin/cluster/")
    assert response.status_code == 200 and b"Live nodes" in response.content
    assert b'href="/admin/cluster/"' in client.get("/admin/").content


@pytest.mark.parametrize(
    "page",
    [
        "/admin/chatcluster/room/",
        "/admin/chatcluster/message/",
        "/admin/chatcluster/membership/",
        "/admin/chatcluster/apikey/",
        "/admin/chatcluster/readmarker/",
    ],
)
def test_admin_lists_render(page: str) -> None:
    client = Client()
    client.force_login(User.objects.create_user("op", is_staff=True, is_superuser=True))
    assert client.get(page).status_code == 200


def test_read_markers_show_the_unread_count_and_cannot_be_edited() -> None:
    from chatcluster.models import ReadMarker, Room

    reader = User.objects.create_user("reader")
    room = Room.objects.create(slug="marked", last_seq=12)
    marker = ReadMarker.objects.create(user=reader, room=room, last_read_seq=5)
    client = Client()
    client.force_login(User.objects.create_user("op", is_staff=True, is_superuser=True))
    listing = client.get("/admin/chatcluster/readmarker/")
    assert listing.status_code == 200
    assert b'<td class="field-unread">7</td>' in listing.content
    assert client.post(f"/admin/chatcluster/readmarker/{marker.pk}/change/", {"last_read_seq": 0}).status_code == 403
    marker.refresh_from_db()
    assert marker.last_read_seq == 5
