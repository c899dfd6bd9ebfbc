# chatplatform: one image for the web (ASGI), Celery worker and Celery beat services.
# See docker-compose.yml for the full production stack (PostgreSQL + Redis).

# Source stage: the build context minus local state (virtualenv, .env secrets, SQLite files, git),
# so none of it reaches the final image's layers even without a .dockerignore.
FROM python:3.11-slim AS source
WORKDIR /src
COPY . .
RUN rm -rf .venv venv .env .git db.sqlite3* var staticfiles .pytest_cache .ruff_cache .mypy_cache \
    && find . -name __pycache__ -type d -prune -exec rm -rf {} +

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000

# Build tools for wheels compiled from source (llama-cpp-python for the local model needs a C/C++
# toolchain and cmake).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential gcc g++ cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --from=source /src/ /app/

# Entrypoint: the web server (`manage.py serve`) migrates first; anything else (celery worker/beat,
# one-off manage.py commands) runs as given.
RUN printf '%s\n' \
        '#!/bin/sh' \
        'set -e' \
        'if [ "$1" = "python" ] && [ "$2" = "manage.py" ] && [ "$3" = "serve" ]; then' \
        '    python manage.py migrate --noinput' \
        'fi' \
        'exec "$@"' \
        > /usr/local/bin/chatplatform-entrypoint \
    && chmod 0755 /usr/local/bin/chatplatform-entrypoint

# Non-root user. The code stays root-owned (read-only for the app); var/ is writable (celery beat
# schedule, local model files).
RUN groupadd --system app \
    && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app/var \
    && chown app:app /app/var
USER app

EXPOSE 8000

# No curl in slim: probe /health with the standard library. The Host header is the first
# ALLOWED_HOSTS entry so the probe passes Django's host validation.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; h = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.').replace('*', '') or 'localhost'; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), headers={'Host': h}), timeout=4)"]

ENTRYPOINT ["chatplatform-entrypoint"]
CMD ["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "8000"]
