# carelevel API image. Build: docker build -t carelevel .   Run it with Postgres: docker compose up
# (docker-compose.yml). The container runs `carelevel serve` on 0.0.0.0:8000 as a non-root user.

# --- builder: a virtual environment with the dependencies, then the project ----------------------
FROM python:3.11-slim AS builder

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

# Then the project itself, without dependencies. It is installed in editable mode on purpose: the
# service finds alembic.ini and migrations/ next to app/ (app/migrate.py), so the code runs from
# /app, where the runtime stage puts it too.
# README.md is only read here, for the package metadata.
COPY README.md ./
COPY app/ app/
RUN pip install --no-deps -e .

# --- runtime ---------------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CARELEVEL_WORKERS=2

RUN groupadd --system --gid 10001 carelevel \
    && useradd --system --uid 10001 --gid carelevel --create-home \
        --home-dir /var/lib/carelevel --shell /usr/sbin/nologin carelevel

COPY --from=builder /opt/venv /opt/venv

# Only what runs, owned by root and read-only for the service user.
WORKDIR /app
COPY pyproject.toml alembic.ini ./
COPY app/ app/
COPY migrations/ migrations/
RUN python -m compileall -q app migrations

# The working directory is the service user's own: without CARELEVEL_DATABASE_URL the embedded
# SQLite file (./carelevel.db) is created there. Production sets a postgresql+asyncpg:// URL.
USER 10001:10001
WORKDIR /var/lib/carelevel

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CARELEVEL_PORT', '8000'), timeout=3)"]

CMD ["carelevel", "serve", "--host", "0.0.0.0"]
