"""Settings, read from the environment (django-environ). One code path in every mode.

Defaults give an embedded setup that needs nothing but Python (SQLite file + the embedded
Redis started by the run command); DATABASE_URL / REDIS_URL switch to real services.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
# Local defaults written once by the run command (`make run`), so every `manage.py` command in
# the checkout sees the same DEBUG and SECRET_KEY. Real environment variables win; never committed.
ENV_FILE = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE)

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# --- Core -----------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
# Where the run command serves (HOST/PORT); local defaults below follow the port.
PORT = env.int("PORT", default=8000)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS",
    default=[f"http://localhost:{PORT}", f"http://127.0.0.1:{PORT}"] if DEBUG else [],
)
if not DEBUG:
    missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("ALLOWED_HOSTS", ALLOWED_HOSTS),
            ("CSRF_TRUSTED_ORIGINS", CSRF_TRUSTED_ORIGINS),
        )
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(f"{', '.join(missing)} must be set when DEBUG is off")
if not SECRET_KEY:
    SECRET_KEY = "insecure-key-for-local-debug-only"

# --- Deployment (TLS is terminated in front) -------------------------------------------------------
# All off by default, so plain HTTP on PORT keeps working; `manage.py check --deploy` passes once
# the README's production settings are set.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# The health probes come over plain HTTP from the load balancer: never redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# "HTTP_X_FORWARDED_PROTO,https": the header the TLS proxy sets. Trust it only behind that proxy.
_proxy_ssl = env.list("SECURE_PROXY_SSL_HEADER", default=[])
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl) if len(_proxy_ssl) == 2 else None
if _proxy_ssl and len(_proxy_ssl) != 2:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER is HEADER,VALUE (e.g. HTTP_X_FORWARDED_PROTO,https)")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "accounts",
    "tts",
    "voices",
    "storybook",
    "ops",
]

MIDDLEWARE = [
    "ops.logs.RequestIdMiddleware",  # first: every later line of the request carries its id
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a lockout flagged during authentication into the 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"
CSRF_FAILURE_VIEW = "config.api.errors.csrf_failure"

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
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
# Threads per web process that run HTTP requests (config.asgi); a pooled process opens at most
# one database connection per thread.
WEB_THREADS = env.int("WEB_THREADS", default=8)
_db = DATABASES["default"]
_QCLUSTER = sys.argv[1:2] == ["qcluster"]  # this process is a django-q2 cluster (it forks workers)
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes write at once: WAL lets readers run beside the writer, IMMEDIATE
    # takes the write lock at BEGIN (no deadlock on lock upgrade), the timeout waits for it.
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so tests that start servers or workers share the test database.
    # Named per process so two test runs in one checkout do not share (and break) one file.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
elif env.bool("DB_POOL", default=False) and not _QCLUSTER:
    # Web processes only: forked qcluster workers would share the pool's sockets (and corrupt
    # each other's transactions), so `manage.py qcluster` ignores DB_POOL.
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        # Headroom past the HTTP threads: websocket auth and file links run in asgiref's threads.
        "max_size": env.int("DB_POOL_MAX_SIZE", default=WEB_THREADS + 4),
    }
    _db["CONN_MAX_AGE"] = 0
    # Checks each connection as it leaves the pool, and sweeps the pool when one is dead (after a
    # Postgres restart every pooled connection is): no request fails on a dead connection.
    _db["ENGINE"] = "config.postgres"
else:
    # Under ASGI every sync request runs in a thread of its own, so a persistent connection per
    # thread would pile up: web processes close theirs after each request. Queue workers are
    # single-threaded and run many short tasks: they keep theirs (a new Postgres backend per task
    # costs more CPU than a speech job's own queries).
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60 if _QCLUSTER else 0)
    _db["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Page numbers and line orders are unique per book/page, checked at commit on Postgres so a
# reorder can shift rows; SQLite has no deferrable constraints (the services keep them unique).
SILENCED_SYSTEM_CHECKS = ["models.W038"]
AUTH_USER_MODEL = "accounts.User"
# django-axes first: a locked-out (account, address) pair is refused before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
KNOX_TOKEN_MODEL = "accounts.DeviceToken"
# knox's own migrations create its default token table even when the model is swapped; that
# orphan table (with a foreign key to users) would only get in the way.
MIGRATION_MODULES = {"knox": None}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ],
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

# Mail carries password reset links: printing it to the console is for local DEBUG runs only.
EMAIL_URL = env.str("EMAIL_URL", default="consolemail://" if DEBUG else "")
if not DEBUG and not EMAIL_URL.startswith(("smtp://", "smtps://", "smtp+tls://", "smtp+ssl://")):
    raise ImproperlyConfigured(
        "EMAIL_URL must name an SMTP server (smtp://, smtps://, smtp+tls://, smtp+ssl://) when DEBUG is off: "
        "password reset links must not land in a log"
    )
EMAIL_CONFIG = environ.Env.email_url_config(EMAIL_URL)
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="storybook@localhost")
# Where password reset links point: the app's page that posts uid + token back to the API. The
# default is the minimal page this service serves itself (`/reset-password`).
PASSWORD_RESET_URL = env.str(
    "PASSWORD_RESET_URL", default=f"http://localhost:{PORT}/reset-password?uid={{uid}}&token={{token}}"
)

# --- Redis: cache, channel layer, raw client for sets/limiters -------------------------------
REDIS_URL = env.str("REDIS_URL", default=f"unix://{VAR_DIR / 'redis.sock'}")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="sb"),
        "OPTIONS": {
            # A Redis outage must cost milliseconds and fall back to the database, never a 500.
            "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_CONNECT_TIMEOUT", default=0.25),
            "SOCKET_TIMEOUT": env.float("REDIS_SOCKET_TIMEOUT", default=0.5),
            "IGNORE_EXCEPTIONS": True,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
# Caching of hot reads can be switched off (benchmarks compare both on one server).
API_CACHE_ENABLED = env.bool("API_CACHE_ENABLED", default=True)
# Benchmarks only: honour `X-Cache-Bypass: 1` so cached and uncached reads run on one server.
API_CACHE_ALLOW_BYPASS = env.bool("API_CACHE_ALLOW_BYPASS", default=False)
if API_CACHE_ALLOW_BYPASS:
    MIDDLEWARE.append("config.api.cache.CacheBypassMiddleware")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env.str("CHANNELS_PREFIX", default="sb:asgi"),
            "capacity": 200,
            "expiry": 30,
        },
    }
}

# --- Task queue (django-q2, ORM broker) -------------------------------------------------------
# Bounds, ordered: a task's own waits and retries < timeout < retry - time it can sit prefetched.
# queue_limit = workers keeps prefetching to one task per worker, so retry > 2 x timeout holds.
# Three: the fast voice checker may hold one while fresh clones exist, and a voice check never
# queues behind it. Long work (book audio, exports) never runs on the main cluster.
Q_WORKERS = env.int("Q_WORKERS", default=3)
# A few more workers than provider slots, so job overhead never leaves a slot idle.
TTS_Q_WORKERS = env.int("TTS_Q_WORKERS", default=5)
Q_TIMEOUT = env.int("Q_TIMEOUT", default=120)
TTS_Q_TIMEOUT = env.int("TTS_Q_TIMEOUT", default=300)
Q_CLUSTER = {
    "name": "main",
    "orm": "default",
    "workers": Q_WORKERS,
    "queue_limit": Q_WORKERS,
    "timeout": Q_TIMEOUT,
    "retry": 2 * Q_TIMEOUT + 60,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 0.5,
    "sync": env.bool("Q_SYNC", default=False),
    "ALT_CLUSTERS": {
        "tts": {
            "workers": TTS_Q_WORKERS,
            "queue_limit": TTS_Q_WORKERS,
            "timeout": TTS_Q_TIMEOUT,
            "retry": 2 * TTS_Q_TIMEOUT + 60,
        },
    },
}

# Worker heartbeats (ops.heartbeat): how often each worker writes its cluster's row, and the age
# past which /readyz calls the cluster down.
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=10.0)
WORKER_HEARTBEAT_MAX_AGE_SECONDS = env.float("WORKER_HEARTBEAT_MAX_AGE_SECONDS", default=45.0)
# Storage hygiene (ops.storage, daily): a file no row points to is removed once it is this old
# (a file is written before its row commits); failed speech jobs are kept this long.
STORAGE_ORPHAN_MIN_AGE_HOURS = env.int("STORAGE_ORPHAN_MIN_AGE_HOURS", default=24)
SPEECH_JOB_FAILED_RETENTION_DAYS = env.int("SPEECH_JOB_FAILED_RETENTION_DAYS", default=30)

# --- API -----------------------------------------------------------------------------------
# Reverse proxies in front. 0: servers started by the project ignore proxy headers. Above 0:
# uvicorn takes X-Forwarded-For from FORWARDED_ALLOW_IPS only and sets the client address from
# it. Either way the app reads REMOTE_ADDR (config.api.client), never a header a client wrote.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: a request without credentials then gets 401 (with WWW-Authenticate).
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON endpoints take JSON only; views that upload files name the multipart parser.
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="120/min"),
        "user": env.str("THROTTLE_USER", default="1200/min"),
        "auth": env.str("THROTTLE_AUTH", default="20/min"),
        "clone": env.str("THROTTLE_CLONE", default="20/hour"),
        "tts": env.str("THROTTLE_TTS", default="120/min"),
    },
    "EXCEPTION_HANDLER": "config.api.errors.exception_handler",
    # The server resolved proxies into REMOTE_ADDR already (see NUM_PROXIES above).
    "NUM_PROXIES": 0,
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.ApiSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
API_MAX_PAGE_SIZE = 100
# JSON bodies nested deeper than this are malformed_json (real payloads need a handful of levels).
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=32)
# Whole request bodies over this size get 413 from the ASGI middleware before Django reads them.
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=16 * 1024 * 1024)
# Non-file form/JSON data Django will hold in memory (RequestDataTooBig past it -> 413 JSON).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("DATA_UPLOAD_MAX_NUMBER_FILES", default=20)

REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env.int("TOKEN_TTL_DAYS", default=30)),
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_LIMIT_PER_USER": env.int("TOKEN_LIMIT_PER_USER", default=20),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Storybook voice API",
    "DESCRIPTION": "Clone a parent's voice and narrate storybooks with it.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The case-insensitive id converter (config.api.converters) is a UUID in the schema.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "string", "format": "uuid"}},
    "ENUM_NAME_OVERRIDES": {
        "SpeechJobStatusEnum": "tts.models.SpeechJob.Status",
        "BookStatusEnum": "storybook.models.Book.Status",
        "VoiceStatusEnum": "voices.models.Voice.Status",
        "VoiceVisibilityEnum": "voices.models.Voice.Visibility",
        "WritableVisibilityEnum": "voices.models.WRITABLE_VISIBILITIES",
        "FileReadyEnum": [("ready", "ready")],
    },
}

# --- Password brute-force guard (django-axes, database handler: works with Redis down) --------
# Every password door (API login, browsable-API and admin login, password change, email change)
# counts failures per (account, client address); a locked pair is refused even the right password.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_RESET_ON_SUCCESS = True
# A locked-out attacker's further tries do not extend the lockout past its cool-off.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_USERNAME_CALLABLE = "accounts.password_guard.axes_username"
AXES_CLIENT_IP_CALLABLE = "config.api.client.client_address"
AXES_LOCKOUT_CALLABLE = "accounts.password_guard.lockout_response"

# --- Accounts ------------------------------------------------------------------------------
DEFAULT_MONTHLY_CHARACTER_QUOTA = env.int("DEFAULT_MONTHLY_CHARACTER_QUOTA", default=100_000)
USER_INFO_CACHE_TTL = 1800
# Websocket clients using the first-message auth must send it within this many seconds.
WS_AUTH_TIMEOUT = env.float("WS_AUTH_TIMEOUT", default=5.0)
# Clients only ever send their auth message: one that sends more than this many in the window
# is closed with 1008. The servers refuse a single message over 64 KiB (config.serving, 1009).
WS_CLIENT_MESSAGES_MAX = env.int("WS_CLIENT_MESSAGES_MAX", default=20)
WS_CLIENT_MESSAGES_WINDOW = env.float("WS_CLIENT_MESSAGES_WINDOW", default=10.0)
# Browser origins allowed to open the event stream (cookie auth needs one of them).
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=CSRF_TRUSTED_ORIGINS)

# --- Speech providers -----------------------------------------------------------------------
ELEVENLABS_API_KEY = env.str("ELEVENLABS_API_KEY", default="")
ELEVENLABS_BASE_URL = env.str("ELEVENLABS_BASE_URL", default="")
TTS_PROVIDER = env.str("TTS_PROVIDER", default="elevenlabs" if ELEVENLABS_API_KEY else "local")
# Provider calls in flight at once, across every worker and host (a Redis lease semaphore), and
# the lease a holder renews while its call runs (a killed worker's slot frees within one lease).
TTS_MAX_CONCURRENCY = env.int("TTS_MAX_CONCURRENCY", default=3)
TTS_SLOT_LEASE_SECONDS = env.float("TTS_SLOT_LEASE_SECONDS", default=10.0)
# Per-call timeout (seconds) for every ElevenLabs request; the SDK's own retries are always off.
ELEVENLABS_TIMEOUT = env.float("ELEVENLABS_TIMEOUT", default=30.0)
# Speech job bounds, ordered (checked below): capped waits + attempts x call timeout + backoff
# < the tts cluster's task timeout < its retry < the reaper age. Six attempts: a provider that
# refuses one call in five (429s) still fails fewer than one job in 15,000.
TTS_CALL_ATTEMPTS = env.int("TTS_CALL_ATTEMPTS", default=6)
TTS_BACKOFF_BASE_SECONDS = env.float("TTS_BACKOFF_BASE_SECONDS", default=1.0)
TTS_BACKOFF_MAX_SECONDS = env.float("TTS_BACKOFF_MAX_SECONDS", default=8.0)
# Capped waits, each one budget per run (the slot wait is shared by all of a run's attempts).
TTS_SLOT_WAIT_SECONDS = env.float("TTS_SLOT_WAIT_SECONDS", default=20.0)
TTS_RENDER_WAIT_SECONDS = env.float("TTS_RENDER_WAIT_SECONDS", default=20.0)
_TTS_RUN_BOUND = (TTS_SLOT_WAIT_SECONDS + TTS_RENDER_WAIT_SECONDS
                  + TTS_CALL_ATTEMPTS * ELEVENLABS_TIMEOUT + (TTS_CALL_ATTEMPTS - 1) * TTS_BACKOFF_MAX_SECONDS)
# The one render of a hash holds its key this long at most (a killed render's key expires).
TTS_RENDER_LOCK_SECONDS = _TTS_RUN_BOUND
if _TTS_RUN_BOUND >= TTS_Q_TIMEOUT:
    raise ImproperlyConfigured(
        f"a speech job can run {_TTS_RUN_BOUND:.0f} s (waits + attempts x ELEVENLABS_TIMEOUT + backoff); "
        f"TTS_Q_TIMEOUT ({TTS_Q_TIMEOUT} s) must be longer")
# A job still `running` this long after it started lost its worker: the reaper requeues it.
TTS_REAPER_AGE_SECONDS = env.int("TTS_REAPER_AGE_SECONDS", default=Q_CLUSTER["ALT_CLUSTERS"]["tts"]["retry"] + 60)

ELEVENLABS_MODEL_ID = env.str("ELEVENLABS_MODEL_ID", default="eleven_multilingual_v2")
# Pronunciation dictionaries applied to every ElevenLabs job (at most 3), as JSON:
# [{"pronunciation_dictionary_id": "...", "version_id": "..."}]
ELEVENLABS_PRONUNCIATION_LOCATORS = env.json("ELEVENLABS_PRONUNCIATION_LOCATORS", default=[])
# The offline provider reports a new clone as processing for this long, like a hosted provider.
LOCAL_CLONE_PROCESSING_SECONDS = env.float("LOCAL_CLONE_PROCESSING_SECONDS", default=3.0)
# Clone slots of the offline provider's "account".
LOCAL_VOICE_LIMIT = env.int("LOCAL_VOICE_LIMIT", default=1000)
# No generate request carries more text than this (each model's own, smaller limit is
# `text_too_long`).
TTS_TEXT_MAX_CHARACTERS = env.int("TTS_TEXT_MAX_CHARACTERS", default=40_000)
# Characters per request to the offline provider.
LOCAL_TEXT_LIMIT = env.int("LOCAL_TEXT_LIMIT", default=5000)
# Signed audio URLs stay valid this long.
TTS_AUDIO_URL_TTL_SECONDS = env.int("TTS_AUDIO_URL_TTL_SECONDS", default=3600)

# --- Storybooks -----------------------------------------------------------------------------------
STORYBOOK_MAX_PAGES = env.int("STORYBOOK_MAX_PAGES", default=100)
STORYBOOK_MAX_LINES_PER_PAGE = env.int("STORYBOOK_MAX_LINES_PER_PAGE", default=50)
STORYBOOK_MAX_CHARACTERS = env.int("STORYBOOK_MAX_CHARACTERS", default=100_000)
# Cover and page images: bytes per file, and pixels (checked from the header before decoding).
STORYBOOK_IMAGE_MAX_BYTES = env.int("STORYBOOK_IMAGE_MAX_BYTES", default=10 * 1024 * 1024)
STORYBOOK_IMAGE_MAX_PIXELS = env.int("STORYBOOK_IMAGE_MAX_PIXELS", default=40_000_000)
STORYBOOK_LIST_CACHE_TTL = 300
# Every line of a book is matched to one integrated loudness (EBU R128 / BS.1770) under a true-peak
# limit before it goes into the whole-book audio and the exports.
STORYBOOK_LOUDNESS_LUFS = env.float("STORYBOOK_LOUDNESS_LUFS", default=-16.0)
STORYBOOK_TRUE_PEAK_DBTP = env.float("STORYBOOK_TRUE_PEAK_DBTP", default=-1.5)
# A build of a book's files stops between steps after this long and goes on in a new task, so a
# long book never runs into the tts cluster's task timeout (one step is well under the rest).
STORYBOOK_BUILD_STEP_BUDGET_SECONDS = env.float("STORYBOOK_BUILD_STEP_BUDGET_SECONDS", default=TTS_Q_TIMEOUT * 0.4)
if not -40 <= STORYBOOK_LOUDNESS_LUFS <= -5 or not -9 <= STORYBOOK_TRUE_PEAK_DBTP <= 0:
    raise ImproperlyConfigured("STORYBOOK_LOUDNESS_LUFS must be in [-40, -5] and STORYBOOK_TRUE_PEAK_DBTP in [-9, 0]")
STORYBOOK_DETAIL_CACHE_TTL = 600
# A cached book detail holds signed audio paths: they must outlive it by a good margin.
if TTS_AUDIO_URL_TTL_SECONDS < 3 * STORYBOOK_DETAIL_CACHE_TTL:
    raise ImproperlyConfigured(f"TTS_AUDIO_URL_TTL_SECONDS must be at least {3 * STORYBOOK_DETAIL_CACHE_TTL} s")

# --- Voice library -----------------------------------------------------------------------------
VOICE_MAX_PER_USER = env.int("VOICE_MAX_PER_USER", default=5)
VOICE_SAMPLE_MAX_COUNT = env.int("VOICE_SAMPLE_MAX_COUNT", default=5)
VOICE_SAMPLE_MAX_BYTES = env.int("VOICE_SAMPLE_MAX_BYTES", default=10 * 1024 * 1024)
VOICE_SAMPLE_MIN_SECONDS = env.float("VOICE_SAMPLE_MIN_SECONDS", default=1.0)
VOICE_SAMPLE_MAX_SECONDS = env.float("VOICE_SAMPLE_MAX_SECONDS", default=300.0)
VOICE_SAMPLES_MAX_TOTAL_SECONDS = env.float("VOICE_SAMPLES_MAX_TOTAL_SECONDS", default=600.0)
# Below this much speech in all, the clone answer warns (ElevenLabs recommends one to two minutes).
VOICE_SPEECH_RECOMMENDED_SECONDS = env.float("VOICE_SPEECH_RECOMMENDED_SECONDS", default=30.0)
# How long a voice may stay processing before it counts as failed, per category (minutes).
VOICE_SYNC_DEADLINE_MINUTES = {"cloned": 30, "generated": 30, "professional": 7 * 24 * 60, "premade": 30}
VOICE_SLOT_RESERVATION_SECONDS = 300
# Fresh clones (younger than the window) are checked at about 1, 2, 4, 8... s of age by one fast
# checker, which holds a main-cluster worker at most RUN seconds at a time, naps at most NAP
# seconds between passes and keeps a lock that expires LOCK seconds after its holder died.
# A window of 0 turns fast checks off: the minute schedule alone then.
VOICE_FAST_CHECK_WINDOW_SECONDS = env.float("VOICE_FAST_CHECK_WINDOW_SECONDS", default=60.0)
VOICE_FAST_CHECK_RUN_SECONDS = env.float("VOICE_FAST_CHECK_RUN_SECONDS", default=45.0)
VOICE_FAST_CHECK_NAP_SECONDS = env.float("VOICE_FAST_CHECK_NAP_SECONDS", default=0.5)
VOICE_FAST_CHECK_LOCK_SECONDS = env.float("VOICE_FAST_CHECK_LOCK_SECONDS", default=10.0)
# A run stops asking the provider at its run time; the call in flight then must still end within
# the main cluster's timeout. Its lock is renewed while it runs, so it must outlast a nap.
if VOICE_FAST_CHECK_WINDOW_SECONDS > 0 and (
        VOICE_FAST_CHECK_RUN_SECONDS + ELEVENLABS_TIMEOUT >= Q_TIMEOUT
        or VOICE_FAST_CHECK_NAP_SECONDS >= VOICE_FAST_CHECK_LOCK_SECONDS):
    raise ImproperlyConfigured(
        f"fast voice checks: VOICE_FAST_CHECK_RUN_SECONDS ({VOICE_FAST_CHECK_RUN_SECONDS:g}) + ELEVENLABS_TIMEOUT "
        f"must stay below Q_TIMEOUT ({Q_TIMEOUT} s), and VOICE_FAST_CHECK_NAP_SECONDS below "
        "VOICE_FAST_CHECK_LOCK_SECONDS")
VOICES_CACHE_TTL = 3600
# The shared part (default + approved public voices) lives shorter: if bumping its version fails
# (Redis refusing writes), a retry task keeps trying and this TTL bounds how long a moderator's
# block can stay listed.
# Family sharing: accounts one voice may be shared with.
VOICE_MAX_SHARES = env.int("VOICE_MAX_SHARES", default=20)
VOICES_SHARED_CACHE_TTL = env.int("VOICES_SHARED_CACHE_TTL", default=300)
# The shared part caches this many items (and the total count); deeper pages come from the database.
VOICES_SHARED_CACHE_ITEMS = env.int("VOICES_SHARED_CACHE_ITEMS", default=200)
# A failed shared-version bump: tries inside one retry task, and the pause between them.
SHARED_VERSION_BUMP_TRIES = env.int("SHARED_VERSION_BUMP_TRIES", default=5)
SHARED_VERSION_BUMP_PAUSE_SECONDS = env.float("SHARED_VERSION_BUMP_PAUSE_SECONDS", default=2.0)

LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        # One JSON object per line (LOG_FORMAT=json), for a log shipper.
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    },
    "filters": {"redact_signed_links": {"()": "config.logging.RedactSignedLinks"},
                "request_id": {"()": "ops.logs.RequestIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["request_id", "redact_signed_links"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # axes: keep lockouts and repeated failures (WARNING), drop its per-attempt chatter.
    "loggers": {
        "django_redis": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # Django's own DEBUG console handler would print each record a second time.
        "django": {"handlers": [], "propagate": True},
        # Where 4xx/5xx paths are logged: redacted at the source, for every handler.
        "django.request": {"filters": ["redact_signed_links"]},
    },
}
# Idempotency-Key: how long a concurrent duplicate waits for the first answer; how long answers are kept.
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=60.0)
IDEMPOTENCY_TTL_HOURS = env.int("IDEMPOTENCY_TTL_HOURS", default=24)
# An in-progress key older than this belongs to a request that died; a retry may take it over.
IDEMPOTENCY_STALE_SECONDS = env.int("IDEMPOTENCY_STALE_SECONDS", default=300)
ACCOUNT_CLEANUP_RETRY_BASE_SECONDS = env.int("ACCOUNT_CLEANUP_RETRY_BASE_SECONDS", default=60)
# Cleanup attempts that fail for a reason other than a transient provider error before the
# cleanup stops and shows as failed in the admin (transient provider errors retry until they pass).
ACCOUNT_CLEANUP_MAX_ATTEMPTS = env.int("ACCOUNT_CLEANUP_MAX_ATTEMPTS", default=5)
