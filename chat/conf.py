"""chatcluster's settings: one namespace, `CHATCLUSTER = {...}` in the host's settings.

Every key is also an environment variable of the same name, so an operator can set
any of them without touching code: a value in `CHATCLUSTER` wins, then the
environment, then the default below. Nothing is read at import, and a missing value
never fails: each default is safe for local development. A malformed one raises
`ImproperlyConfigured` naming the key, at first use.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from chatcluster.envparse import (
    parse_bool,
    parse_budget,
    parse_choice,
    parse_networks,
    parse_number,
    parse_sentinel,
    split_list,
)

NAMESPACE = "CHATCLUSTER"
# The frame types with a budget of their own (budget.py); "invalid" is what does not parse.
FRAME_KINDS = ("publish", "subscribe", "unsubscribe", "typing", "history", "ping", "edit", "delete", "react", "invalid")


@dataclass(frozen=True)
class Key:
    default: object
    parse: Callable[[str, object], object]
    # A number's upper bound, if it has one (deploy manifests are checked against it).
    maximum: float | None = None


def text(default: str) -> Key:
    return Key(default, lambda name, raw: str(raw))


def flag(default: bool) -> Key:
    return Key(default, parse_bool)


def number(default: float, *, minimum: float = 0, maximum: float | None = None) -> Key:
    return Key(default, lambda name, raw: parse_number(name, raw, minimum=minimum, maximum=maximum), maximum)


def integer(default: int, *, minimum: int = 0, maximum: int | None = None) -> Key:
    return Key(default, lambda name, raw: int(parse_number(name, raw, minimum=minimum, maximum=maximum)), maximum)


def budget(default: str) -> Key:
    return Key(default, parse_budget)


def strings(default: str) -> Key:
    return Key(default, lambda name, raw: split_list(raw))


# Each timing or size carries the reason for its value. docs/integrate.md lists them.
KEYS: dict[str, Key] = {
    # --- Redis -------------------------------------------------------------
    # One URL, or several separated by commas: independent Redis instances ("shards").
    # channels-redis spreads groups over them by a CRC32 hash of the name, and our own keys
    # follow the same hash (redis.py). Redis Cluster is not supported by channels-redis.
    "REDIS_URL": strings("redis://127.0.0.1:6379/0"),
    # Sentinel instead of fixed addresses: host:port,host:port and the monitored master
    # name(s), one shard each. REDIS_URL then gives only the database number and password.
    "REDIS_SENTINELS": Key("", lambda name, raw: [parse_sentinel(a) for a in split_list(raw)]),
    "REDIS_MASTER_NAME": strings(""),
    # runcluster only: private Redis instances it starts when REDIS_URL is unset.
    "REDIS_SHARDS": integer(1, minimum=1, maximum=16),
    # Seconds to open, or to close, one Redis connection; without it a close can hang.
    "REDIS_CONNECT_TIMEOUT": number(2, minimum=0.1),
    # Connections per shard in a node's own pool; past it a call waits REDIS_POOL_TIMEOUT
    # for one, so a burst of handshakes queues instead of erroring.
    "REDIS_MAX_CONNECTIONS": integer(64, minimum=1),
    "REDIS_POOL_TIMEOUT": number(5, minimum=0.1),
    # A command that finds its connection closed (restart, failover, cut link) reconnects
    # and runs again up to this many times, 50-500 ms apart, so no client sees an error
    # from an outage that is over. A timeout is never retried: the command may have run.
    "REDIS_RETRIES": integer(3, minimum=0),
    # Longest wait for one Redis reply: a Redis that accepts but does not answer must
    # not hold a caller forever.
    "REDIS_SOCKET_TIMEOUT": number(5, minimum=0.1),
    # pubsub: Redis PUBLISH/SUBSCRIBE, never drops. core: lists with a capacity, drops
    # when full. docs/architecture.md gives the measurements behind the default.
    "CHANNEL_LAYER": Key("pubsub", lambda name, raw: parse_choice(name, raw, ("pubsub", "core"))),
    # --- Nodes -------------------------------------------------------------
    "NODE_PORT": integer(0),
    "NODE_ID": text(""),
    # Run each node's event loop (under Twisted's asyncio reactor) on uvloop.
    "NODE_UVLOOP": flag(True),
    # Handshakes the kernel queues while the node is busy.
    "NODE_BACKLOG": integer(4096, minimum=16),
    # Long enough for clients to see 1012 and move, short enough for rolling restarts.
    "DRAIN_GRACE": number(5, minimum=0, maximum=30),
    # Largest frame a client may send: a full CHAT_MAX_BODY of 4-byte characters with room
    # for the JSON around it, far below what would let a client hog memory.
    "WS_MAX_FRAME": integer(64 * 1024, minimum=1024),
    # Pings keep idle sockets open through proxies with 60 s read timeouts and find dead
    # peers within interval + timeout.
    "WS_PING_INTERVAL": number(20, minimum=1),
    "WS_PING_TIMEOUT": number(30, minimum=1),
    # Handshakes per second a node admits (bursts of CHAT_ADMIT_BURST); past it new
    # sockets get 1013 and clients back off with jitter.
    "CHAT_ADMIT_RATE": number(1000, minimum=0.001),
    "CHAT_ADMIT_BURST": integer(1000, minimum=1),
    # runcluster's working directory for configs, logs and its private Redis.
    "CHAT_RUN_DIR": text(".run"),
    # --- Presence and typing ---------------------------------------------------
    # Three missed heartbeats: short enough that the online list is believable.
    "PRESENCE_TTL": number(15, minimum=0.1),
    # A dropped socket back within this many seconds never shows as left.
    "PRESENCE_GRACE": number(3, minimum=0),
    # Presence diffs gathered this long go out as one frame: live, yet not n² frames.
    "CHAT_PRESENCE_COALESCE": number(0.1, minimum=0),
    # One typing event per user and room per 2 s is enough for "X is typing…".
    "CHAT_TYPING_THROTTLE": number(2, minimum=0.1),
    # --- Messages ----------------------------------------------------------
    # Per-user publish budget shared by every node: enough for fast typists and paste
    # bursts. 0 turns it off (a trusted deployment, or a benchmark measuring its cost).
    "CHAT_PUBLISH_RATE": number(10, minimum=0),
    "CHAT_PUBLISH_BURST": integer(20, minimum=1),
    # Answered rate_limited this many times in a row is flooding: closed with 1008.
    "CHAT_FLOOD_STRIKES": integer(20, minimum=1),
    # Most publishes one transaction carries; a bound keeps a batch's ack wait short.
    "CHAT_PUBLISH_BATCH": integer(200, minimum=1),
    # Replaying more than this on reconnect is slower than reloading the room's history.
    "CHAT_RECOVERY_MAX": integer(1000, minimum=1),
    # A long message, not a file upload: about two pages of text.
    "CHAT_MAX_BODY": integer(4000, minimum=1),
    # History pages are capped so one request can't pull a whole room.
    "CHAT_HISTORY_MAX": integer(100, minimum=1),
    "CHAT_AUTO_CREATE_ROOMS": flag(True),
    # Where a user who has joined no room lands (and joins); empty: the room directory.
    "CHAT_DEFAULT_ROOM": text("general"),
    # Names counted as mentions in one message: a greeting to a team, not a mass ping.
    "CHAT_MENTIONS_MAX": integer(20, minimum=0),
    # The longest slow mode a moderator may set, in seconds.
    "CHAT_SLOW_MAX": integer(3600, minimum=1),
    # Frames waiting for one slow client before it is cut off: a few seconds of a busy room.
    "SEND_QUEUE_MAX": integer(1000, minimum=1),
    # ... and their bytes: two full history pages of the longest messages (100 x 16 KB each),
    # so a client that asks and never reads holds megabytes of its node, not hundreds.
    "SEND_QUEUE_MAX_BYTES": integer(4 * 1024 * 1024, minimum=64 * 1024),
    # Frames a socket may have read but its consumer not yet handled; past it the node stops
    # reading that socket (TCP pushes back on the client) until it is half drained.
    "WS_INBOX_MAX": integer(64, minimum=1),
    # How long a node waits for a missing seq over the channel layer before reading the
    # database: messages from different nodes overtake each other by milliseconds.
    "CHAT_REORDER_WAIT": number(0.05, minimum=0),
    # How often a node checks that it holds every room's newest message, catching a
    # broadcast lost after its ack when no later message would reveal the gap.
    "CHAT_TAIL_CHECK": number(1, minimum=0.1),
    # The longest one watchdog round may take before it is abandoned and restarted.
    "CHAT_WATCH_TIMEOUT": number(10, minimum=1),
    # Per socket and frame type, "rate/burst": frames per second, and how many at once.
    # Far above the page (a subscribe per room of a full sidebar at load, typing every 3 s,
    # a ping every 20 s); a socket that empties one is flooding and is closed with 1008.
    "CHAT_FRAMES_PUBLISH": budget("30/60"),
    "CHAT_FRAMES_SUBSCRIBE": budget("5/150"),
    "CHAT_FRAMES_UNSUBSCRIBE": budget("5/150"),
    "CHAT_FRAMES_TYPING": budget("3/10"),
    "CHAT_FRAMES_HISTORY": budget("3/20"),
    "CHAT_FRAMES_PING": budget("2/10"),
    # Changes to messages: fixing typos and a burst of reactions, not a stream.
    "CHAT_FRAMES_EDIT": budget("3/20"),
    "CHAT_FRAMES_DELETE": budget("3/30"),
    "CHAT_FRAMES_REACT": budget("5/30"),
    # Frames that do not parse: a buggy client gets its bad_request answers, a fuzzer the door.
    "CHAT_FRAMES_INVALID": budget("5/20"),
    # --- Access ------------------------------------------------------------
    # Connection tokens are short-lived: a page fetches a fresh one for every connect.
    "TOKEN_TTL": integer(3600, minimum=1),
    "CHAT_SIGNUP_ENABLED": flag(True),
    # Rooms one user may create, by the page's form or by subscribing to a new slug (staff
    # are exempt): plenty for anyone's projects and teams, far from flooding the directory
    # or the database. 0 turns a limit off.
    "CHAT_ROOMS_PER_USER": integer(200, minimum=0),
    "CHAT_ROOMS_PER_USER_PER_HOUR": integer(30, minimum=0),
    # Sockets one user may hold across the cluster: tabs on a few devices, not a botnet.
    "CHAT_MAX_SOCKETS_PER_USER": integer(20, minimum=1),
    # Rooms one socket may follow: a busy sidebar; each costs presence and fan-out.
    "CHAT_MAX_SUBSCRIPTIONS": integer(100, minimum=1),
    # Seconds between each node's re-check of every open socket's user, session and
    # memberships against the database: the backstop for revocation broadcasts.
    "CHAT_ACCESS_RECHECK": number(5, minimum=0.5),
    # Who may read, publish in or create a room: a dotted path to a class like
    # chatcluster.policy.MembershipPolicy (docs/integrate.md).
    "CHAT_POLICY": text("chatcluster.policy.MembershipPolicy"),
    # --- Operators -----------------------------------------------------------
    # /metrics answers a request straight from these networks, or with this bearer token.
    "METRICS_TOKEN": text(""),
    "METRICS_ALLOW": Key("127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7", parse_networks),
    # Headers for the app's pages (SecurityHeadersMiddleware): scripts, styles and sockets
    # from this origin only, so an injected <script> cannot run; no framing.
    "CHAT_CSP": text(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "CHAT_PERMISSIONS_POLICY": text("camera=(), microphone=(), geolocation=(), payment=()"),
    # A directory: the node traces allocations and writes snapshots there on SIGUSR2
    # (bench/memory_probe.py). Off by default: tracing costs memory and CPU.
    "CHAT_MEMORY_DEBUG": text(""),
    "CHAT_MEMORY_DEBUG_FRAMES": integer(25, minimum=1),
    # --- Hardening (issue 17) ---
    # Seconds a client has to send a whole request head: from connecting, or on a kept-alive
    # connection from the first byte of its next request. Browsers and balancers send a head
    # at once, so 10 s is ample on a bad mobile link, while a slowloris client (a head
    # trickled a byte at a time, which an idle timeout never catches) holds a connection for
    # 10 s instead of for ever. runcluster's Caddy (read_header) and nginx
    # (client_header_timeout) get the same value.
    "NODE_HEADER_TIMEOUT": number(10, minimum=1, maximum=300),
    # POST /api/token per client address, cluster-wide: tokens per second and burst. A client
    # needs one per connect and keeps it TOKEN_TTL; 20 at once lets the scripts behind one
    # NAT reconnect together after a drain, and one every 2 s after that caps the password
    # hashing (about 0.3-0.5 s of CPU each, Django's PBKDF2) one address can cost the nodes at
    # a quarter of a core. 0 turns it off.
    "CHAT_TOKEN_RATE": number(0.5, minimum=0),
    "CHAT_TOKEN_BURST": integer(20, minimum=1),
    # Wrong passwords for one username, cluster-wide and from any address, before
    # /api/token refuses that username (429, the right password too) until
    # CHAT_LOGIN_FAILURE_WINDOW seconds after the first of them. 10 covers typos and a stale
    # saved password; a guesser gets 10 tries per 5 minutes however many addresses it has.
    # A success clears the count. 0 turns it off.
    "CHAT_LOGIN_FAILURES": integer(10, minimum=0),
    "CHAT_LOGIN_FAILURE_WINDOW": number(300, minimum=1),
    # Peers whose X-Forwarded-For is believed for per-address throttles: our own balancer
    # (Caddy, nginx) on loopback or a private network, and only its last address, the one
    # the balancer wrote itself. Anyone else is counted by its own address, whatever the
    # header says. Empty: never believe the header.
    "CHAT_TRUSTED_PROXIES": Key("127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7", parse_networks),
    # GET /api/rooms pages: 50 fills the sidebar of a screen; 200 caps one answer at about
    # 25 KB however many rooms a deployment has (2,404 rooms made one answer 272 KB).
    "CHAT_ROOMS_PAGE": integer(50, minimum=1),
    "CHAT_ROOMS_PAGE_MAX": integer(200, minimum=1),
}


class ChatSettings:
    """The resolved settings; `chat_settings.PRESENCE_TTL` and so on."""

    def __init__(self) -> None:
        self._values: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        values = self._values if self._values is not None else self._resolve()
        try:
            return values[name]
        except KeyError:
            raise AttributeError(f"{NAMESPACE} has no setting {name!r}") from None

    def reload(self) -> None:
        self._values = None

    def _resolve(self) -> dict[str, Any]:
        host: Mapping[str, object] = getattr(settings, NAMESPACE, {})
        unknown = sorted(set(host) - set(KEYS))
        if unknown:
            raise ImproperlyConfigured(f"{NAMESPACE} has unknown keys {unknown}; docs/integrate.md lists them")
        values: dict[str, Any] = {}
        for name, key in KEYS.items():
            if name in host:
                values[name] = key.parse(name, host[name])
            elif os.environ.get(name):
                values[name] = key.parse(name, os.environ[name])
            else:
                values[name] = key.parse(name, key.default)
        values.update(_derived(values))
        self._values = values
        return values


def _derived(values: dict[str, Any]) -> dict[str, Any]:
    urls: list[str] = values["REDIS_URL"]
    if not urls:
        raise ImproperlyConfigured("REDIS_URL is empty: give one redis:// URL, or several separated by commas")
    sentinels, masters = values["REDIS_SENTINELS"], values["REDIS_MASTER_NAME"]
    if sentinels and not masters:
        raise ImproperlyConfigured("REDIS_SENTINELS is set but REDIS_MASTER_NAME is not: name the monitored master(s)")
    layer_hosts: list[str | dict[str, object]] = list(urls)
    if sentinels:
        base = urlsplit(urls[0])
        extra: dict[str, object] = {"db": int(base.path.strip("/") or 0)}
        if base.password:
            extra["password"] = base.password
        layer_hosts = [{"sentinels": sentinels, "master_name": name, **extra} for name in masters]
    port = values["NODE_PORT"]
    return {
        "REDIS_URLS": urls,
        "REDIS_LAYER_HOSTS": layer_hosts,
        "REDIS_RETRY": Retry(
            ExponentialWithJitterBackoff(base=0.05, cap=0.5),
            values["REDIS_RETRIES"],
            supported_errors=(RedisConnectionError,),
        ),
        "NODE_ID": values["NODE_ID"] or f"{socket.gethostname()}:{port or os.getpid()}",
        "CHAT_FRAME_BUDGETS": {kind: values[f"CHAT_FRAMES_{kind.upper()}"] for kind in FRAME_KINDS},
    }


chat_settings = ChatSettings()


def _reload(*, setting: str, **kwargs: object) -> None:
    if setting == NAMESPACE:
        chat_settings.reload()


setting_changed.connect(_reload)


def layer_connection(host: str | dict[str, object]) -> dict[str, object]:
    """A channel-layer host with connect and reply timeouts, and retries of a closed connection."""
    spec = {"address": host} if isinstance(host, str) else dict(host)
    return spec | {
        "socket_connect_timeout": chat_settings.REDIS_CONNECT_TIMEOUT,
        "socket_timeout": chat_settings.REDIS_SOCKET_TIMEOUT,
        "retry": chat_settings.REDIS_RETRY,
    }


LAYER_BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}


def channel_layer_config() -> dict[str, object]:
    """The channel layer the app runs on, built from the settings above."""
    return {
        "BACKEND": LAYER_BACKENDS[chat_settings.CHANNEL_LAYER],
        "CONFIG": {"hosts": [layer_connection(host) for host in chat_settings.REDIS_LAYER_HOSTS]},
    }
