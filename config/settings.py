"""Ledgerline settings, read from the environment (django-environ).

LEDGERLINE_MODE says what this process is: "production" (the default when nothing is set),
"demo" (`manage.py demo` and the sandbox and benchmark commands set it) or "test" (`manage.py test`
and pytest). Only the demo and the tests fall back to the sandbox secrets published in this
repository; in production every secret must come from the environment, or the start stops with
ImproperlyConfigured naming what is missing.
"""
import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Lock, slot and scratch files of this process group (LEDGERLINE_VAR_DIR: one per task cluster).
VAR_DIR = Path(os.environ.get("LEDGERLINE_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
# A `.env` file beside manage.py (or the file LEDGERLINE_ENV_FILE names) fills what the environment leaves unset.
ENV_FILE = Path(os.environ.get("LEDGERLINE_ENV_FILE") or BASE_DIR / ".env")
environ.Env.read_env(ENV_FILE, overwrite=False) if ENV_FILE.is_file() else None

MODES = ("production", "demo", "test")
# pytest loads these settings before any conftest runs: its own PYTEST_VERSION marks a test run.
MODE = env("LEDGERLINE_MODE", default="test" if "PYTEST_VERSION" in os.environ else "production").strip().lower()
if MODE not in MODES:
    raise ImproperlyConfigured(f"LEDGERLINE_MODE is {MODE!r}: it must be one of {', '.join(MODES)}")
PRODUCTION = MODE == "production"

_missing: list[str] = []


def _required(name: str, *, sandbox: str) -> str:
    """A secret: from the environment; the published sandbox value only in the demo and the tests."""
    value = env(name, default="").strip()
    if value:
        return value
    if PRODUCTION:
        _missing.append(name)
        return ""
    return sandbox


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = _required("SECRET_KEY", sandbox="ledgerline-demo-only-secret-key-change-me-in-production")
if PRODUCTION:
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        _missing.append("ALLOWED_HOSTS")
else:
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS, cookies and headers (on by default in production; `manage.py check --deploy` passes) ------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# A load balancer's health probe may speak plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_HTTPONLY = True  # pages send the token from the template (base.html hx-headers), never from the cookie
CSRF_COOKIE_SAMESITE = "Lax"
# Behind a TLS-terminating proxy that sets e.g. X-Forwarded-Proto: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
# (only when that proxy always sets or strips the header: otherwise a client could claim HTTPS).
if env("SECURE_PROXY_SSL_HEADER", default=""):
    _header, _, _value = env("SECURE_PROXY_SSL_HEADER").partition(",")
    if not _header.strip() or not _value.strip():
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https")
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip())
# How many proxies in front of Ledgerline append to X-Forwarded-For (0: the client is REMOTE_ADDR);
# login throttling counts failures per username and client address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "template_partials",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "django_q",
    "simple_history",
    "axes",
    "integrations",
    "exceptions_queue",
    "mappings",
]

MIDDLEWARE = [
    "config.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.bad_input.BadInputMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.htmx.VaryOnHtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # after the authentication middleware: turns a locked-out sign-in into the lockout page
    "axes.middleware.AxesMiddleware",
]

# What a webhook (/webhooks/…) goes through instead (config.wsgi): its views sign nobody in and
# are CSRF-exempt, so only the request id, the security headers and the hostile-input refusals.
WEBHOOK_MIDDLEWARE = [
    "config.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.bad_input.BadInputMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "config.context_processors.navigation",
            ],
            # {% partialdef %} everywhere without {% load partials %} (built into Django 6).
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite file by default (demo and small shops); PostgreSQL in production via DATABASE_URL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'ledgerline.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions: web threads and q2 workers write concurrently without
    # "database is locked" surprises; a file-based test database so threads share it too.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            # The web process leaves WAL checkpoints to the task cluster (a checkpoint inside a
            # webhook's commit is a latency spike); SQLITE_WEB_CHECKPOINT_PAGES is set by web_server().
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000; "
            f"PRAGMA wal_autocheckpoint={env.int('SQLITE_WEB_CHECKPOINT_PAGES', default=1000)};",
        }
    )
    # Writers queue for the database instead of polling for it (see config/sqlite_queue).
    DATABASES["default"]["ENGINE"] = "config.sqlite_queue"
    # one test database file per pytest process, so parallel runs never share one
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-ledgerline-{os.getpid()}.sqlite3")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Keep connections between requests (django-q2's broker closes "old" ones on every enqueue).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
if MODE == "test":
    # Tests sign in hundreds of times: a fast hash there; Django's strong default everywhere else.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed sign-ins for one username from
# one address, further attempts are refused for AXES_COOLOFF_MINUTES (config.views.login_lockout
# renders registration/lockout.html and logs the event on "ledgerline.security").
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.views.login_lockout"
AXES_CLIENT_IP_CALLABLE = "config.views.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # static files served from the app folders, no collectstatic step

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="ledgerline@localhost")
# Who is mailed when a team's exceptions pass their SLA (and who gets the team's daily digest).
ESCALATION_CONTACTS = {
    "ops": env("ESCALATION_OPS", default="ops-lead@example.com"),
    "finance": env("ESCALATION_FINANCE", default="finance-lead@example.com"),
    "ecommerce": env("ESCALATION_ECOMMERCE", default="ecommerce-lead@example.com"),
}
SITE_URL = env("SITE_URL", default="http://localhost:8000")  # links in mails
# /metrics answers a scraper that sends this token (HTTP basic auth, any user name) or a staff sign-in;
# production has no default: unset, only staff may read the metrics.
METRICS_TOKEN = env("METRICS_TOKEN", default="" if PRODUCTION else "ledgerline-demo-metrics-token")

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ledgerline API",
    "VERSION": "1.0.0",
    # The schema needs a signed-in user or a token (the docs page also needs the site's login).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI and Redoc are served from the drf-spectacular-sidecar package: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two models have a "status" field with different choices: each enum gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "ExceptionStatusEnum": "exceptions_queue.models.ExceptionRecord.Status",
        "BulkJobStatusEnum": "exceptions_queue.models.BulkJob.Status",
    },
}

# --- django-q2 --------------------------------------------------------------------------------
def q_workers_default(database: str) -> int:
    """django-q2 workers per cluster unless Q_WORKERS says. On PostgreSQL two per core (at least
    4): a worker waiting for the ERP (paced by its rate limit) leaves the CPU to another. On SQLite
    one per core (at least 2): it lets one writer in at a time, and the ERP waits of a sale are the
    batch sender's (a thread of its own), so more workers only queue for the write lock. The
    flash-sale benchmark measured 4 workers on 2 cores at 24–26 ms of CPU per order, 2 at 20–24 ms,
    with as many orders a second reaching the ERP."""
    cores = os.cpu_count() or 2
    return max(2, cores) if "sqlite" in database else max(4, 2 * cores)  # (an ENGINE or a database URL)


# timeout < retry so a task is never handed out twice while it still runs; finite attempts;
# failures are acknowledged because the flows record their own outcome (link state, exceptions).
Q_CLUSTER = {
    "name": "ledgerline",
    "orm": "default",
    # The ORM broker with its per-task statements compiled once (config/q_broker.py).
    "broker_class": "config.q_broker.CompiledORM",
    # See q_workers_default. The cluster runs below the web server's CPU priority (integrations/servers.py).
    "workers": env.int("Q_WORKERS", default=q_workers_default(DATABASES["default"]["ENGINE"])),
    # A task running longer than `timeout` is killed; one not acknowledged within `retry` is handed
    # out again, so timeout stays below retry (a slow task is never run twice at once), and the
    # flows' claim lease is the timeout (integrations.flows.orders.CLAIM_LEASE).
    "timeout": env.int("Q_TIMEOUT", default=120),
    "retry": env.int("Q_RETRY", default=180),
    # Finite: django-q2's default (0) hands an unacknowledged failure out again for ever.
    "max_attempts": 3,
    # A task that raised or timed out is acknowledged on its first failure (kept among the failed
    # tasks, not handed out again). Its work is not lost with it: the event stays PENDING,
    # PROCESSING or FAILED and the order FAILED with next_retry_at, which the "orders-sweep"
    # schedule re-runs with backoff and finally raises as an owned exception (event_stuck,
    # erp_unavailable). Redelivering failures too would retry the same work twice, without backoff.
    "ack_failures": True,
    "save_limit": -1,  # flows record their own outcome; failures are still kept
    "poll": 0.2,
    "queue_limit": 50,
    # Tasks the pusher takes from the broker per round trip (each dequeue is a write transaction on
    # the ORM broker). In the flash-sale benchmark five measured 37 → 55 orders/s against one, and ten
    # against five 218-220 against 190 orders/s (task CPU 4.0-4.1 against 4.7 ms per order) in runs of
    # the same host speed; twenty was no better than ten.
    "bulk": env.int("Q_BULK", default=10),
    # A worker is replaced after this many tasks, or sooner once it holds more than Q_MAX_RSS KB.
    # django-q2's 500 replaced each worker every few seconds of a sale, and a new one starts cold:
    # its ERP session, its cached item and depot facts (asked of the ERP again) and compiled statements.
    "recycle": env.int("Q_RECYCLE", default=10000),
    "max_rss": env.int("Q_MAX_RSS", default=300_000),
    "catch_up": False,
    # Off only where a benchmark measures one flow alone (the drift and sync schedules would run in it).
    "scheduler": env.bool("Q_SCHEDULER", default=True),
    "sync": env.bool("Q_SYNC", default=False),
    "label": "Task queue",
    "log_level": env("Q_LOG_LEVEL", default="WARNING"),
}
# Production across hosts: Q_BROKER=redis puts the queue in Redis (django-q2's Redis broker) instead
# of the database; the ERP budget can live there too (ERP_BUDGET=redis).
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
if env("Q_BROKER", default="orm") == "redis":
    Q_CLUSTER.pop("orm", None)
    Q_CLUSTER.pop("broker_class", None)
    Q_CLUSTER["redis"] = REDIS_URL

# --- Outside systems --------------------------------------------------------------------------
# Fernet keys that encrypt connection credentials at rest, newest first (rotate: put a new key first,
# run `manage.py connections_rotate_keys`, then drop the old one). Blank: a key derived from SECRET_KEY.
CONNECTION_KEYS = [key.strip() for key in env.list("LEDGERLINE_CONNECTION_KEYS", default=[]) if key.strip()]
if PRODUCTION and not CONNECTION_KEYS:
    _missing.append("LEDGERLINE_CONNECTION_KEYS")
# The defaults point at the bundled sandbox (`manage.py sandbox`, started by `manage.py demo`).
SANDBOX_URL = env("SANDBOX_URL", default="http://127.0.0.1:8100")
SHOPIFY = {
    "shop_url": env("SHOPIFY_SHOP_URL", default=f"{SANDBOX_URL}/shopify"),
    "api_version": env("SHOPIFY_API_VERSION", default="2026-04"),
    "access_token": _required("SHOPIFY_ACCESS_TOKEN", sandbox="shpat_sandbox_token"),
    "webhook_secret": _required("SHOPIFY_WEBHOOK_SECRET", sandbox="sandbox-shopify-webhook-secret"),
    # X-Shopify-Shop-Domain a webhook must carry (a connection's own settings["shop_domain"] wins).
    "shop_domain": env("SHOPIFY_SHOP_DOMAIN", default="ledgerline-demo.myshopify.com"),
}
COMMERCETOOLS = {
    "api_url": env("CT_API_URL", default=f"{SANDBOX_URL}/commercetools"),
    "auth_url": env("CT_AUTH_URL", default=f"{SANDBOX_URL}/commercetools/auth"),
    "project_key": env("CT_PROJECT_KEY", default="ledgerline-demo"),
    "client_id": env("CT_CLIENT_ID", default="sandbox-client"),
    "client_secret": _required("CT_CLIENT_SECRET", sandbox="sandbox-secret"),
    "scope": env("CT_SCOPE", default="manage_project:ledgerline-demo"),
    # Shared secret expected in the Authorization header of Subscription message deliveries.
    "subscription_token": _required("CT_SUBSCRIPTION_TOKEN", sandbox="sandbox-subscription-token"),
    # Which commercetools paymentState values release an order to the ERP.
    "post_on_payment_states": env.list("CT_POST_ON_PAYMENT_STATES", default=["Paid"]),
}
# The Shopify app (Dev Dashboard) that connects shops by OAuth or the client-credentials grant. Blank:
# the sandbox app's published credentials, used only for shops the sandbox serves (integrations.onboarding).
SHOPIFY_APP_CLIENT_ID = env("SHOPIFY_APP_CLIENT_ID", default="")
SHOPIFY_APP_CLIENT_SECRET = env("SHOPIFY_APP_CLIENT_SECRET", default="")
SHOPIFY_POST_ON_FINANCIAL_STATUSES = env.list("SHOPIFY_POST_ON_FINANCIAL_STATUSES", default=["paid", "authorized"])
ERP_KIND = env("ERP_KIND", default="rest")
ERP = {
    # "rest" (generic REST ERP) or "prima" (Prima Web Services, XML).
    "kind": ERP_KIND,
    "base_url": env("ERP_BASE_URL", default=f"{SANDBOX_URL}/erp/api/v1"),
    # Prima is secured at the network and takes no key: only a REST ERP needs one.
    "api_key": _required("ERP_API_KEY", sandbox="sandbox-erp-key") if ERP_KIND == "rest" else env("ERP_API_KEY", default=""),
    "prima_url": env("PRIMA_URL", default=f"{SANDBOX_URL}/prima"),
    "prima_company": env("PRIMA_COMPANY", default="LEDG01"),
    "timeout": env.float("ERP_TIMEOUT", default=10.0),
    # Requests/s Ledgerline allows itself against the ERP, shared by every q2 worker on the host (0 = no pacing;
    # a 429 with Retry-After is honoured either way). Just under the ERP's limit keeps it saturated.
    "client_rate_limit": env.float("ERP_CLIENT_RATE_LIMIT", default=0),
    # Where that budget is kept: "file" (this host's processes), or across hosts "redis" (REDIS_URL)
    # or "postgres" (a row per ERP endpoint in the database).
    "budget": env("ERP_BUDGET", default="file"),
    "max_attempts": env.int("ERP_MAX_ATTEMPTS", default=6),
    "backoff_base": env.float("ERP_BACKOFF_BASE", default=0.5),
    "backoff_max": env.float("ERP_BACKOFF_MAX", default=30.0),
}
# Orders: default ERP item for custom line items without SKU; rounding rule at the ERP boundary.
ORDERS = {
    "default_custom_item": env("ORDERS_DEFAULT_CUSTOM_ITEM", default="CUSTOM"),
    "shipping_item": env("ORDERS_SHIPPING_ITEM", default="SHIPPING"),
    "discount_item": env("ORDERS_DISCOUNT_ITEM", default="DISCOUNT"),
    "rounding": env("ORDERS_ROUNDING", default="ROUND_HALF_EVEN"),
    "default_depot": env("ORDERS_DEFAULT_DEPOT", default=""),
    # ERP items for duties, tips and gift cards sold (a liability until redeemed, never revenue).
    "duty_item": env("ORDERS_DUTY_ITEM", default="DUTIES"),
    "tip_item": env("ORDERS_TIP_ITEM", default="TIPS"),
    "gift_card_item": env("ORDERS_GIFT_CARD_ITEM", default="GIFT-CARD-LIABILITY"),
    # Defaults of the per-connection settings (Connection.settings overrides them).
    "post_test_orders": env.bool("ORDERS_POST_TEST_ORDERS", default=False),
    "guest_policy": env("ORDERS_GUEST_POLICY", default="guest_account"),
    "guest_accounts": env.dict("ORDERS_GUEST_ACCOUNTS", default={}),
    "post_currency": env("ORDERS_POST_CURRENCY", default="shop"),
    "cancel_in_erp": env.bool("ORDERS_CANCEL_IN_ERP", default=True),
    # An ERP that takes several sales orders per request gets them in batches of up to batch_max
    # (0 or 1: one per request), each batch waiting at most batch_wait seconds to fill.
    "batch_max": env.int("ORDERS_BATCH_MAX", default=100),
    "batch_wait": env.float("ORDERS_BATCH_WAIT", default=1.0),
}
# A posted sale queues an immediate stock push for its items (the high-priority inventory path).
INVENTORY_PUSH_ON_ORDER = env.bool("INVENTORY_PUSH_ON_ORDER", default=True)
WEBHOOK_MAX_BYTES = env.int("WEBHOOK_MAX_BYTES", default=2 * 1024 * 1024)

# Everything goes to the console (stderr) with the request id of the page it belongs to ("-" outside
# a request). Django's own loggers too: unexpected errors (django.request, with their traceback)
# are logged whatever DEBUG says; django-q2 logs a failed task with its traceback on "django-q".
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.request_id.RequestIdFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]}},
    "loggers": {
        "ledgerline": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
        "django": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="WARNING")},
        "django-q": {"handlers": ["console"], "level": env("Q_LOG_LEVEL", default="WARNING"), "propagate": False},
        "axes": {"handlers": ["console"], "level": env("AXES_LOG_LEVEL", default="WARNING"), "propagate": False},
    },
}

# --- Inventory (issue 5) ----------------------------------------------------------------------------
# Hours (local time, "start-end" exclusive, comma separated) in which scheduled full syncs do not start.
INVENTORY_QUIET_HOURS = env("INVENTORY_QUIET_HOURS", default="11-14,18-21")
INVENTORY_FULL_SYNC_MINUTES = env.int("INVENTORY_FULL_SYNC_MINUTES", default=30)
# Name of a django-q2 cluster (ALT_CLUSTERS) reserved for order-driven pushes; blank = the default cluster.
INVENTORY_PRIORITY_CLUSTER = env("INVENTORY_PRIORITY_CLUSTER", default="")

# --- A production start stops here when a secret is missing -----------------------------------------
if _missing:
    raise ImproperlyConfigured(
        "Ledgerline runs in production mode (LEDGERLINE_MODE is unset or 'production') and these "
        f"environment variables are not set: {', '.join(_missing)}. Set each one (README, 'Production "
        "configuration'); the published sandbox values are only used by `manage.py demo` and the tests.")
for _key in CONNECTION_KEYS:
    from cryptography.fernet import Fernet

    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "LEDGERLINE_CONNECTION_KEYS holds a value that is not a Fernet key (make one with "
            "`python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
        ) from None
