"""The app's settings: CHATCLUSTER over the environment over safe defaults."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from chatcluster.conf import KEYS, ChatSettings, channel_layer_config, chat_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment of a fresh deployment: none of the app's variables set."""
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    monkeypatch.undo()
    chat_settings.reload()


def fresh() -> ChatSettings:
    return ChatSettings()


def test_with_nothing_set_every_key_has_its_default(env: pytest.MonkeyPatch) -> None:
    with override_settings():
        from django.conf import settings

        del settings.CHATCLUSTER
        conf = fresh()
        assert conf.PRESENCE_TTL == 15
        assert conf.REDIS_URLS == ["redis://127.0.0.1:6379/0"]
        assert conf.CHAT_POLICY == "chatcluster.policy.MembershipPolicy"


def test_the_namespace_wins_over_the_environment_which_wins_over_the_default(env: pytest.MonkeyPatch) -> None:
    env.setenv("PRESENCE_TTL", "20")
    env.setenv("CHAT_MAX_BODY", "500")
    with override_settings(CHATCLUSTER={"PRESENCE_TTL": 30}):
        conf = fresh()
        assert (conf.PRESENCE_TTL, conf.CHAT_MAX_BODY, conf.DRAIN_GRACE) == (30, 500, 5)


def test_a_change_of_the_namespace_is_seen_at_once(chat_conf: object) -> None:
    chat_conf.CHAT_MAX_BODY = 7  # type: ignore[attr-defined]
    assert chat_settings.CHAT_MAX_BODY == 7


def test_an_unknown_key_is_refused_by_name(env: pytest.MonkeyPatch) -> None:
    with override_settings(CHATCLUSTER={"PRESENCE_TLL": 3}), pytest.raises(ImproperlyConfigured, match="PRESENCE_TLL"):
        fresh().PRESENCE_TTL  # noqa: B018


def test_a_value_out_of_range_is_refused_by_name(env: pytest.MonkeyPatch) -> None:
    env.setenv("DRAIN_GRACE", "90")
    with pytest.raises(ImproperlyConfigured, match="DRAIN_GRACE"):
        fresh().DRAIN_GRACE  # noqa: B018


def test_several_redis_urls_become_the_channel_layers_shards(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_URL", "redis://10.0.0.1:6379/0, redis://10.0.0.2:6379/0")
    chat_settings.reload()
    hosts = channel_layer_config()["CONFIG"]["hosts"]  # type: ignore[index]
    assert [h["address"] for h in hosts] == ["redis://10.0.0.1:6379/0", "redis://10.0.0.2:6379/0"]


def test_sentinels_and_master_names_become_one_shard_per_master(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_SENTINELS", "10.0.0.5:26379,10.0.0.6:26379")
    env.setenv("REDIS_MASTER_NAME", "chat-a,chat-b")
    env.setenv("REDIS_URL", "redis://:pw@ignored:6379/2")
    sentinels = [("10.0.0.5", 26379), ("10.0.0.6", 26379)]
    assert fresh().REDIS_LAYER_HOSTS == [
        {"sentinels": sentinels, "master_name": name, "db": 2, "password": "pw"} for name in ("chat-a", "chat-b")
    ]


def test_sentinels_without_a_master_name_are_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_SENTINELS", "10.0.0.5:26379")
    with pytest.raises(ImproperlyConfigured, match="REDIS_MASTER_NAME"):
        fresh().REDIS_LAYER_HOSTS  # noqa: B018


def test_a_sentinel_address_without_a_port_is_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_SENTINELS", "sentinel-a")
    env.setenv("REDIS_MASTER_NAME", "chat")
    with pytest.raises(ImproperlyConfigured, match="host:port"):
        fresh().REDIS_SENTINELS  # noqa: B018


def test_channel_layer_connections_time_out_and_retry_as_configured(env: pytest.MonkeyPatch) -> None:
    # redis-py waits for a closing socket only this long; without it a close can hang.
    env.setenv("REDIS_CONNECT_TIMEOUT", "3")
    env.setenv("REDIS_SOCKET_TIMEOUT", "4")
    env.setenv("REDIS_RETRIES", "4")
    chat_settings.reload()
    (host,) = channel_layer_config()["CONFIG"]["hosts"]  # type: ignore[index]
    assert (host["socket_connect_timeout"], host["socket_timeout"]) == (3.0, 4.0)
    assert host["retry"].get_retries() == 4


def test_metrics_allow_takes_networks_and_refuses_a_bad_one_by_name(env: pytest.MonkeyPatch) -> None:
    env.setenv("METRICS_ALLOW", "10.0.0.0/8, 2001:db8::1")
    assert [str(n) for n in fresh().METRICS_ALLOW] == ["10.0.0.0/8", "2001:db8::1/128"]
    env.setenv("METRICS_ALLOW", "10.0.0.0/8,not-a-network")
    with pytest.raises(ImproperlyConfigured, match=re.escape("METRICS_ALLOW='10.0.0.0/8,not-a-network'")):
        fresh().METRICS_ALLOW  # noqa: B018
