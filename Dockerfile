# carelevel API image. Build: docker build -t carelevel .   Run it with Postgres: docker compose up
# (docker-compose.yml). The container runs `carelevel serve` on 0.0.0.0:8000 as a non-root user.
# Operating it (settings, TLS, replicas, metrics, backups): docs/deployment.md.

# The base image of both stages. Pin it by digest for reproducible builds:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:… -t carelevel .
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a virtual environment with the dependencies, then the project ----------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app

# The dependencies in their own layer, rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself: its wheel, installed without dependencies. The package carries all it
# runs: the migrations (app.migrations, from migrations/), the shipped rule set and the vendored
# Swagger UI and ReDoc assets that /docs and /redoc serve (no CDN is needed).
# README.md is only read here, for the package metadata.
COPY README.md ./
COPY app/ app/
COPY migrations/ migrations/
RUN pip install --no-deps .

# --- runtime ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CARELEVEL_WORKERS=2

RUN groupadd --system --gid 10001 carelevel \
    && useradd --system --uid 10001 --gid carelevel --create-home \
        --home-dir /var/lib/carelevel --shell /usr/sbin/nologin carelevel

# Only what runs: the virtual environment, owned by root and read-only for the service user.
COPY --from=builder /opt/venv /opt/venv

# The working directory is the service user's own: without CARELEVEL_DATABASE_URL the embedded
# SQLite file (./carelevel.db) is created there. Production sets a postgresql+asyncpg:// URL.
# Nothing else is written but temporary files (the metrics of several workers) under /tmp, so the
# container runs with a read-only root filesystem and a writable /tmp.
USER 10001:10001
WORKDIR /var/lib/carelevel

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CARELEVEL_PORT', '8000'), timeout=3)"]

# Graceful shutdown: on SIGTERM, `carelevel serve` (PID 1: the exec form, no shell in between)
# stops accepting connections, lets requests in flight finish for up to
# CARELEVEL_SHUTDOWN_TIMEOUT_SECONDS (30), then closes its database pool and exits. Give the
# container longer than that before SIGKILL (docker-compose.yml: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["carelevel", "serve", "--host", "0.0.0.0"]
