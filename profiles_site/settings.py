"""One settings module; every knob is an environment variable with a safe default (see README)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PROFILES_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
DEVELOPMENT_SECRET_KEY = "insecure-local-development-key-change-me"


def _is_development_tool() -> bool:
    """A test run, or a manage.py command that serves nothing (migrate, makemigrations, …)."""
    if "pytest" in sys.modules:
        return True
    command = sys.argv[1:2]
    return os.path.basename(sys.argv[0]) == "manage.py" and command != ["runserver"]


# Production sets SECRET_KEY: with DEBUG off, a server or a worker refuses to start without one.
# `make run` and `make worker` pass the development key; tests and plain manage.py commands use
# it when none is set (a test run hands it to the processes it starts, workers included).
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or _is_development_tool()):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: set the SECRET_KEY environment variable to a long random "
            "value (DEBUG is off, so the development key is refused)"
        )
    SECRET_KEY = DEVELOPMENT_SECRET_KEY
    if "pytest" in sys.modules:
        os.environ["SECRET_KEY"] = SECRET_KEY
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "django_json_widget",
    "profiles",
    "imports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and the API docs' static files from the app server itself.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "profiles_site.urls"
WSGI_APPLICATION = "profiles_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The site's own overrides of the admin's templates (before the apps' and Django's).
        "DIRS": [BASE_DIR / "profiles_site" / "templates"],
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
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'profiles.sqlite3'}"),
        # 0 opens a connection per request; production keeps them (60 s, see README).
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write the same file: wait for the lock instead of failing,
    # and take the write lock at BEGIN so a read-then-write transaction cannot deadlock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-profiles.sqlite3")}
else:
    # psycopg prepares nothing while this is None, Django's default. Django's cursors bind on
    # the client and never prepare; the API's profile read asks for it (profiles.profile_read).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Times in the back-office read one way, to the second (profiles_site/formats/en/formats.py).
FORMAT_MODULE_PATH = ["profiles_site.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (tests, a first run), serve straight from the apps' folders.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)

# The cache that counts the API's per-token rate limit, shared by every web process so the
# limit holds across them: Redis when CACHE_URL names it, else a table of the database (created
# by a migration of `profiles`).
CACHE_URL = os.environ.get("CACHE_URL", "")
CACHE_TABLE = "profiles_cache"
CACHES = {
    "default": (
        {"BACKEND": "profiles_site.cache.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": CACHE_TABLE}
    )
}
# How long an API token found by its digest is kept in that cache (dropped at once when the token
# or its datamart changes).
API_TOKEN_CACHE_SECONDS = int(os.environ.get("API_TOKEN_CACHE_SECONDS", "300"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Uploaded import files must be readable by every worker: on several machines,
# point MEDIA_ROOT at shared storage.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
IMPORT_MAX_FILE_BYTES = int(os.environ.get("IMPORT_MAX_FILE_BYTES", str(2 * 1024**3)))
IMPORT_CHUNK_SIZE = int(os.environ.get("IMPORT_CHUNK_SIZE", "1000"))
# Runs started at one checkpoint before the execution fails (a chunk that keeps killing workers).
IMPORT_MAX_ATTEMPTS = int(os.environ.get("IMPORT_MAX_ATTEMPTS", "3"))
# A RUNNING execution whose last chunk committed longer ago than this may be taken over by
# another worker; keep it well above the longest chunk.
IMPORT_STALE_SECONDS = int(os.environ.get("IMPORT_STALE_SECONDS", "300"))
# Workers that apply one execution at once: its lines are split by a hash of their identifier
# (imports.partitions). 1 applies every file in one run, in file order.
IMPORT_PARALLELISM = int(os.environ.get("IMPORT_PARALLELISM", "1"))

# Bounds of a hostile file (README, Configuration): header columns, cells in a row, the
# shared strings of an XLSX workbook, and the bytes of a source record kept with its line error.
# 16,000: an XLSX sheet holds 16,384 columns, and the failed-lines file adds _line and _error.
IMPORT_MAX_COLUMNS = int(os.environ.get("IMPORT_MAX_COLUMNS", "16000"))
IMPORT_MAX_CELLS_PER_ROW = int(os.environ.get("IMPORT_MAX_CELLS_PER_ROW", "16384"))
IMPORT_XLSX_MAX_SHARED_STRINGS = int(os.environ.get("IMPORT_XLSX_MAX_SHARED_STRINGS", "1000000"))
IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES = int(
    os.environ.get("IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES", str(64 * 1024 * 1024))
)
IMPORT_ERROR_RAW_MAX_BYTES = int(os.environ.get("IMPORT_ERROR_RAW_MAX_BYTES", "65536"))

LOGIN_URL = "admin:login"

# The admin's import and export screens (imports/admin.py).
# Lines run through the preview before an upload is confirmed.
IMPORT_PREVIEW_LINES = int(os.environ.get("IMPORT_PREVIEW_LINES", "1000"))
# Where staff open the back-office: `manage.py import_profiles` prints its execution's page there.
BACK_OFFICE_URL = os.environ.get("BACK_OFFICE_URL", "http://127.0.0.1:8000").rstrip("/")
# An upload previewed but never confirmed is deleted after this many hours.
IMPORT_STAGED_MAX_AGE_HOURS = int(os.environ.get("IMPORT_STAGED_MAX_AGE_HOURS", "24"))
# Exports of more profiles than this are written by a worker instead of the request.
EXPORT_BACKGROUND_ROWS = int(os.environ.get("EXPORT_BACKGROUND_ROWS", "50000"))

# Celery. The embedded default is kombu's filesystem transport: no server, and it works
# across processes on one machine. Production sets redis:// or amqp://.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # A task whose worker dies comes back after this many seconds (redis); keep it above the
    # longest chunk so a slow chunk is not run twice at once.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "600"))
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Seconds a worker waits for the result of a pool process that died before calling the task
# lost (and requeueing it); our tasks keep no result.
CELERY_WORKER_LOST_WAIT = float(os.environ.get("CELERY_WORKER_LOST_WAIT", "10"))
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "profiles.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "api_token": os.environ.get("API_RATE_LIMIT", "1200/minute"),
        # Failed authentications per client IP address (profiles.api.auth_failures).
        "auth_failure": os.environ.get("API_AUTH_FAILURE_RATE", "20/minute"),
    },
    "EXCEPTION_HANDLER": "profiles.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Profiles API",
    "DESCRIPTION": (
        "User points, user profiles and document imports of a datamart. Authenticate with "
        "`Authorization: <token>` or `Authorization: Bearer <token>` (or a staff session). "
        'Successes answer `{"status": "ok", "data": …}` (lists add `count` and `next`), '
        'errors `{"status": "error", "error": …, "error_code": …}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page is served from the sidecar package's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["profiles.api.schema.drop_duplicate_routes"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "profiles.api.schema.postprocess_envelope",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
