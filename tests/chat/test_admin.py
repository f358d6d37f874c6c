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


def _staff(name: str, *codenames: str) -> Client:
    user = User.objects.create_user(name, is_staff=True)
    for codename in ("view_message", "view_sanction", "add_sanction", "view_moderationaction", *codenames):
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="chatcluster"))
    client = Client()
    client.force_login(user)
    return client


def test_changes_show_in_the_admin_and_dm_bodies_need_their_permission() -> None:
    from chatcluster.models import Room
    from chatcluster.services.changes import message_edit, message_react
    from chatcluster.services.dms import dm_open
    from chatcluster.services.messages import message_create

    ann, bob = User.objects.create_user("ann"), User.objects.create_user("bob")
    room = Room.objects.create(slug="open-room")
    seq = message_create(room=room, author=ann, body="public words").seq
    message_edit(slug="open-room", user=ann, target=seq, body="public words, fixed")
    message_react(slug="open-room", user=bob, target=seq, emoji="👍", on=True)
    dm = dm_open(caller=ann, usernames=["bob"])
    message_create(room=dm, author=ann, body="private words")
    helpdesk = _staff("helpdesk")
    listing = helpdesk.get("/admin/chatcluster/message/").content.decode()
    assert "public words, fixed" in listing and ">Edit<" in listing and ">Reaction<" in listing
    assert "private words" not in listing and "view_direct_messages permission" in listing
    assert "private words" not in helpdesk.get("/admin/chatcluster/message/?q=private").content.decode()
    trusted = _staff("trusted", "view_direct_messages")
    assert "private words" in trusted.get("/admin/chatcluster/message/").content.decode()


def test_the_admin_deletes_in_the_stream_and_bans_through_moderation() -> None:
    from chatcluster.models import Message, ModerationAction, Room, Sanction
    from chatcluster.services.messages import message_create

    ann = User.objects.create_user("ann")
    room = Room.objects.create(slug="open-room")
    message_create(room=room, author=ann, body="spam")
    client = _staff("mod")
    message = Message.objects.get(room=room, seq=1)
    client.post("/admin/chatcluster/message/", {"action": "delete_in_stream", "_selected_action": [message.pk]})
    assert Message.objects.get(pk=message.pk).deleted
    assert Message.objects.filter(room=room, kind="delete", target=1).exists()
    answer = client.post(
        "/admin/chatcluster/sanction/add/", {"room": room.pk, "user": ann.pk, "kind": "ban"}, follow=False
    )
    assert answer.status_code == 302, answer.content[:2000]
    assert Sanction.objects.filter(room=room, user=ann, kind="ban").exists()
    assert list(ModerationAction.objects.values_list("action", flat=True).order_by("id")) == ["delete", "ban"]
    assert client.get("/admin/chatcluster/moderationaction/").status_code == 200
