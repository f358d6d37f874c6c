# One chat node: `manage.py runnode` (daphne with the drain on SIGTERM) on port 8000.
# Build from the repository root: docker build -t relay-chat .
# docs/deploy.md: how compose and Kubernetes run it, and the environment it needs.
FROM python:3.11-slim

# NODE_PORT: the default NODE_ID is hostname:NODE_PORT, the container or pod name.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NODE_PORT=8000

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# The app itself, as the `chatcluster` package (pyproject.toml); the site in project/ imports it.
RUN pip install --no-deps .
# Collected into .local/static for WhiteNoise. The key only lets settings import during
# the build; it is not in any layer's environment and serves nothing.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v0

# The code stays root-owned and read-only to the node's user. A container started
# without DJANGO_SECRET_KEY therefore fails instead of inventing a key of its own,
# which every other node would disagree with (sessions and tokens would break).
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin chat
USER 10001

EXPOSE 8000
# Liveness only: readiness (/readyz) is the balancer's business, not a restart reason.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# SIGTERM (docker stop's signal) drains: /readyz 503, new sockets refused with 503,
# 1012 to open sockets after DRAIN_GRACE, exit. Give it DRAIN_GRACE + 10 s to stop.
STOPSIGNAL SIGTERM
CMD ["python", "manage.py", "runnode", "--host", "0.0.0.0", "--port", "8000"]
