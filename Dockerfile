# syntax=docker/dockerfile:1
#
# chatsvc container image.
#
#   docker build -t chatsvc .
#
# The image serves the API (`chatsvc serve`). Database migrations are NOT applied on
# start-up: run them as a separate one-off step before starting (or upgrading) the API,
# e.g. `docker run --rm -e CHATSVC_DATABASE_URL=... chatsvc chatsvc migrate`, or let the
# `migrate` service in compose.yaml do it. The background worker is the same image with
# the command `chatsvc worker`.

# --- builder: build a wheel and install it with its dependencies into /opt/venv ---------
# The dependencies' versions come from requirements.lock (pinned; `make lock` regenerates it).
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
RUN python -m venv /opt/venv

COPY pyproject.toml README.md requirements.lock ./
COPY src ./src
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /build/dist . \
 && /opt/venv/bin/pip install -c requirements.lock /build/dist/chatsvc-*.whl

# --- runtime -----------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHATSVC_HOST=0.0.0.0 \
    CHATSVC_PORT=8000 \
    CHATSVC_DATABASE_URL=sqlite+aiosqlite:////app/data/chatsvc.db \
    CHATSVC_ALEMBIC_INI=/app/alembic.ini

RUN groupadd --system --gid 10001 chatsvc \
 && useradd --system --uid 10001 --gid chatsvc --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin chatsvc

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
# Only used by the SQLite default above; set CHATSVC_DATABASE_URL for PostgreSQL.
RUN mkdir -p /app/data/artifacts && chown -R chatsvc:chatsvc /app/data

USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["chatsvc", "serve", "--host", "0.0.0.0", "--port", "8000"]
