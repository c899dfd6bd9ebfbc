"""chatplatform settings: one file, driven by the environment.

With no environment at all the project runs in its *embedded default* mode (SQLite with WAL,
in-memory channel layer, local-memory cache, eager Celery). Setting ``DATABASE_URL`` and
``REDIS_URL`` switches to production mode (PostgreSQL with a connection pool, Redis for the
channel layer, cache, rate-limit counters and the Celery broker). Every variable is listed in
``.env.example`` and the README.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is read when present; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VERSION = "1.0.0"
SERVICE_NAME = "chatplatform"

# The development key: usable only with DEBUG on (a system check refuses it otherwise).
DEV_SECRET_KEY = "django-insecure-chatplatform-development-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=True)
ENVIRONMENT = env.str("ENVIRONMENT", default="development" if DEBUG else "production")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
if DEBUG and "testserver" not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append("testserver")

# Comma-separated origins for CORS and WebSocket Origin checks. The seed's JSON-list spelling
# (["http://localhost:3000"]) is accepted too.
_origins = env.str("ALLOWED_ORIGINS", default="http://localhost:3000")
ALLOWED_ORIGINS = [
    o.strip().strip("[]\"' ") for o in _origins.split(",") if o.strip().strip("[]\"' ")
]

# Reverse proxies whose X-Forwarded-For we believe (CIDRs). Empty: the socket peer is the client.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

ADMIN_SECRET_KEY = env.str("ADMIN_SECRET_KEY", default="")
REDIS_URL = env.str("REDIS_URL", default="")
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=1)
HOST = env.str("HOST", default="127.0.0.1")
PORT = env.int("PORT", default=8000)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "chatplatform.api",
    "accounts",
    "chats",
    "providers",
    "knowledge",
    "support",
    "adminpanel",
]

# Django's middleware, subclassed so the async path runs their hooks inline (no thread hop per
# hook) and the session/auth/message layers only serve the Django admin; see api/middleware.py.
MIDDLEWARE = [
    "chatplatform.api.middleware.request_context_middleware",
    "chatplatform.api.metrics.metrics_middleware",
    "adminpanel.request_log.request_log_middleware",
    "chatplatform.api.middleware.SecurityMiddleware",
    "chatplatform.api.middleware.StreamingAwareGZipMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "chatplatform.api.ratelimit.rate_limit_middleware",
    "chatplatform.api.middleware.SessionMiddleware",
    "chatplatform.api.middleware.CommonMiddleware",
    "chatplatform.api.middleware.CsrfViewMiddleware",
    "chatplatform.api.middleware.AuthenticationMiddleware",
    "chatplatform.api.middleware.MessageMiddleware",
    "chatplatform.api.middleware.XFrameOptionsMiddleware",
    "chatplatform.api.middleware.error_envelope_middleware",
]
# Django's deploy checks look for its middleware by dotted path; the subclasses above provide
# the same protection, and chatplatform.E003 (api/checks.py) fails if any of them goes missing.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

ROOT_URLCONF = "chatplatform.urls"
ASGI_APPLICATION = "chatplatform.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database -------------------------------------------------------------------------------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3")),
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg 3 connection pool (Django >= 5.1). CONN_MAX_AGE must stay 0 with a pool.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
        "timeout": env.int("DB_POOL_TIMEOUT", default=10),
    }
    # With a pool, Django turns this into psycopg_pool's `check`: a pooled connection is checked
    # (one empty round trip) before it is handed out, and replaced if broken, so after a
    # PostgreSQL restart no request gets a dead connection.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The same SQLite settings however SQLite was chosen (SQLITE_PATH or DATABASE_URL=sqlite:///...):
    # WAL so readers never block the writer, IMMEDIATE transactions and a busy timeout so
    # concurrent writers queue instead of failing with "database is locked". Options given in
    # the URL's query string win.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        **DATABASES["default"].get("OPTIONS", {}),
    }
    # Keep connections: opening one per request cost ~10% of a chat request's CPU.
    DATABASES["default"]["CONN_MAX_AGE"] = 600
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Cache, channel layer, Celery -----------------------------------------------------------
# Redis clients get their timeouts here, never redis-py's defaults (its 5 s socket timeout cut off
# every blocking read that waited longer; see chatplatform/redis_clients.py). Connect timeout, and
# the socket timeout of ordinary commands; a client that blocks waits longer than its block time.
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=2.0)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=5.0)
if REDIS_URL:
    from chatplatform.redis_clients import CHANNEL_LAYER_BLOCK_SECONDS, connection_kwargs

    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "CONNECTION_POOL_KWARGS": connection_kwargs(connect_timeout=REDIS_CONNECT_TIMEOUT,
                                                            socket_timeout=REDIS_SOCKET_TIMEOUT),
            },
            "KEY_PREFIX": "cp",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis's layer, with receives that wait for Redis to come back.
            "BACKEND": "chatplatform.redis_clients.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, **connection_kwargs(
                    connect_timeout=REDIS_CONNECT_TIMEOUT, socket_timeout=REDIS_SOCKET_TIMEOUT,
                    blocking_seconds=CHANNEL_LAYER_BLOCK_SECONDS, asyncio_client=True)}],
                "prefix": "cp:channels",
            },
        }
    }
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# A task is acknowledged when it ends, not when a worker takes it: a worker killed mid-task (OOM,
# SIGKILL, a lost node) leaves its task unacknowledged, and the broker hands it out again. A pool
# child that dies is seen by its parent at once (reject_on_worker_lost requeues the task); a whole
# worker that dies leaves the message with Redis, which gives it to the next worker once
# CELERY_VISIBILITY_TIMEOUT seconds have passed since delivery. That timeout must exceed the
# longest task and the longest countdown (webhook retries wait up to WEBHOOK_RETRY_MAX_SECONDS),
# or a task still running, or still waiting, is delivered a second time. Tasks are idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a dying worker holds at most one task per process
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}

# --- Response cache (providers/cache.py) -------------------------------------------------------
RESPONSE_CACHE_ENABLED = env.bool("RESPONSE_CACHE_ENABLED", default=True)
RESPONSE_CACHE_TTL = env.int("RESPONSE_CACHE_TTL", default=3600)  # seconds an entry lives
RESPONSE_CACHE_MAX_ENTRY_BYTES = env.int("RESPONSE_CACHE_MAX_ENTRY_BYTES", default=256 * 1024)
RESPONSE_CACHE_MAX_ENTRIES = env.int("RESPONSE_CACHE_MAX_ENTRIES", default=50_000)  # oldest evicted beyond
RESPONSE_CACHE_MAX_BYTES = env.int("RESPONSE_CACHE_MAX_BYTES", default=256 * 1024 * 1024)
SEMANTIC_CACHE_ENABLED = env.bool("SEMANTIC_CACHE_ENABLED", default=True)
SEMANTIC_CACHE_THRESHOLD = env.float("SEMANTIC_CACHE_THRESHOLD", default=0.92)

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

ACCESS_TOKEN_LIFETIME = timedelta(seconds=env.int("ACCESS_TOKEN_LIFETIME_SECONDS", default=1800))
REFRESH_TOKEN_LIFETIME = timedelta(days=env.int("REFRESH_TOKEN_LIFETIME_DAYS", default=7))

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": ACCESS_TOKEN_LIFETIME,
    "REFRESH_TOKEN_LIFETIME": REFRESH_TOKEN_LIFETIME,
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "TOKEN_OBTAIN_SERIALIZER": None,
}

# Login throttling: attempts per client IP per minute, failures per account per window.
LOGIN_RATE_PER_IP = env.str("LOGIN_RATE_PER_IP", default="20/m")
LOGIN_FAILURES_PER_ACCOUNT = env.str("LOGIN_FAILURES_PER_ACCOUNT", default="5/15m")

def _json_setting(name: str, raw: str):
    """A JSON-valued variable (empty: ``{}``); malformed JSON stops the start with its name."""
    import json

    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from exc


# --- Single sign-on (OpenID Connect; read by accounts/oidc.py) ----------------------------------
# One provider from these variables (named "default"), and/or several from OIDC_PROVIDERS, a JSON
# object {"name": {"issuer", "client_id", "client_secret", "scopes", "allowed_redirect_uris",
# "label"}}. Unset: the SSO routes answer 404 SSO_NOT_CONFIGURED.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="")
OIDC_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_SCOPES = env.str("OIDC_SCOPES", default="openid email profile")
# Where our tokens may be handed after login: exact URIs (no prefixes, no wildcards), every provider.
OIDC_ALLOWED_REDIRECT_URIS = env.list("OIDC_ALLOWED_REDIRECT_URIS", default=[])
OIDC_PROVIDERS = _json_setting("OIDC_PROVIDERS", env.str("OIDC_PROVIDERS", default=""))
# Our callback URL as registered at the identity providers; unset: built from the request's host.
OIDC_CALLBACK_URL = env.str("OIDC_CALLBACK_URL", default="")
OIDC_HTTP_TIMEOUT_SECONDS = env.float("OIDC_HTTP_TIMEOUT_SECONDS", default=10.0)

# General request limits (used by the rate-limit layer and reported by /admin endpoints).
RATE_LIMIT_PER_MINUTE = env.int("RATE_LIMIT_PER_MINUTE", default=60)
RATE_LIMIT_PER_HOUR = env.int("RATE_LIMIT_PER_HOUR", default=1000)
ANONYMOUS_RATE_LIMIT_PER_MINUTE = env.int("ANONYMOUS_RATE_LIMIT_PER_MINUTE", default=100)
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
# While Redis (the counters) is unreachable: let requests through uncounted (true), or answer 503.
RATE_LIMIT_FAIL_OPEN = env.bool("RATE_LIMIT_FAIL_OPEN", default=True)

# Token limits and budgets (0: none), per user, per API key and per chatbot key; the defaults of
# runtime settings an operator changes with PUT /api/v1/admin/system/config or the Django admin.
TOKENS_PER_MINUTE = env.int("TOKENS_PER_MINUTE", default=0)
DAILY_TOKEN_BUDGET = env.int("DAILY_TOKEN_BUDGET", default=0)
MONTHLY_TOKEN_BUDGET = env.int("MONTHLY_TOKEN_BUDGET", default=0)
DAILY_COST_BUDGET = env.float("DAILY_COST_BUDGET", default=0.0)  # USD
MONTHLY_COST_BUDGET = env.float("MONTHLY_COST_BUDGET", default=0.0)  # USD
MAX_TOKENS = env.int("MAX_TOKENS", default=0)  # a cap on any request's max_tokens (0: the model's own)
# How often a worker looks for runtime-setting changes in the shared cache (seconds).
RUNTIME_CONFIG_RECHECK_SECONDS = env.float("RUNTIME_CONFIG_RECHECK_SECONDS", default=1.0)
# How long a worker remembers an API key or token session that checked out (accounts/credential_cache.py;
# any change to keys, sessions or users drops every entry in every worker at once). 0: look up each time.
CREDENTIAL_CACHE_SECONDS = env.float("CREDENTIAL_CACHE_SECONDS", default=30.0)
# Prometheus metrics of several worker processes are shared through files in this directory
# (prometheus-client's multiprocess mode; ``manage.py serve`` empties it at start). Unset: one process.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# WebSocket limits: connects per minute (per address when anonymous, seed 001's 5/min; per user
# otherwise), frames per connection per minute, frame size, generations in flight per socket.
WS_CONNECTS_PER_MINUTE_ANONYMOUS = env.int("WS_CONNECTS_PER_MINUTE_ANONYMOUS", default=5)
WS_CONNECTS_PER_MINUTE = env.int("WS_CONNECTS_PER_MINUTE", default=30)
WS_MESSAGES_PER_MINUTE = env.int("WS_MESSAGES_PER_MINUTE", default=60)
WS_MAX_FRAME_BYTES = env.int("WS_MAX_FRAME_BYTES", default=64 * 1024)
WS_MAX_IN_FLIGHT = env.int("WS_MAX_IN_FLIGHT", default=8)
ANONYMOUS_CHAT = env.bool("ANONYMOUS_CHAT", default=True)

# --- Providers (read by providers/; listed here so one file documents every variable) -------
DEFAULT_PROVIDER = env.str("DEFAULT_PROVIDER", default="")
DEFAULT_MODEL = env.str("DEFAULT_MODEL", default="")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="")
GEMINI_API_KEY = env.str("GEMINI_API_KEY", default="")
GEMINI_BASE_URL = env.str("GEMINI_BASE_URL", default="")
LOCAL_MODEL_PATH = env.str("LOCAL_MODEL_PATH", default="")
ALLOW_PRIVATE_OUTBOUND = env.bool("ALLOW_PRIVATE_OUTBOUND", default=False)
# Webhook delivery: per-attempt timeout, attempts per delivery, backoff cap, and how many
# consecutive failed attempts disable a webhook.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=5)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_MAX_SECONDS = env.int("WEBHOOK_RETRY_MAX_SECONDS", default=3600)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=15)
WEBHOOKS_PER_USER = env.int("WEBHOOKS_PER_USER", default=20)
# Key for encrypting provider API keys at rest (default: derived from SECRET_KEY).
PROVIDER_ENCRYPTION_KEY = env.str("PROVIDER_ENCRYPTION_KEY", default="")
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=60.0)
PROVIDER_MAX_RETRIES = env.int("PROVIDER_MAX_RETRIES", default=2)
# Circuit breaker (per provider, per worker process): after this many failed attempts in a row the
# provider is skipped for the cooldown, then one trial call is let through.
PROVIDER_BREAKER_THRESHOLD = env.int("PROVIDER_BREAKER_THRESHOLD", default=5)
PROVIDER_BREAKER_COOLDOWN_SECONDS = env.float("PROVIDER_BREAKER_COOLDOWN_SECONDS", default=30.0)


def _fallback_chains(raw: str) -> dict[str, list[str]]:
    """``MODEL_FALLBACKS``: ``model=fallback1,fallback2;other=fallback3`` (model ids of the catalogue)."""
    chains: dict[str, list[str]] = {}
    for entry in filter(None, (e.strip() for e in raw.split(";"))):
        model, sep, targets = entry.partition("=")
        chain = [t.strip() for t in targets.split(",") if t.strip()]
        if not sep or not model.strip() or not chain:
            raise ImproperlyConfigured(f"MODEL_FALLBACKS: expected 'model=fallback1,fallback2', got {entry!r}")
        chains[model.strip()] = chain
    return chains


# A request that names a model (or provider) gets that model or an error; other models answer
# only along the chain configured for the named model (here, or in a ProviderConfig row's
# ``fallbacks``). A request that names nothing uses the default provider, then DEFAULT_FALLBACKS:
# model ids, "none" for no fallback, unset for every other configured provider by priority.
MODEL_FALLBACKS = _fallback_chains(env.str("MODEL_FALLBACKS", default=""))
_default_fallbacks = env.str("DEFAULT_FALLBACKS", default="").strip()
DEFAULT_FALLBACKS: list[str] | None = (
    None if not _default_fallbacks else
    [] if _default_fallbacks.lower() == "none" else [m.strip() for m in _default_fallbacks.split(",") if m.strip()]
)

# --- REST framework and OpenAPI -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTAuthentication",  # JWTs and cpk_ keys as Bearer
        "accounts.authentication.ApiKeyAuthentication",  # cpk_ keys as ApiKey / X-API-Key
        "support.authentication.ChatbotKeyAuthentication",  # cbk_ keys; the two above defer them
        # Last: credentials presented but claimed by none of the above are a 401.
        "chatplatform.api.credentials.UnclaimedCredentialsAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "chatplatform.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "chatplatform API",
    "DESCRIPTION": "Self-hosted multi-provider LLM chat backend.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_AUTHENTICATION": [],
    "PREPROCESSING_HOOKS": ["chatplatform.api.schema.drop_root_aliases"],
    "ENUM_NAME_OVERRIDES": {"ProviderKindEnum": "providers.models.ProviderKind",
                            "CustomerLogStatusEnum": "support.models.CustomerLog.Status",
                            "AuthProviderEnum": "accounts.models.AuthProvider",
                            "TeamRoleEnum": "accounts.models.TeamRole",
                            "MessageRoleEnum": "chats.models.Message.Role",
                            "ReasoningSummaryEnum": "chats.responses_inputs.REASONING_SUMMARY",
                            "FunctionTypeEnum": "chats.openai_inputs.FUNCTION_TYPE",
                            "ResponseFormatTypeEnum": "chats.openai_inputs.RESPONSE_FORMAT_TYPES"},
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI and ReDoc assets are served from this server (no CDN: works offline).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- CORS -----------------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = [o for o in ALLOWED_ORIGINS if o != "*"]
CORS_ALLOW_ALL_ORIGINS = "*" in ALLOWED_ORIGINS
CORS_EXPOSE_HEADERS = [
    "X-Request-ID", "X-Process-Time", "X-Cache-Status", "X-Total-Count", "Retry-After",
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-Gateway-Overhead-Ms",
    "X-Stream-ID", "X-Chat-ID", "Idempotent-Replayed",
]
CORS_ALLOW_HEADERS = [
    "accept", "authorization", "content-type", "origin", "user-agent", "x-requested-with",
    "x-request-id", "x-api-key", "idempotency-key", "last-event-id",
]
CSRF_TRUSTED_ORIGINS = [o for o in ALLOWED_ORIGINS if o.startswith(("http://", "https://"))]

# --- Security (production) -----------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None
# TLS is usually terminated (and http redirected) by the proxy in front; opt in here otherwise.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^api/v1/health"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=5 * 1024 * 1024)

# --- documents and RAG (knowledge) ----------------------------------------------------------
DOCUMENT_MAX_BYTES = env.int("DOCUMENT_MAX_BYTES", default=4 * 1024 * 1024)  # per upload (413 over it)
DOCUMENT_MAX_CHUNKS = env.int("DOCUMENT_MAX_CHUNKS", default=2000)  # per document (it fails over it)
RAG_TOP_K = env.int("RAG_TOP_K", default=5)  # chunks a use_rag turn retrieves
RAG_CONTEXT_TOKENS = env.int("RAG_CONTEXT_TOKENS", default=1500)  # of them, at most this many tokens join the prompt

# --- i18n, static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_JSON = env.bool("LOG_JSON", default=False)
# The application log as JSON lines (rotated), read by GET /api/v1/admin/logs across workers;
# without it that route shows this worker's recent records (an in-memory ring).
LOG_FILE = env.str("LOG_FILE", default="")
LOG_FILE_MAX_BYTES = 5 * 1024 * 1024

# --- Request log and maintenance (adminpanel) ---------------------------------------------------
REQUEST_LOG_ENABLED = True
REQUEST_LOG_RETENTION_DAYS = env.int("REQUEST_LOG_RETENTION_DAYS", default=30)
REQUEST_LOG_BATCH_SIZE = 50  # rows per insert
REQUEST_LOG_FLUSH_SECONDS = 5.0  # or sooner, when the oldest buffered row is this old
REQUEST_LOG_BACKGROUND = True  # tests flush by hand
# Usage rows (one per provider call) are written behind the reply, in batches of up to
# USAGE_BATCH_SIZE, at most USAGE_FLUSH_SECONDS after the call (chatplatform/api/writebehind.py).
USAGE_WRITE_BEHIND = env.bool("USAGE_WRITE_BEHIND", default=True)
USAGE_FLUSH_SECONDS = env.float("USAGE_FLUSH_SECONDS", default=0.1)
USAGE_BATCH_SIZE = 200
if not 0 < USAGE_FLUSH_SECONDS <= 60:
    raise ImproperlyConfigured(f"USAGE_FLUSH_SECONDS must be above 0 and at most 60, not {USAGE_FLUSH_SECONDS}.")
# Conversations untouched this long are deleted by the prune_conversations task (0: never).
CONVERSATION_RETENTION_DAYS = env.int("CONVERSATION_RETENTION_DAYS", default=0)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "chatplatform.api.logging.RequestIdFilter"},
        "redact": {"()": "chatplatform.api.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "timestamp", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "plain",
            "filters": ["request_id", "redact"],
        },
        **({"file": {
            # JSON lines shared by every worker process: what GET /api/v1/admin/logs reads.
            "class": "logging.handlers.RotatingFileHandler",
            "filename": LOG_FILE,
            "maxBytes": LOG_FILE_MAX_BYTES,
            "backupCount": 3,
            "formatter": "json",
            "filters": ["request_id", "redact"],
        }} if LOG_FILE else {}),
        "memory": {
            "class": "chatplatform.api.logging.RecentLogsHandler",
            "filters": ["request_id", "redact"],
        },
    },
    "root": {"handlers": ["console", "memory", *(["file"] if LOG_FILE else [])], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.request": {"level": "ERROR"},
    },
}
