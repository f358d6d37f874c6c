"""Settings: every value comes from the environment, read once, here.

Local runs need no environment at all: `manage.py` writes a per-checkout secret key
into `.local/secret_key` (untracked) and SQLite plus a private Redis are the defaults.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from chatcluster.envparse import env_bool, env_int, env_number, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"


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
    "chatcluster",
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
    "chatcluster.middleware.SecurityHeadersMiddleware",
]

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
LOGIN_REDIRECT_URL = "chatcluster:index"
LOGOUT_REDIRECT_URL = "login"

# --- Chat ------------------------------------------------------------------

# The chatcluster app reads its settings from CHATCLUSTER = {...} and, for each key not
# given there, from the environment variable of the same name (chatcluster/conf.py,
# docs/integrate.md). This site sets none in code: every one comes from the environment.

# json: one JSON object per line (python-json-logger) for log shippers; text: for people.
# Default: text when stderr is a terminal (manage.py at a prompt), json otherwise (nodes
# under runcluster/supervisord, containers), so production logs parse without a setting.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if sys.stderr.isatty() else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use json or text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "chatcluster.logs.ContextFilter"}},
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
