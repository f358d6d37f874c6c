"""Settings: every value comes from the environment, read once, here.

Local runs need no environment at all: `manage.py` writes a per-checkout secret key
into `.local/secret_key` (untracked) and SQLite plus a private Redis are the defaults.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: use true or false")


def env_number(name: str, default: float, *, minimum: float = 0, maximum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from exc
    if value < minimum or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name}={raw!r} must lie between {minimum} and {maximum}")
    return value


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    return int(env_number(name, default, minimum=minimum, maximum=maximum))


DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if key:
        return key
    local = LOCAL_DIR / "secret_key"
    if local.exists():
        return local.read_text().strip()
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Set it in the environment (every node of a cluster "
        "needs the same value), or run `make run` / `manage.py` once in this checkout, "
        "which writes a private development key to .local/secret_key."
    )


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [
    h.strip() for h in env_str("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o for o in env_str("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    # Not "daphne": its app imports daphne.server, which creates the event loop Twisted runs
    # on, before `runnode` can choose uvloop for it. `manage.py runnode` is the dev server.
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chat.middleware.SecurityHeadersMiddleware",
]

# Scripts, styles and sockets from this origin only: no inline script (the pages have
# none), so an injected <script> or on*= attribute cannot run; no framing (clickjacking).
CONTENT_SECURITY_POLICY = env_str(
    "CHAT_CSP",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
)
PERMISSIONS_POLICY = env_str("CHAT_PERMISSIONS_POLICY", "camera=(), microphone=(), geolocation=(), payment=()")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Behind a TLS-terminating proxy (nginx, an ingress): trust its X-Forwarded-Proto, mark
# cookies Secure and send HSTS. Off by default so plain-http local runs keep working.
if env_bool("DJANGO_BEHIND_TLS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite by default; DATABASE_URL=postgres://... for PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{LOCAL_DIR / 'db.sqlite3'}"),
        # Nodes reach the database from a thread pool; reusing connections saves a
        # connect (several ms on PostgreSQL) per action. Health checks drop dead ones.
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # Several node processes write one file: WAL lets readers run beside the
        # writer, IMMEDIATE takes the write lock up front so two writers never
        # deadlock upgrading, and the timeout lets them queue instead of failing.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["TEST"] = {"NAME": str(LOCAL_DIR / "test-db.sqlite3")}
# PostgreSQL through psycopg's connection pool, one per node process (docs/deploy.md).
# Persistent connections (DB_CONN_MAX_AGE) suit the sockets' ORM calls, which asgiref
# runs on one thread per node, but not HTTP requests: Django's ASGI handler gives each
# request a thread of its own, so each opens a connection. A pool serves both and caps
# the node's connections at DB_POOL_MAX_SIZE. (Not for SQLite, a local file.)
DB_POOL = env_bool("DB_POOL", False)
if DB_POOL and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _pool_min = env_int("DB_POOL_MIN_SIZE", 2, minimum=0)
    _pool_max = env_int("DB_POOL_MAX_SIZE", 10, minimum=1)
    if _pool_min > _pool_max:
        raise ImproperlyConfigured(f"DB_POOL_MIN_SIZE={_pool_min} is larger than DB_POOL_MAX_SIZE={_pool_max}")
    # The pool keeps the connections; Django refuses persistent ones on top of it.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": _pool_min,
        "max_size": _pool_max,
        # Seconds a thread waits for a free connection before the action fails as
        # `unavailable`: a saturated pool should shed load, not queue it for ever.
        "timeout": env_number("DB_POOL_TIMEOUT", 5, minimum=0.1),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = LOCAL_DIR / "static"
# WhiteNoise warns about a missing root; `collectstatic` fills it for production images.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from the apps' static folders, so a fresh clone needs no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "login"

# --- Cluster ---------------------------------------------------------------

# One URL, or several separated by commas: independent Redis instances ("shards").
# channels-redis spreads groups over them by a CRC32 hash of the name, and our own keys
# follow the same hash (chat/redis.py). Redis Cluster is not supported by channels-redis.
REDIS_URLS = [u.strip() for u in env_str("REDIS_URL", "redis://127.0.0.1:6379/0").split(",") if u.strip()]
if not REDIS_URLS:
    raise ImproperlyConfigured("REDIS_URL is empty: give one redis:// URL, or several separated by commas")
REDIS_URL = REDIS_URLS[0]


def _sentinel(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ImproperlyConfigured(f"REDIS_SENTINELS entry {address!r}: write host:port (Sentinel's port is 26379)")
    return host, int(port)


# Sentinel instead of fixed addresses: REDIS_SENTINELS=host:port,host:port and
# REDIS_MASTER_NAME=name (several names, comma-separated, make one shard each). The
# nodes then ask the sentinels for each shard's current master, so a failover needs no
# redeploy. REDIS_URL is ignored while REDIS_SENTINELS is set, except for its database
# number and password, which apply to every master.
REDIS_SENTINELS = [_sentinel(a) for a in env_str("REDIS_SENTINELS", "").split(",") if a.strip()]
REDIS_MASTER_NAMES = [n.strip() for n in env_str("REDIS_MASTER_NAME", "").split(",") if n.strip()]
if REDIS_SENTINELS and not REDIS_MASTER_NAMES:
    raise ImproperlyConfigured("REDIS_SENTINELS is set but REDIS_MASTER_NAME is not: name the monitored master(s)")
# runcluster only: how many private Redis instances it starts when REDIS_URL is unset.
# One is enough on a laptop; more exercise sharding the way a large deployment runs it.
REDIS_SHARDS = env_int("REDIS_SHARDS", 1, minimum=1, maximum=16)


def _layer_hosts() -> list[str | dict[str, object]]:
    if not REDIS_SENTINELS:
        return list(REDIS_URLS)
    from urllib.parse import urlsplit

    base = urlsplit(REDIS_URL)
    db = int(base.path.strip("/") or 0)
    extra: dict[str, object] = {"db": db} | ({"password": base.password} if base.password else {})
    return [{"sentinels": REDIS_SENTINELS, "master_name": name, **extra} for name in REDIS_MASTER_NAMES]


# The channel layer's `hosts`, one per shard, in the order our own clients use them.
REDIS_LAYER_HOSTS = _layer_hosts()
# Seconds to open, or to close, one channel-layer connection to Redis. redis-py waits
# for nothing longer than this when closing, and without it a close can wait forever.
REDIS_CONNECT_TIMEOUT = env_number("REDIS_CONNECT_TIMEOUT", 2, minimum=0.1)
# Connections per shard in a node's own Redis pool (presence, socket counts, rate limits,
# registry). When all are busy, a call waits up to REDIS_POOL_TIMEOUT seconds for one
# rather than failing: a burst of handshakes queues instead of erroring.
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 64, minimum=1)
REDIS_POOL_TIMEOUT = env_number("REDIS_POOL_TIMEOUT", 5, minimum=0.1)


# A command that finds its pooled connection closed by Redis (a restart, a failover, a
# cut link) reconnects and runs again, up to REDIS_RETRIES times 50-500 ms apart, so
# that no client sees an error from an outage that is over. redis-py's default for a
# pool made from a URL retries nothing. A timeout is not retried: the command may have
# run. Used by the node's own clients and the channel layer's connections alike.
REDIS_RETRIES = env_int("REDIS_RETRIES", 3, minimum=0)
REDIS_RETRY = Retry(
    ExponentialWithJitterBackoff(base=0.05, cap=0.5), REDIS_RETRIES, supported_errors=(RedisConnectionError,)
)


# Longest wait for one Redis reply. A Redis that accepts connections but does not answer
# (frozen, overloaded, half-restarted) must not hold a caller forever: the channel
# layer's subscribe on reconnect and its publishes wait at most this long too (pub/sub
# reads for incoming messages poll with timeouts of their own, so an idle one is fine).
REDIS_SOCKET_TIMEOUT = env_number("REDIS_SOCKET_TIMEOUT", 5, minimum=0.1)


def layer_connection(host: str | dict[str, object]) -> dict[str, object]:
    """A channel-layer host with connect and reply timeouts, and retries of a closed connection."""
    spec = {"address": host} if isinstance(host, str) else dict(host)
    return spec | {
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
        "socket_timeout": REDIS_SOCKET_TIMEOUT,
        "retry": REDIS_RETRY,
    }


NODE_PORT = env_int("NODE_PORT", 0)
NODE_ID = env_str("NODE_ID", f"{socket.gethostname()}:{NODE_PORT or os.getpid()}")

# pubsub: Redis PUBLISH/SUBSCRIBE, never drops, one Redis channel per group.
# core: RedisChannelLayer, lists with a capacity, drops silently when full.
# docs/architecture.md gives the measurements behind the default.
CHANNEL_LAYER_BACKEND = env_str("CHANNEL_LAYER", "pubsub")
_LAYER_BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
if CHANNEL_LAYER_BACKEND not in _LAYER_BACKENDS:
    raise ImproperlyConfigured(f"CHANNEL_LAYER={CHANNEL_LAYER_BACKEND!r}: use pubsub or core")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": _LAYER_BACKENDS[CHANNEL_LAYER_BACKEND],
        "CONFIG": {"hosts": [layer_connection(host) for host in REDIS_LAYER_HOSTS]},
    }
}

# --- Chat limits and timings -------------------------------------------------

# A user who stays silent this long has crashed or lost the network; 15 s is three
# missed heartbeats, short enough that the online list is believable.
PRESENCE_TTL = env_number("PRESENCE_TTL", 15, minimum=1)
# A user whose socket dropped (not a clean close) and who is back within this many
# seconds never shows as left: covers a node restart or a network blip.
PRESENCE_GRACE = env_number("PRESENCE_GRACE", 3, minimum=0)
# Presence diffs of a room are gathered this many seconds and sent as one frame: quick
# enough to read as live, long enough that a room filling up is not n squared frames.
CHAT_PRESENCE_COALESCE = env_number("CHAT_PRESENCE_COALESCE", 0.1, minimum=0)
# Typing events per user and room: one per 2 s is enough for "X is typing…".
CHAT_TYPING_THROTTLE = env_number("CHAT_TYPING_THROTTLE", 2, minimum=0.1)
# Per-user publish budget shared by every node: enough for fast typists and paste
# bursts, far below what would let one account drown a room.
# 0 turns the limit off (a trusted deployment, or a benchmark measuring its cost).
CHAT_PUBLISH_RATE = env_number("CHAT_PUBLISH_RATE", 10, minimum=0)
CHAT_PUBLISH_BURST = env_int("CHAT_PUBLISH_BURST", 20, minimum=1)
# A client answered rate_limited this many times in a row is flooding, not bursting:
# it is closed with 1008. A client that honours retry_after never gets near it.
CHAT_FLOOD_STRIKES = env_int("CHAT_FLOOD_STRIKES", 20, minimum=1)
# Replaying more than this on reconnect is slower than reloading the room's history.
# Most publishes one database transaction carries. A node writes its sockets' publishes
# in batches (one lock and one commit each); a bound keeps a batch's ack wait short.
CHAT_PUBLISH_BATCH = env_int("CHAT_PUBLISH_BATCH", 200, minimum=1)
CHAT_RECOVERY_MAX = env_int("CHAT_RECOVERY_MAX", 1000, minimum=1)
# A long message, not a file upload: about two pages of text.
CHAT_MAX_BODY = env_int("CHAT_MAX_BODY", 4000, minimum=1)
CHAT_AUTO_CREATE_ROOMS = env_bool("CHAT_AUTO_CREATE_ROOMS", True)
# History pages are capped so one request can't pull a whole room.
CHAT_HISTORY_MAX = 100
# Frames waiting for one slow client before it is cut off: a few seconds of a busy room.
SEND_QUEUE_MAX = env_int("SEND_QUEUE_MAX", 1000, minimum=1)
# Long enough for clients to see 1012 and move, short enough for rolling restarts.
DRAIN_GRACE = env_number("DRAIN_GRACE", 5, minimum=0, maximum=30)
# Connection tokens are short-lived: a page fetches a fresh one for every connect.
TOKEN_TTL = env_int("TOKEN_TTL", 3600, minimum=1)
SIGNUP_ENABLED = env_bool("CHAT_SIGNUP_ENABLED", True)
# How long a node waits for a missing seq to arrive over the channel layer before
# reading it from the database. Messages from different nodes overtake each other
# by a few milliseconds; the database read is the backstop, not the rule.
CHAT_REORDER_WAIT = env_number("CHAT_REORDER_WAIT", 0.05, minimum=0)
# How often a node checks, against the database, that it holds every room's newest
# message. It catches a broadcast lost after its ack (Redis restarting, a dropped
# pub/sub message) when no later message would reveal the gap.
CHAT_TAIL_CHECK = env_number("CHAT_TAIL_CHECK", 1, minimum=0.1)
# The longest one watchdog round (Redis check, rebuild, tail check) may take. A Redis
# call that never answers (a socket close that never completes, redis-py#3941) must not
# stop the watchdog for good: the round is abandoned and the next one starts over.
CHAT_WATCH_TIMEOUT = env_number("CHAT_WATCH_TIMEOUT", 10, minimum=1)
# Sockets one user may hold open across the cluster: tabs on a few devices, not a botnet.
CHAT_MAX_SOCKETS_PER_USER = env_int("CHAT_MAX_SOCKETS_PER_USER", 20, minimum=1)
# Rooms one socket may follow: a busy sidebar; each costs presence entries and fan-out.
CHAT_MAX_SUBSCRIPTIONS = env_int("CHAT_MAX_SUBSCRIPTIONS", 100, minimum=1)
# Seconds between each node's re-check, against the database, of every open socket's
# user, session and private-room memberships: the backstop for revocation broadcasts.
CHAT_ACCESS_RECHECK = env_number("CHAT_ACCESS_RECHECK", 5, minimum=0.5)
# Run each node's event loop (under Twisted's asyncio reactor) on uvloop.
NODE_UVLOOP = env_bool("NODE_UVLOOP", True)
# Handshakes per second a node admits (bursts of CHAT_ADMIT_BURST); past it new sockets
# are closed at once with 1013 (try again later) and clients back off with jitter.
CHAT_ADMIT_RATE = env_number("CHAT_ADMIT_RATE", 1000, minimum=1)
CHAT_ADMIT_BURST = env_int("CHAT_ADMIT_BURST", 1000, minimum=1)
# The node's listen backlog: handshakes the kernel queues while the node is busy. Past
# it they are dropped and the client's TCP retries after a second or more.
NODE_BACKLOG = env_int("NODE_BACKLOG", 4096, minimum=16)
# Largest WebSocket frame a client may send: a full CHAT_MAX_BODY of 4-byte characters
# with room for the JSON around it, and far below what would let a client hog memory.
WS_MAX_FRAME = env_int("WS_MAX_FRAME", 64 * 1024, minimum=1024)
# Server pings keep idle sockets open through proxies with 60 s read timeouts, and find
# dead peers within ping interval + timeout.
WS_PING_INTERVAL = env_number("WS_PING_INTERVAL", 20, minimum=1)
WS_PING_TIMEOUT = env_number("WS_PING_TIMEOUT", 30, minimum=1)
# A directory: the node traces its Python allocations (tracemalloc, this many frames deep
# per allocation: CHAT_MEMORY_DEBUG_FRAMES) and writes a snapshot and an object census
# there on SIGUSR2 (bench/memory_probe.py). Off (empty) by default: tracing costs memory
# and CPU.
CHAT_MEMORY_DEBUG = env_str("CHAT_MEMORY_DEBUG", "")
CHAT_MEMORY_DEBUG_FRAMES = env_int("CHAT_MEMORY_DEBUG_FRAMES", 25, minimum=1)

# /metrics is for operators. A node answers it to a request straight from an address in
# METRICS_ALLOW (CIDRs; default loopback and private networks, where Prometheus scrapes
# pods and nodes), or to any request with `Authorization: Bearer <METRICS_TOKEN>`. A
# request that came through a balancer (X-Forwarded-For) never counts as "straight",
# so the public entry point answers 403 unless the token is sent.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")


def _networks(name: str, default: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    raw = env_str(name, default)
    try:
        return [ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r}: {exc}") from exc


METRICS_ALLOW = _networks("METRICS_ALLOW", "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7")

# json: one JSON object per line (python-json-logger) for log shippers; text: for people.
# Default: text when stderr is a terminal (manage.py at a prompt), json otherwise (nodes
# under runcluster/supervisord, containers), so production logs parse without a setting.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if sys.stderr.isatty() else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use json or text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "chat.logs.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(node_id)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(node_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
