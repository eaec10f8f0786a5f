"""Settings for amo-hub, read from the environment (and ``.env``) through django-environ.

Defaults give the embedded mode: SQLite, a broker on the file system, no server needed.
Production sets ``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL`` (Redis).
"""

import os
from datetime import timedelta
from pathlib import Path

import environ

from hub.secret_settings import SecretSettings, https_origins

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Mode and secrets -----------------------------------------------------------------
# Embedded mode (no DATABASE_URL: SQLite, `make run`) runs with no set-up; anything else is
# production, where a missing secret stops the start with one message naming it. A secret
# left unset is read from the file of its name in HUB_SECRETS_DIR (a volume filled once by
# `python -m hub.secrets_init DIR`), so the old service's .env works as it is.
EMBEDDED = not env("DATABASE_URL", default="")
_secrets = SecretSettings(env, embedded=EMBEDDED, secrets_dir=env("HUB_SECRETS_DIR", default=""))
SECRET_KEY = _secrets.value(
    "SECRET_KEY", file="secret_key", embedded_default="embedded-mode-only-not-a-secret"
)
# Fernet keys for the secrets stored in the database (hub/encryption.py): the first
# encrypts, all decrypt. Embedded with none set: one is generated into this file on first use.
HUB_ENCRYPTION_KEYS = _secrets.fernet_keys("HUB_ENCRYPTION_KEYS", file="encryption_keys")
HUB_ENCRYPTION_KEY_FILE = VAR_DIR / "encryption.key" if EMBEDDED else None
_secrets.check()

# --- Django ---------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Unless set: https://NGX_SERVER_NAME[:HOST_PORT], the origin browsers send through nginx.
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS",
    default=https_origins(env("NGX_SERVER_NAME", default=""), env("HOST_PORT", default="")),
)
# nginx terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    # The intake's OpenAPI description (integrations/sync/openapi.py).
    "drf_spectacular",
    "django_celery_beat",
    # Who changed which flow, mapping or account, and what: one row per change, kept by
    # a maintained app rather than hand-written signal handlers.
    "auditlog",
    # Admin login throttling: failures counted per user name and address, then a lockout.
    "axes",
    "integrations.amocrm",
    "integrations.sync",
    "integrations.monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "hub.middleware.HubLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "hub.middleware.AccountTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a refused (locked out) login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# axes first: it refuses a locked-out login before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "hub.urls"
WSGI_APPLICATION = "hub.wsgi.application"

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

DATABASES = {
    "default": env.db_url_config(
        _secrets.database_url(
            env("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'hub.sqlite3'}"),
            password_file="postgres_password",
        )
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker share the file: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # One connection per web process (or thread) kept across requests: opening one per
    # request cost more than the request itself (tests/benchmarks/intake_wrk.py). A
    # No health check (a SELECT 1 before each request's first query): the intake makes
    # one round trip per request, and runs its queries once more on a new connection when
    # the server closed the kept one (intake_store.py); elsewhere (the admin) such a
    # request fails once, and Django replaces the broken connection after it.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("HUB_DB_CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The hub's people read Russian first, in Moscow time; English stays available.
LANGUAGE_CODE = env("HUB_LANGUAGE", default="ru")
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("HUB_TIME_ZONE", default="Europe/Moscow")
USE_I18N = True
USE_TZ = True
# Digit groups only where a figure is read as an amount (intcomma): AmoCRM and RDESK ids
# must read as typed, 1287599, not 1 287 599.
USE_THOUSAND_SEPARATOR = False
# Dates as 01.12.2026 19:27 in Russian (hub/formats/ru/formats.py).
FORMAT_MODULE_PATH = ["hub.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# --- OpenAPI description of the intake (drf-spectacular) --------------------------------
# Served at /api/schema/ to staff users; `manage.py spectacular --file intake.yaml` writes
# it for anyone else. It describes the flows' paths as they are in the database.
SPECTACULAR_SETTINGS = {
    "TITLE": "amo-hub intake",
    "DESCRIPTION": (
        "The endpoints RDESK posts its webhooks to. Every answer is JSON in English; a "
        'stored body is answered 200 {"status":"ok"}.'
    ),
    "VERSION": "1",
    "PREPROCESSING_HOOKS": ["integrations.sync.openapi.intake_endpoints"],
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "tokenQuery": {
                "type": "apiKey",
                "in": "query",
                "name": "token",
                "description": "The flow's secret token as ?token=...; or in the path.",
            },
            "basicAuth": {
                "type": "http",
                "scheme": "basic",
                "description": "The flow's user and password (https://user:password@host/...).",
            },
        }
    },
    # The description reads the flows from the database, which `check --deploy` may run
    # without (before the first start); tests/integrations/sync/test_openapi.py validates it.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "SERVE_AUTHENTICATION": ["rest_framework.authentication.SessionAuthentication"],
}

# --- Logging: one JSON object per line, secrets never passed in -----------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "hub.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # At DEBUG these log token requests and answers whole: client secret, codes, tokens.
        "requests_oauthlib": {"level": "INFO"},
        "oauthlib": {"level": "INFO"},
        # At DEBUG urllib3 logs every request line, query string included.
        "urllib3": {"level": "INFO"},
    },
}

# --- Celery ---------------------------------------------------------------------------
# Every Redis key the hub writes (broker queues, rate-limit windows) starts with this.
HUB_REDIS_PREFIX = env("HUB_REDIS_PREFIX", default="amohub:")
# Seconds any Redis call (broker, rate limiter) may take before it fails and is retried.
HUB_REDIS_SOCKET_TIMEOUT = env.float("HUB_REDIS_SOCKET_TIMEOUT", default=5.0)
# Embedded default: a broker on the file system, so no server is needed.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # The broker's keys carry the hub's prefix, so several hubs can share one Redis. A
    # socket timeout turns a Redis that hangs into an error that is retried, not a hang.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "global_keyprefix": HUB_REDIS_PREFIX,
        "socket_timeout": HUB_REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": HUB_REDIS_SOCKET_TIMEOUT,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = HUB_REDIS_SOCKET_TIMEOUT
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Unset, Celery closes every database connection before and after every task: each drain
# then opened a new PostgreSQL session (a server process forked, its caches built again),
# hundreds a minute under load. Set, Celery closes them only every this many tasks, and
# hub/celery.py applies Django's own rules between tasks instead (CONN_MAX_AGE, a broken
# connection dropped), as a web request's end does.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-events": {
        "task": "integrations.sync.tasks.sweep_stuck_events",
        "schedule": env.float("HUB_SWEEP_INTERVAL", default=60.0),
    },
    "refresh-amocrm-tokens": {
        "task": "integrations.amocrm.tasks.refresh_tokens",
        "schedule": env.float("AMOCRM_REFRESH_INTERVAL", default=3600.0),
    },
    # Alerts: every minute, on short timeouts, apart from deliveries (see monitoring).
    "evaluate-alerts": {
        "task": "integrations.monitoring.tasks.evaluate_alerts",
        "schedule": env.float("HUB_ALERT_INTERVAL", default=60.0),
    },
    "check-mappings": {
        "task": "integrations.monitoring.tasks.check_mappings",
        "schedule": env.float("HUB_MAPPING_CHECK_INTERVAL", default=24 * 3600.0),
    },
    "prune-events": {
        "task": "integrations.sync.tasks.prune_events",
        "schedule": env.float("HUB_RETENTION_INTERVAL", default=24 * 3600.0),
    },
}

# --- Change history (django-auditlog) --------------------------------------------------
# Who changed the configuration. Secrets are left out of the log entirely.
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {"model": "amocrm.account", "exclude_fields": ["client_secret", "long_lived_token"]},
    # Digests of intake secrets are no one's reading; the history says when they changed.
    {
        "model": "sync.flow",
        "exclude_fields": [
            "intake_token_digest",
            "intake_previous_token_digest",
            "intake_basic_password_digest",
        ],
    },
    "sync.fieldmapping",
    "sync.flowstatusmapping",
)

# --- HTTPS (production is reached through nginx, which terminates TLS) ---------------
# Redirect plain HTTP, send HSTS, keep the session and CSRF cookies to HTTPS. Off in the
# embedded mode (http://127.0.0.1); HUB_HTTPS=false turns all of it off elsewhere.
HUB_HTTPS = env.bool("HUB_HTTPS", default=not EMBEDDED)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HUB_HTTPS)
# The health checks and the metrics scraper call the container itself over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)/?$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if HUB_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HUB_HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HUB_HTTPS)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HUB_HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HUB_HTTPS)

# --- Admin login throttling (django-axes) ----------------------------------------------
# After this many failed logins for one user name from one address, that pair is locked
# out for the cool-off (minutes); `manage.py axes_reset` lifts every lockout at once.
AXES_FAILURE_LIMIT = env.int("HUB_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("HUB_LOGIN_COOLOFF", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/login_locked.html"
# Its start-up banner on every command is noise; lockouts are still logged.
AXES_VERBOSE = False
# The address behind nginx: X-Forwarded-For only from a trusted proxy (hub/login_address.py).
AXES_CLIENT_IP_CALLABLE = "hub.login_address.login_address"
# axes' log lines would name the user and the address: logs carry neither.
AXES_CLIENT_STR_CALLABLE = "hub.login_address.login_client_str"

# --- Intake (RDESK webhooks) ----------------------------------------------------------
# Bodies above this many bytes are refused with 413 (and stored, truncated, as rejected).
HUB_MAX_BODY_BYTES = env.int("HUB_MAX_BODY_BYTES", default=1024 * 1024)
# Behind nginx the caller's address is in X-Forwarded-For; trust it only when told.
HUB_TRUST_X_FORWARDED_FOR = env.bool("HUB_TRUST_X_FORWARDED_FOR", default=False)

# --- Intake security (integrations/sync/intake_auth.py) --------------------------------
# The proxies (CIDRs) whose X-Forwarded-For is believed: behind them the caller is the
# right-most entry that is not one of them. HUB_TRUST_X_FORWARDED_FOR=true (deprecated)
# believes any peer's header instead and takes its left-most entry.
HUB_TRUSTED_PROXIES = env.list("HUB_TRUSTED_PROXIES", default=[])
# Seconds a replaced intake token is still accepted after "rotate" (default 7 days).
HUB_INTAKE_TOKEN_GRACE = env.float("HUB_INTAKE_TOKEN_GRACE", default=7 * 24 * 3600.0)
# Of a request refused for its credentials or address, only this many bytes are kept.
HUB_REJECTED_BODY_BYTES = env.int("HUB_REJECTED_BODY_BYTES", default=4096)
# The hub's public address, for the intake URLs the admin shows (default: the address
# the admin was opened at), e.g. https://hub.example.ru.
HUB_INTAKE_BASE_URL = env("HUB_INTAKE_BASE_URL", default="")

# --- Intake validation and routing --------------------------------------------------------
# Requests with more items than this are refused with 413 (and stored as rejected).
HUB_MAX_ITEMS_PER_REQUEST = env.int("HUB_MAX_ITEMS_PER_REQUEST", default=500)
# How long each web process keeps its copy of the flows by path: another process's
# change of a flow's path applies here within this many seconds (0: read every request).
HUB_FLOW_CACHE_SECONDS = env.float("HUB_FLOW_CACHE_SECONDS", default=5.0)

# --- Delivery -------------------------------------------------------------------------
# Retries back off exponentially with jitter from the base delay up to the cap, until an
# event is older than the maximum age; then it is failed (and replayable in the admin).
HUB_RETRY_BASE_DELAY = env.float("HUB_RETRY_BASE_DELAY", default=10.0)
HUB_RETRY_MAX_DELAY = env.float("HUB_RETRY_MAX_DELAY", default=3600.0)
HUB_RETRY_MAX_AGE = env.float("HUB_RETRY_MAX_AGE", default=3 * 24 * 3600.0)
# A worker holds an event this long unless its heartbeat extends it (every third of it);
# a killed worker's events are taken over once it runs out.
HUB_DELIVERY_LEASE = env.float("HUB_DELIVERY_LEASE", default=30.0)
# Lead updates per PATCH /api/v4/leads: AmoCRM recommends 50 and refuses more than 250.
HUB_BATCH_SIZE = min(250, max(1, env.int("HUB_BATCH_SIZE", default=50)))
# A worker drains one account this long, then hands the rest to a fresh task.
HUB_DRAIN_BUDGET = env.float("HUB_DRAIN_BUDGET", default=60.0)
# A drain message not taken by a worker within this long is taken to be lost.
HUB_NUDGE_TTL = env.float("HUB_NUDGE_TTL", default=300.0)
# Events waiting this long past their due time are re-enqueued by the sweeper.
HUB_SWEEP_GRACE = env.float("HUB_SWEEP_GRACE", default=60.0)

# --- Retention of personal data ------------------------------------------------------
# After this many days an event's bodies (raw body, payload, headers, its attempts' requests
# and answers) are replaced by a summary without personal data; ids, amounts, dates,
# statuses and AmoCRM's status codes stay. Delivered and skipped events:
HUB_RETENTION_DELIVERED_DAYS = env.int("HUB_RETENTION_DELIVERED_DAYS", default=90)
# Failed and rejected ones are kept whole longer, for investigating and replaying them.
HUB_RETENTION_FAILED_DAYS = env.int("HUB_RETENTION_FAILED_DAYS", default=180)
# Events pruned per transaction: few enough that the locks are short and memory small.
HUB_RETENTION_BATCH_SIZE = max(1, env.int("HUB_RETENTION_BATCH_SIZE", default=200))

# --- AmoCRM ---------------------------------------------------------------------------
# The old service's variables; `manage.py bootstrap_from_env` turns them into rows.
AMO_SUBDOMAIN = env("AMO_SUBDOMAIN", default="")
AMO_CLIENT_ID = env("AMO_CLIENT_ID", default="")
AMO_CLIENT_SECRET = env("AMO_CLIENT_SECRET", default="")
AMO_REDIRECT_URL = env("AMO_REDIRECT_URL", default="")
AMO_AUTH_CODE = env("AMO_AUTH_CODE", default="")
# Any AmoCRM-compatible server (e.g. the emulator); default https://{subdomain}.amocrm.ru.
AMO_BASE_URL = env("AMO_BASE_URL", default="")
AMO_LONG_LIVED_TOKEN = env("AMO_LONG_LIVED_TOKEN", default="")
# RDESK sends local dates; AmoCRM date fields are written in this zone.
AMO_TIMEZONE = env("AMO_TIMEZONE", default="Europe/Moscow")
MOCKED_LEAD_ID = env.bool("MOCKED_LEAD_ID", default=False)  # the old --mocked-lead-id flag
# (connect, read) seconds for every call to AmoCRM.
AMOCRM_TIMEOUT = (
    env.float("AMOCRM_CONNECT_TIMEOUT", default=5.0),
    env.float("AMOCRM_READ_TIMEOUT", default=30.0),
)
# Refresh an access token this long before it expires.
AMOCRM_REFRESH_MARGIN = env.float("AMOCRM_REFRESH_MARGIN", default=300.0)
# Beat refreshes every pair older than this, far inside the refresh token's 3-month life,
# so a quiet account (no webhooks for weeks) never loses its connection.
AMOCRM_PROACTIVE_REFRESH_AGE = env.float("AMOCRM_PROACTIVE_REFRESH_AGE", default=7 * 24 * 3600.0)
# AmoCRM's limit: requests per second per integration. The hub sends one request at a time
# per integration and takes at most one fewer slot per (widened) second, which keeps
# AmoCRM's own count within the limit whatever the delays (integrations/amocrm/ratelimit.py).
AMOCRM_RATE_LIMIT = env.int("AMOCRM_RATE_LIMIT", default=7)
AMOCRM_RATE_WINDOW = 1.0 + env.float("AMOCRM_RATE_MARGIN", default=0.05)
AMOCRM_RATE_REDIS_URL = env(
    "AMOCRM_RATE_REDIS_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)

# --- Monitoring: health, metrics, alerts (integrations/monitoring) -----------------------
# /readyz fails when the oldest event due for delivery has waited longer than this.
HUB_READY_BACKLOG_AGE = env.float("HUB_READY_BACKLOG_AGE", default=300.0)
# Seconds /readyz waits for the broker before calling it down.
HUB_READY_BROKER_TIMEOUT = env.float("HUB_READY_BROKER_TIMEOUT", default=2.0)
# /metrics wants "Authorization: Bearer <token>" when set; unset, it answers only callers
# on loopback or private addresses that came through no proxy (no X-Forwarded-For).
HUB_METRICS_TOKEN = env("HUB_METRICS_TOKEN", default="")
# Counters of every web and worker process go to files here (prometheus-client's
# multiprocess mode); web and worker containers share the directory. Set before
# prometheus_client is imported: it picks its mode then.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
# Alert channels named in the environment work without any row in the admin.
HUB_ALERT_EMAILS = env.list("HUB_ALERT_EMAILS", default=[])
HUB_TELEGRAM_BOT_TOKEN = env("HUB_TELEGRAM_BOT_TOKEN", default="")
HUB_TELEGRAM_CHAT_ID = env("HUB_TELEGRAM_CHAT_ID", default="")
# (connect, read) seconds for each call to Telegram: a dead channel never holds alerts up.
HUB_TELEGRAM_TIMEOUT = (
    env.float("HUB_TELEGRAM_CONNECT_TIMEOUT", default=3.0),
    env.float("HUB_TELEGRAM_READ_TIMEOUT", default=5.0),
)
HUB_TELEGRAM_API_URL = env("HUB_TELEGRAM_API_URL", default="https://api.telegram.org")
# Seconds an SMTP server may take per alert e-mail.
HUB_ALERT_EMAIL_TIMEOUT = env.float("HUB_ALERT_EMAIL_TIMEOUT", default=10.0)
# AmoCRM revokes a refresh token at three months: warn this many days after its issue.
HUB_ALERT_REFRESH_TOKEN_AGE_DAYS = env.int("HUB_ALERT_REFRESH_TOKEN_AGE_DAYS", default=80)
# More than this many events failed within the window (seconds) is an incident.
HUB_ALERT_FAILED_THRESHOLD = env.int("HUB_ALERT_FAILED_THRESHOLD", default=10)
HUB_ALERT_FAILED_WINDOW = env.float("HUB_ALERT_FAILED_WINDOW", default=3600.0)
# An event waiting for delivery longer than this (seconds since it arrived) is one.
HUB_ALERT_BACKLOG_AGE = env.float("HUB_ALERT_BACKLOG_AGE", default=3600.0)
# Django's mail settings, for the e-mail channel.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = HUB_ALERT_EMAIL_TIMEOUT
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="amo-hub@localhost")
# --- Web server (gunicorn, hub/wsgi.py) --------------------------------------------------
# Paths served with the lean middleware chain (no sessions, user, locale, time zone,
# messages, change history): the intake's. Empty: every path gets the full chain.
HUB_LEAN_PATHS = env.list("HUB_LEAN_PATHS", default=["/zdrav/"])
# Under gunicorn's asgi worker (hub/asgi.py): the threads serving everything but the
# intake (the admin, health, metrics), each with its own database connection, and the
# intake's pooled asynchronous connections, with how long a request waits for one, and
# then for its statement (seconds).
HUB_WEB_THREADS = env.int("GUNICORN_THREADS", default=8)
HUB_INTAKE_DB_CONNECTIONS = env.int("HUB_INTAKE_DB_CONNECTIONS", default=4)
HUB_INTAKE_DB_WAIT = env.float("HUB_INTAKE_DB_WAIT", default=10.0)
# The intake's insert is prepared on each of its connections; false behind a connection
# pooler in transaction mode (pgbouncer), where a prepared statement is not kept.
HUB_INTAKE_PREPARE = env.bool("HUB_INTAKE_PREPARE", default=True)
# At most one nudge of an account's workers per this many seconds and web process.
HUB_INTAKE_NUDGE_INTERVAL = env.float("HUB_INTAKE_NUDGE_INTERVAL", default=0.25)
# The admin's URL prefix (nginx's NGX_ADMIN_ALLOW guards the same prefix): a path of its
# own keeps it out of scanners' way.
HUB_ADMIN_PATH = env("HUB_ADMIN_PATH", default="admin/").strip("/") + "/"
