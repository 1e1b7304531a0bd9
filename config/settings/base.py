"""Settings shared by every environment. Everything that varies comes from the environment."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from pathlib import Path

import babel
import dj_database_url
import plotly
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.env import env_bool, env_choice, env_decimal, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(env_str("INFERENSYS_DATA_DIR", str(BASE_DIR / ".data")))

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "insecure-dev-key-change-me-" + "x" * 32)
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.admin_site.SuperuserAdminConfig",  # the Django admin, superusers only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "axes",
    "csp",
    "config.apps.InferensysConfig",
    "attribution",
    "governance",
    "routing",
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
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "config.navigation.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
# DATABASE_URL set -> that server. Unset -> an embedded Postgres under .data/postgres, started on
# demand and reused (see config/embedded_db.py).
_database_url = env_str("DATABASE_URL", "")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)}
else:
    from config.embedded_db import ensure_embedded_postgres

    DATABASES = {
        "default": ensure_embedded_postgres(DATA_DIR, env_str("INFERENSYS_EMBEDDED_DATABASE", "inferensys"))
    }
# A backend notices that its client died (kill -9) only when it next talks to it: while it waits
# for a lock or runs a long statement it keeps the session's advisory locks, and a dead ingest run
# would look alive (attribution/ingest/services.py: the run's execution lock). Postgres (>= 14, Linux)
# checks the client's socket this often meanwhile. 0 turns the check off.
DATABASE_CLIENT_CHECK_SECONDS = env_int("INFERENSYS_DATABASE_CLIENT_CHECK_SECONDS", 10, minimum=0)
if DATABASE_CLIENT_CHECK_SECONDS:
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _check = f"-c client_connection_check_interval={DATABASE_CLIENT_CHECK_SECONDS * 1000}"
    _options["options"] = f"{_options.get('options', '')} {_check}".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a login attempt from a locked-out username or client address
# before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "config.security.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "attribution:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# The organisation's time zone and locale: every page shows days and times in this zone and formats
# money and numbers for this locale (attribution/design.py). A wrong value stops start-up here rather
# than showing yesterday's spend as today's.
TIME_ZONE = env_str("INFERENSYS_TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
    raise ImproperlyConfigured(f"INFERENSYS_TIME_ZONE={TIME_ZONE!r} is not an IANA time zone") from error
INFERENSYS_LOCALE = env_str("INFERENSYS_LOCALE", "en_US")
try:
    babel.Locale.parse(INFERENSYS_LOCALE)
except (ValueError, babel.UnknownLocaleError) as error:
    raise ImproperlyConfigured(
        f"INFERENSYS_LOCALE={INFERENSYS_LOCALE!r} is not a locale such as en_US"
    ) from error
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
# plotly.js comes from the plotly Python package itself: served locally, no CDN, and always the
# version the server-side figure code was written for.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", Path(plotly.__file__).resolve().parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Login throttling (django-axes) ---------------------------------------------------------------
# After AXES_FAILURE_LIMIT failed logins for one username, or from one client address (each counted
# on its own), further attempts answer 429 for AXES_COOLOFF_TIME, whatever the password, on
# /login/ and /admin/login/ alike. Attempts are stored in the database, so every web process
# shares the count. `manage.py axes_reset` (or axes_reset_username USER) lifts a lockout early.
AXES_FAILURE_LIMIT = env_int("INFERENSYS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("INFERENSYS_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"
# The client address is REMOTE_ADDR unless a trusted proxy count is given (then X-Forwarded-For).
AXES_IPWARE_PROXY_COUNT = env_int("INFERENSYS_TRUSTED_PROXY_COUNT", 0, minimum=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# --- Content-Security-Policy (django-csp) ---------------------------------------------------------
# Every page loads scripts only from our own static files (no inline script: data is handed over
# in json_script blocks, which are not executed). Styles allow 'unsafe-inline' because plotly.js
# injects <style> rules at run time; style injection cannot run script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# --- Product settings -----------------------------------------------------------------------------
REPORTING_CURRENCY = env_str("INFERENSYS_REPORTING_CURRENCY", "USD")
# How long the Overview's rendered content stays in the cache (0: never cached). Entries are keyed
# on the data version, so a change shows on the next request whatever this is; it only bounds
# how long superseded entries linger.
OVERVIEW_CACHE_SECONDS = env_int("INFERENSYS_OVERVIEW_CACHE_SECONDS", 600, minimum=0)
# Key for the HMAC of API and gateway tokens; defaults to SECRET_KEY so a dev setup needs nothing.
TOKEN_HASH_KEY = env_str("INFERENSYS_TOKEN_HASH_KEY", SECRET_KEY)
EXPORTS_DIR = Path(env_str("INFERENSYS_EXPORTS_DIR", str(DATA_DIR / "exports")))
# Billing files uploaded on the Ingestion page (one folder per upload), read by the ingest worker.
INGEST_UPLOAD_DIR = Path(env_str("INFERENSYS_INGEST_UPLOAD_DIR", str(DATA_DIR / "uploads")))
INGEST_CHUNK_ROWS = env_int("INFERENSYS_INGEST_CHUNK_ROWS", 50_000, minimum=1_000)
# How the batch path sends line items to COPY: CSV text, or Postgres's binary format
# (attribution/ingest/pgcopy.py: a third less server CPU, but slower in wall time on a loaded
# machine in the measurements so far; README "Ingest performance").
INGEST_COPY_FORMAT = env_choice("INFERENSYS_INGEST_COPY_FORMAT", "csv", ["csv", "binary"])
# How old the latest exchange rate may be for a charge date before a conversion refuses to guess.
EXCHANGE_RATE_MAX_AGE_DAYS = env_int("INFERENSYS_EXCHANGE_RATE_MAX_AGE_DAYS", 7, minimum=0)
# Leases (POST /api/v1/leases): how long a grant lasts before its unused part returns to the pool.
LEASE_TTL_SECONDS = env_int("INFERENSYS_LEASE_TTL_SECONDS", 30, minimum=1)
# Who may ask for a lease: gateways, authenticated by their token. Named by import path so that
# governance does not import routing (the layer above it). The cached class answers from the
# policy endpoint's shared Redis cache (routing/policy_cache.py) and falls back to the database.
LEASE_AUTHENTICATION_CLASSES = ["routing.auth.CachedGatewayTokenAuthentication"]
# Alerts: webhook deliveries are retried with exponential backoff this many times.
ALERT_DELIVERY_MAX_ATTEMPTS = env_int("INFERENSYS_ALERT_DELIVERY_MAX_ATTEMPTS", 5, minimum=1)
# Anomalies: a day's excess over the expected spend must be at least this (reporting currency).
ANOMALY_MIN_IMPACT = env_decimal("INFERENSYS_ANOMALY_MIN_IMPACT", Decimal("50"))
ALERT_WEBHOOK_TIMEOUT_SECONDS = env_int("INFERENSYS_ALERT_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# Price of an output token relative to an input token, for splitting a deployment's cost into cost
# per 1M input and per 1M output tokens when its price cards do not say.
UNIT_COST_OUTPUT_INPUT_RATIO = env_decimal("INFERENSYS_UNIT_COST_OUTPUT_INPUT_RATIO", Decimal("1"))
# Routing: how much a restored deployment's weight cap rises per evaluation cycle; the error rate a
# gateway may report before a deployment is drained; how long a gateway may take to apply a new
# document before an alert.
ROUTING_RESTORE_STEP = env_decimal("INFERENSYS_ROUTING_RESTORE_STEP", Decimal("0.25"))
ROUTING_MAX_ERROR_RATE = env_decimal("INFERENSYS_ROUTING_MAX_ERROR_RATE", Decimal("0.5"))
ROUTING_APPLY_DEADLINE_SECONDS = env_int("INFERENSYS_ROUTING_APPLY_DEADLINE_SECONDS", 120, minimum=5)
# GET /api/v1/gateways/self/policy answers from the shared Redis cache (routing/policy_cache.py);
# entries are invalidated at once on publish, token rotation and revocation, and expire after this
# many seconds anyway (also how stale a gateway's last_seen_at may be, beyond its 10 s precision).
# 0 turns the cache off. Without a Redis cache it is off.
GATEWAY_POLICY_CACHE_SECONDS = env_int("INFERENSYS_GATEWAY_POLICY_CACHE_SECONDS", 5, minimum=0)
# Each web process also keeps the entries it served (and counts the token rate in batches), told of
# every publish, rotation and revocation by a Redis pub/sub message it reads before each answer:
# a warm poll then needs no round trip at all. Off: every poll makes one Redis round trip.
GATEWAY_POLICY_LOCAL_CACHE = env_bool("INFERENSYS_GATEWAY_POLICY_LOCAL_CACHE", True)
# Plotly checks every property and value of a page's figures as they are built (a third to a half of
# the overview's server time). On in tests (config/settings/test.py), where a misspelt property must
# fail loudly; off when serving, where the same code builds the same JSON unchecked.
PLOTLY_VALIDATE = env_bool("INFERENSYS_PLOTLY_VALIDATE", False)

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Token scopes are checked on every method of every endpoint (attribution.api.base).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "attribution.api.access.TokenScopePermission",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "attribution.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Token-authenticated calls are rate-limited per token (429 with Retry-After).
    "DEFAULT_THROTTLE_CLASSES": ["attribution.api.access.TokenRateThrottle"],
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Inferensys API",
    "DESCRIPTION": "Cost governance for ML inference: attribution, budgets and routing policy.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets come from drf-spectacular-sidecar: no CDN is needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and Swagger UI are for signed-in users and API tokens: they map every endpoint
    # and filter, which an anonymous caller has no need to read.
    "SERVE_PERMISSIONS": [
        "rest_framework.permissions.IsAuthenticated",
        "attribution.api.access.TokenScopePermission",
    ],
    # Choice sets shared by several serializers get one name each in the schema.
    "ENUM_NAME_OVERRIDES": {
        "AlertKindEnum": "governance.choices.AlertKind",
        "ChannelKindEnum": "governance.choices.ChannelKind",
    },
}
# Requests per minute allowed to one API token and to one gateway token.
API_TOKEN_RATE_PER_MINUTE = env_int("INFERENSYS_API_TOKEN_RATE_PER_MINUTE", 600, minimum=1)
GATEWAY_TOKEN_RATE_PER_MINUTE = env_int("INFERENSYS_GATEWAY_TOKEN_RATE_PER_MINUTE", 3000, minimum=1)

# --- Celery ---------------------------------------------------------------------------------------
# CELERY_BROKER_URL set -> that broker (Redis in production and tests). Unset -> a filesystem broker
# under .data/celery so `make demo` runs a real worker and beat without a separate server.
_broker_url = env_str("CELERY_BROKER_URL", "")
# The longest task: one ingest run (attribution.tasks.ingest_run_execute_task).
INGEST_TASK_SOFT_TIME_LIMIT = env_int("INFERENSYS_INGEST_SOFT_TIME_LIMIT", 3 * 3600, minimum=60)
INGEST_TASK_TIME_LIMIT = INGEST_TASK_SOFT_TIME_LIMIT + 300
# A pending ingest of remote files nobody started for this long lost its task message (a broker
# restarted without persistence): the storage sweeper enqueues it again (attribution/ingest/sweep.py).
INGEST_PENDING_STALE_SECONDS = env_int("INFERENSYS_INGEST_PENDING_STALE_SECONDS", 1800, minimum=5)
if _broker_url:
    CELERY_BROKER_URL = _broker_url
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        # Redis redelivers a message not acknowledged within this many seconds, even while its
        # task still runs: it must outlast the longest task (acks_late tasks are acknowledged at
        # the end). A killed worker's ingest does not wait for it: the storage sweeper finds the
        # dead run within a minute and enqueues it again (attribution/ingest/sweep.py).
        "visibility_timeout": INGEST_TASK_TIME_LIMIT + 600,
    }
else:
    _celery_dir = DATA_DIR / "celery"
    for _folder in ("queue", "control", "processed"):
        (_celery_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # In and out must be the same folder for the filesystem transport to deliver.
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "control_folder": str(_celery_dir / "control"),
        "processed_folder": str(_celery_dir / "processed"),
        "store_processed": False,
        "polling_interval": 0.2,
    }

# --- Cache ----------------------------------------------------------------------------------------
# API throttles count in the cache and the worker warms the Overview's cache for the web process, so
# every process must share it: Redis when there is one (INFERENSYS_CACHE_URL, else the Redis broker),
# otherwise files under .data/cache (`make demo`: a memory cache would be each process's own, and
# the web process would never read what the worker warmed). The file cache is keyed per database so
# two databases served from one data folder (the demo's, bench/pages.py's) never share a page.
_cache_url = env_str("INFERENSYS_CACHE_URL", _broker_url if _broker_url.startswith("redis") else "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
            "KEY_PREFIX": str(DATABASES["default"]["NAME"]),
            "OPTIONS": {"MAX_ENTRIES": 2000},
        }
    )
}

CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("default"), Queue("ingest"), Queue("rollup"))
CELERY_TASK_ROUTES = {
    "attribution.tasks.ingest_*": {"queue": "ingest"},
    "attribution.tasks.rollup_*": {"queue": "rollup"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A lost broker connection (Redis restarting) does not cancel running tasks: an ingest finishes
# and its possible redelivery is a no-op (the run is claimed once; see attribution/ingest/services.py).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = env_choice("INFERENSYS_LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # It logs every process exit at INFO; only its problems matter to us.
        "embedded_postgres": {"level": "WARNING"},
        # It logs every successful login at INFO; lockouts are WARNING.
        "axes": {"level": "WARNING"},
    },
}
