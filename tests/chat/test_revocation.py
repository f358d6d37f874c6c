"""Access ends while sockets are open: logout, deactivation, removal from a private room.

Each case runs on a real cluster with the user's sockets on different nodes, and each
must take effect on all of them within a few seconds.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.cluster import Client, RunningCluster

pytestmark = pytest.mark.cluster

# The broadcast acts in milliseconds; the access review (CHAT_ACCESS_RECHECK=1 s in the
# test cluster) is the backstop. Either way, well within this.
WITHIN = 5.0


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_logging_out_closes_that_session_s_sockets_on_every_node(cluster: RunningCluster) -> None:
    user = name("out")
    browser = cluster.login(user)
    other_browser = cluster.login(user)
    sockets = [await Client.open_with_cookies(cluster.node_port(i), browser.cookies) for i in range(2)]
    elsewhere = await Client.open_with_cookies(cluster.node_port(2), other_browser.cookies)
    for client in [*sockets, elsewhere]:
        assert (await client.subscribe(name("r")))["type"] == "subscribed"
    answer = browser.post("/accounts/logout/", data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]})
    assert answer.status_code == 302
    codes = await asyncio.gather(*(client.closed(WITHIN) for client in sockets))
    assert codes == [4401, 4401]
    # Another browser of the same user keeps its session and its socket.
    await elsewhere.send(type="ping", ref="still")
    assert (await elsewhere.until(lambda f: f.get("ref") == "still"))["type"] == "pong"
    await elsewhere.close()


async def test_deactivating_a_user_closes_all_their_sockets_on_every_node(cluster: RunningCluster) -> None:
    user = name("gone")
    browser = cluster.login(user)
    (token,) = cluster.tokens(user)
    sockets = [
        await Client.open_with_cookies(cluster.node_port(0), browser.cookies),
        await Client.open(cluster.node_port(1), token),
        await Client.open(cluster.node_port(2), token),
    ]
    for client in sockets:
        await client.send(type="ping", ref="up")
        await client.until(lambda f: f.get("ref") == "up")
    cluster.shell(
        "from django.contrib.auth.models import User\n"
        f"u = User.objects.get(username={user!r}); u.is_active = False; u.save()\n"
    )
    codes = await asyncio.gather(*(client.closed(WITHIN) for client in sockets))
    assert codes == [4401, 4401, 4401]
    again = await Client.open(cluster.node_port(0), token)
    assert await again.closed(WITHIN) == 4401


async def test_a_password_change_without_any_broadcast_is_caught_by_the_access_review(
    cluster: RunningCluster,
) -> None:
    user = name("pw")
    (token,) = cluster.tokens(user)
    client = await Client.open(cluster.node_port(1), token)
    # QuerySet.update sends no signal: only the nodes' own review can notice.
    cluster.shell(
        "from django.contrib.auth.hashers import make_password\n"
        "from django.contrib.auth.models import User\n"
        f"User.objects.filter(username={user!r}).update(password=make_password('new-secret-2'))\n"
    )
    assert await client.closed(WITHIN) == 4401


async def test_removing_a_member_ends_their_subscriptions_on_every_node(cluster: RunningCluster) -> None:
    room, member, kept = name("priv"), name("member"), name("kept")
    tm, tk = cluster.tokens(member, kept)
    cluster.shell(
        "from django.contrib.auth.models import User\n"
        "from chatcluster.models import Membership, Room\n"
        f"room = Room.objects.create(slug={room!r}, title='secret', is_private=True)\n"
        f"for name in ({member!r}, {kept!r}):\n"
        "    Membership.objects.create(room=room, user=User.objects.get(username=name))\n"
    )
    removed = [await Client.open(cluster.node_port(i), tm) for i in range(2)]
    stays = await Client.open(cluster.node_port(2), tk)
    for client in [*removed, stays]:
        assert (await client.subscribe(room))["type"] == "subscribed"
    cluster.shell(
        "from chatcluster.models import Membership\n"
        f"Membership.objects.get(room__slug={room!r}, user__username={member!r}).delete()\n"
    )
    for client in removed:
        notice = await client.until(lambda f: f["type"] == "error" and f.get("room") == room, timeout=WITHIN)
        assert notice["code"] == "forbidden"
    await stays.send(type="publish", room=room, body="members only", ref="m")
    assert (await stays.until(lambda f: f.get("ref") == "m"))["type"] == "ack"
    assert (await stays.until(lambda f: f["type"] == "message"))["body"] == "members only"
    for client in removed:
        with pytest.raises(TimeoutError):
            await client.until(lambda f: f["type"] == "message", timeout=1.0)
        # And they cannot come back in.
        assert (await client.subscribe(room))["code"] == "forbidden"
        await client.close()
    await stays.close()


async def test_a_user_may_hold_only_so_many_sockets_across_the_cluster(cluster: RunningCluster) -> None:
    user = name("many")
    (token,) = cluster.tokens(user)
    held = [await Client.open(cluster.node_port(i % 3), token) for i in range(5)]  # the test cluster allows 5
    for client in held:
        await client.send(type="ping", ref="p")
        await client.until(lambda f: f.get("ref") == "p")
    extra = await Client.open(cluster.node_port(1), token)
    assert await extra.closed(WITHIN) == 4429
    await held[0].close()
    again = await Client.open(cluster.node_port(2), token)
    await again.send(type="ping", ref="p")
    assert (await again.until(lambda f: f.get("ref") == "p", timeout=WITHIN))["type"] == "pong"
    for client in [*held[1:], again]:
        await client.close()
