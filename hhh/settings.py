"""One settings module. Every value comes from the environment, through hhh.env helpers
that fail loudly. The defaults run the whole lab on a laptop: SQLite under var/ and a
Celery broker that is a folder under var/ (no server process)."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from hhh.env import env_bool, env_float, env_int, env_list, env_str, var_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LAB_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Debug pages show settings and code: never on by default, not even in the demo.
DEBUG = env_bool("DJANGO_DEBUG", False)
# From the environment; else a key generated once and kept under the var folder, so a demo
# keeps its sessions across restarts. Several web hosts must share one: set it there.
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "") or var_secret_key(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- HTTPS (README, "Running it in production"). DJANGO_HTTPS=1 says the lab is served over
# HTTPS only: redirect http, HSTS for a year with subdomains and preload, cookies never sent
# in clear. Each can still be set on its own. Off by default: the demo is http://localhost.
_HTTPS = env_bool("DJANGO_HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", _HTTPS)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000 if _HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", _HTTPS)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", _HTTPS)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", _HTTPS)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", _HTTPS)
# A load balancer checks /healthz on the server's own port, in plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Behind a proxy that ends TLS and says so in X-Forwarded-Proto (and strips a client's own):
# only then may Django believe the header, else a client could claim https.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else None
)

# --- Content-Security-Policy (django-csp), enforcing: every script, style, image and
# connection from the lab's own origin, nothing inline (the templates carry no inline
# script, style or handler; the browser tests fail on any violation), no frames.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "django_ratelimit",
    "csp",
    "labeling",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files, before anything else
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during log-in into its page.
    "axes.middleware.AxesMiddleware",
    # Last: it calls the view, and answers a dropped database connection (labeling.db_blips).
    "labeling.db_blips.DatabaseBlipMiddleware",
]

ROOT_URLCONF = "hhh.urls"
WSGI_APPLICATION = "hhh.wsgi.application"
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

# --- Database: SQLite file under var/ by default; DATABASE_URL=postgres://… for PostgreSQL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lab.sqlite3'}")
_db_scheme = urlsplit(DATABASE_URL).scheme
if _db_scheme not in {"sqlite", "postgres", "postgresql"}:
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {_db_scheme!r} is not supported (use sqlite:/// or postgres://)"
    )
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
# PostgreSQL connections outlive a request. A worker or command process keeps one per
# thread for LAB_DB_CONN_MAX_AGE seconds and checks it before reuse (a database restart
# or a killed backend costs a reconnect, not an error). The web server (hhh/asgi.py) runs
# each request in a thread of its own, where a per-thread connection would be opened
# every time and kept nowhere: it sets LAB_DB_POOL_SIZE and shares a pool instead, whose
# connections are checked as they are handed out.
LAB_DB_POOL_SIZE = env_int("LAB_DB_POOL_SIZE", 0, minimum=0)
if _db_scheme != "sqlite" and LAB_DB_POOL_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses persistence beside a pool
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": 1,
            "max_size": LAB_DB_POOL_SIZE,
            "timeout": env_float("LAB_DB_POOL_TIMEOUT", 10.0, minimum=0.1),  # wait, then fail
        }
    }
elif _db_scheme != "sqlite":
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("LAB_DB_CONN_MAX_AGE", 60, minimum=0)
# Checked before reuse; with the pool, as each connection is handed out.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = _db_scheme != "sqlite"
if _db_scheme == "sqlite":
    DATABASES["default"]["OPTIONS"] = {
        # Web, worker and beat write to one file: WAL lets readers go on during a write,
        # IMMEDIATE takes the write lock at BEGIN so two writers queue instead of
        # failing with "database is locked" halfway through a transaction.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory: the Celery worker process in the tests must see the same data.
    # (The tests' VAR_DIR is a folder of their own: hhh/test_settings.py.)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "labeling:home"
LOGOUT_REDIRECT_URL = "login"

# --- Log-in throttling (django-axes): after LAB_LOGIN_FAILURE_LIMIT wrong passwords for one
# username from one address, that pair is locked out for LAB_LOGIN_COOLOFF_MINUTES. By the
# pair, not the address alone: a class of workers behind one NAT, or the web server behind a
# proxy (every client then has the proxy's address), must not lock each other out. A correct
# password clears the count. Prolific participants never type a password: their study link
# signs them in (labeling.services.prolific).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out pair before the check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LAB_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LAB_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True  # a try while locked restarts the wait
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
# Successful log-ins are not recorded: a participant's address is not research data, and
# the lockout needs only the failures.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # no start-up banner in the lab's quiet output

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves the static files (from STATIC_ROOT, where `manage.py lab` collects
# them; in debug straight from the apps' folders). No manifest, so `{% static %}` works
# before any collectstatic (tests); collectstatic also writes gzipped copies.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
STATIC_ROOT.mkdir(exist_ok=True)  # else WhiteNoise warns at every start before collectstatic

# --- Celery: a folder broker under var/ by default; CELERY_BROKER_URL=redis://… for Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
_broker_scheme = urlsplit(CELERY_BROKER_URL).scheme
if _broker_scheme not in {"filesystem", "redis", "rediss", "amqp", "pyamqp"}:
    raise ImproperlyConfigured(f"CELERY_BROKER_URL scheme {_broker_scheme!r} is not supported")
if _broker_scheme == "filesystem":
    BROKER_DIR = Path(env_str("LAB_BROKER_DIR", str(VAR_DIR / "broker"))).resolve()
    for _folder in ("processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),  # exchange bindings (else ./control)
        "store_processed": False,
    }
if _broker_scheme in {"redis", "rediss"}:
    # A Redis that stops answering (paused, overloaded) fails a send after seconds instead
    # of holding a web request for ever; workers reconnect on their own.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 5, "socket_connect_timeout": 5}
CELERY_TASK_IGNORE_RESULT = True  # tasks write their results to the database
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "labeling.tasks.generate_*": {"queue": "generate"},
    "labeling.tasks.train_*": {"queue": "train"},
    "labeling.tasks.evaluate_*": {"queue": "train"},  # long, and loads a model
}
# One model per process and long tasks: take one message at a time.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A killed pool process's message goes back to the queue (acks_late, reject_on_worker_lost)
# once the worker stops waiting for its result: results are not kept, so wait briefly.
CELERY_WORKER_LOST_WAIT = 1.0
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A broker connection lost mid-task: the task goes on (a turn being generated reaches the
# page); its late ack is redelivered later and finds nothing left to do.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
LAB_RETRAIN_EVERY_HOURS = env_float("LAB_RETRAIN_EVERY_HOURS", 24.0, minimum=0.01)
# A generation worker beats a heartbeat this often for the candidates it holds (a thread:
# loading a model and best-of-n sampling stream nothing). A running candidate whose
# heartbeat is older than the stale threshold belongs to a dead worker and is taken over.
# The threshold spans at least two beats, so one slow write does not hand a live worker's
# rows to another; the requeue schedule follows the beat, so recovery takes seconds.
LAB_GENERATION_HEARTBEAT_SECONDS = env_float("LAB_GENERATION_HEARTBEAT_SECONDS", 3.0, minimum=0.2)
LAB_GENERATION_STALE_SECONDS = env_float("LAB_GENERATION_STALE_SECONDS", 10.0, minimum=1.0)
if LAB_GENERATION_STALE_SECONDS < 2 * LAB_GENERATION_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"LAB_GENERATION_STALE_SECONDS={LAB_GENERATION_STALE_SECONDS:g} must be at least two "
        f"heartbeats (LAB_GENERATION_HEARTBEAT_SECONDS={LAB_GENERATION_HEARTBEAT_SECONDS:g})"
    )
# Each worker writes a heartbeat this often (labeling.heartbeat); /healthz calls a worker
# down once its heartbeat is LAB_WORKER_STALE_SECONDS old.
LAB_WORKER_HEARTBEAT_SECONDS = env_float("LAB_WORKER_HEARTBEAT_SECONDS", 5.0, minimum=0.5)
LAB_WORKER_STALE_SECONDS = env_float("LAB_WORKER_STALE_SECONDS", 30.0, minimum=1.0)
CELERY_BEAT_SCHEDULE = {
    "retrain-preference-model": {
        "task": "labeling.tasks.schedule_preference_training",
        "schedule": LAB_RETRAIN_EVERY_HOURS * 3600,
        "options": {"expires": LAB_RETRAIN_EVERY_HOURS * 3600 / 2},
    },
    "requeue-stale-candidates": {
        "task": "labeling.tasks.requeue_stale_candidates",
        "schedule": 2 * LAB_GENERATION_HEARTBEAT_SECONDS,
        "options": {"expires": 2 * LAB_GENERATION_HEARTBEAT_SECONDS},  # the next run replaces it
    },
}

# --- Cache: django-ratelimit's per-worker counters (labeling.limits). They must be shared by
# every web process, so Redis when there is one (default: the broker's server, where Redis is
# the broker); else each process counts alone in memory, right for the embedded default's
# single web process. Nothing in the lab calls cache.clear(): on the broker's database it
# would empty the task queues too.
LAB_CACHE_URL = env_str(
    "LAB_CACHE_URL", CELERY_BROKER_URL if _broker_scheme in {"redis", "rediss"} else ""
)
if LAB_CACHE_URL and urlsplit(LAB_CACHE_URL).scheme not in {"redis", "rediss"}:
    raise ImproperlyConfigured(f"LAB_CACHE_URL must be a redis:// URL, got {LAB_CACHE_URL!r}")
if LAB_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": LAB_CACHE_URL,
            "KEY_PREFIX": "lab",  # beside Celery's keys when it shares the broker's database
            # A Redis that stops answering must not hold a page: the limits then let the work
            # through (labeling.limits), half a second later at most.
            "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SILENCED_SYSTEM_CHECKS = [
    # django-ratelimit lists only django-redis among Redis caches; Django's own RedisCache
    # increments with Redis's atomic INCR just the same.
    "django_ratelimit.W001",
    # In-memory counting is per process: correct for the embedded default's single web
    # process (set LAB_CACHE_URL when running several).
    *(["django_ratelimit.E003"] if not LAB_CACHE_URL else []),
]
# A cache outage must not refuse a worker's judgment: the limits stop abuse, not errors.
RATELIMIT_FAIL_OPEN = True

# --- The lab.
LAB_DEFAULT_MODEL_SPEC = env_str("LAB_DEFAULT_MODEL_SPEC", "smollm2-135m-instruct")
# Preference models start from this spec when no earlier preference model exists.
LAB_PM_BASE_SPEC = env_str("LAB_PM_BASE_SPEC", LAB_DEFAULT_MODEL_SPEC)
LAB_PM_DIR = Path(env_str("LAB_PM_DIR", str(VAR_DIR / "preference_models"))).resolve()
# Distilled assistants made by distillation runs, and the files export runs write.
LAB_ASSISTANT_DIR = Path(env_str("LAB_ASSISTANT_DIR", str(VAR_DIR / "assistants"))).resolve()
LAB_EXPORT_DIR = Path(env_str("LAB_EXPORT_DIR", str(VAR_DIR / "exports"))).resolve()
# Scheduled retraining waits for at least this many usable comparisons.
LAB_RETRAIN_MIN_COMPARISONS = env_int("LAB_RETRAIN_MIN_COMPARISONS", 20, minimum=2)
# The retrain's defaults were chosen on a validation part of real hh-rlhf comparisons
# (python -m training.pm_defaults; README, "Choosing the retrain's defaults"): lr 6e-5,
# length 512, one epoch, batch 8 (about 9 GB of memory on the CPU).
LAB_TRAIN_MAX_LENGTH = env_int("LAB_TRAIN_MAX_LENGTH", 512, minimum=16)
LAB_TRAIN_EPOCHS = env_int("LAB_TRAIN_EPOCHS", 1, minimum=1)
LAB_TRAIN_BATCH_SIZE = env_int("LAB_TRAIN_BATCH_SIZE", 8, minimum=1)
LAB_TRAIN_LR = env_float("LAB_TRAIN_LR", 6e-5, minimum=0.0)  # peak AdamW rate, decayed to 0
# How much lower than the web server the workers' task processes run (Unix nice, 0-19):
# on cores shared with the web server, pages come first.
LAB_WORKER_NICE = env_int("LAB_WORKER_NICE", 10, minimum=0)
if LAB_WORKER_NICE > 19:
    raise ImproperlyConfigured(f"LAB_WORKER_NICE={LAB_WORKER_NICE} must be at most 19")
# Torch threads per worker process; 0 keeps torch's default (one per core).
LAB_TORCH_THREADS = env_int("LAB_TORCH_THREADS", 0, minimum=0)
# How often a worker writes a candidate's streamed text to the database (the page reads
# it there when Redis does not carry the text live).
LAB_GENERATION_PROGRESS_SECONDS = env_float("LAB_GENERATION_PROGRESS_SECONDS", 0.4, minimum=0.0)
# Most turns one generation batch serves: a worker picking up a turn also claims other
# turns waiting for the same model (concurrent crowdworkers) and decodes them together.
LAB_GENERATION_BATCH_TURNS = env_int("LAB_GENERATION_BATCH_TURNS", 8, minimum=1)
# Generate on an OpenAI-compatible server (vLLM, or `python -m models_backend.serve`)
# instead of in the worker: its API root, e.g. http://gpu-host:8000/v1. The server must
# serve each assistant under its model version's spec (vLLM: --served-model-name). Empty:
# the worker runs the model itself.
LAB_GENERATION_URL = env_str("LAB_GENERATION_URL", "")
if LAB_GENERATION_URL and not LAB_GENERATION_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"LAB_GENERATION_URL must be an http(s) URL, got {LAB_GENERATION_URL!r}"
    )
LAB_GENERATION_API_KEY = env_str("LAB_GENERATION_API_KEY", "")  # sent as a Bearer token
# Send generation tasks from a thread of their own, so a slow or absent broker delays no
# request. The web server sets it (hhh/asgi.py); elsewhere the send is made in line.
LAB_ENQUEUE_IN_BACKGROUND = env_bool("LAB_ENQUEUE_IN_BACKGROUND", False)
# Live text to the page: the worker publishes each change on Redis pub/sub here and the
# stream view forwards it at once. Default: the broker's server when it is Redis; empty
# (the embedded default) makes the view read the rows at a short interval instead.
LAB_STREAM_REDIS_URL = env_str(
    "LAB_STREAM_REDIS_URL", CELERY_BROKER_URL if _broker_scheme in {"redis", "rediss"} else ""
)
if LAB_STREAM_REDIS_URL and urlsplit(LAB_STREAM_REDIS_URL).scheme not in {"redis", "rediss"}:
    raise ImproperlyConfigured(
        f"LAB_STREAM_REDIS_URL must be a redis:// URL, got {LAB_STREAM_REDIS_URL!r}"
    )
# The BIG-bench HHH evaluation (a task file or the hhh_alignment folder). It lives outside
# the repository, so it is named here; empty: the panel refuses to queue an evaluation.
LAB_HHH_TASKS = env_str("LAB_HHH_TASKS", "")
LAB_EVAL_BATCH_SIZE = env_int("LAB_EVAL_BATCH_SIZE", 4, minimum=1)
# Per-worker limits (labeling.limits): messages sent and judgments made per minute; 0: none.
LAB_MESSAGES_PER_MINUTE = env_int("LAB_MESSAGES_PER_MINUTE", 20, minimum=0)
LAB_JUDGMENTS_PER_MINUTE = env_int("LAB_JUDGMENTS_PER_MINUTE", 30, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LAB_LOG_LEVEL", "INFO")},
}
