"""Settings for the test suite: hhh.settings (as loudly checked as ever), read from an
environment prepared first, so that `make test` never touches a running `make demo`.

- Var folder: a fresh temporary folder per session holds everything hhh.settings puts
  under VAR_DIR (test database, folder broker, preference models, beat schedule, static
  files) and is removed when the session ends. LAB_VAR_DIR, LAB_BROKER_DIR, LAB_PM_DIR,
  LAB_ASSISTANT_DIR, LAB_EXPORT_DIR and a sqlite DATABASE_URL name a demo's files: the
  suite ignores them.
- Redis: the suite's broker is database 15 of the configured server (14 when the URL
  itself names 15), so purging the suite's queues never empties a demo's. RabbitMQ has
  no such separation: give the suite a broker of its own there.
- Django's cache (rate-limit counters): in each process's memory (LAB_CACHE_URL empty),
  so a demo's or another session's counters never mix with the suite's, and a test may
  clear it without touching Redis (where clearing would empty a database's queues).
- Model cache: shared, not copied. LAB_MODEL_DIR (default: var/models in the checkout)
  holds deterministic conversions, each written by one atomic rename, so the suite
  cannot disturb a demo reading them, and the slow SmolLM2 test converts only once.

Why this runs first: pyproject's addopts select this module with --ds (an option beats
an exported DJANGO_SETTINGS_MODULE, which beats the ini key). pytest-django imports it
in its pytest_load_initial_conftests hook, before pytest loads any conftest, and exports
DJANGO_SETTINGS_MODULE=hhh.test_settings. The Celery worker and the CLI processes the
tests start inherit that environment, import this module again, find SESSION_DIR_ENV
set and keep the session's folder and broker.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

SESSION_DIR_ENV = "LAB_TEST_VAR_DIR"  # set by a session for the processes it starts
SUITE_REDIS_DB = 15
# Settings that place a demo's files; the suite keeps all of its own under its folder.
DEMO_PATH_SETTINGS = (
    "LAB_VAR_DIR",
    "LAB_BROKER_DIR",
    "LAB_PM_DIR",
    "LAB_ASSISTANT_DIR",
    "LAB_EXPORT_DIR",
)
SHARED_MODEL_DIR = Path(__file__).resolve().parent.parent / "var" / "models"


def suite_broker_url(url: str) -> str:
    """The suite's broker URL: the same Redis server on the suite's database."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        return url
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ImproperlyConfigured(f"CELERY_BROKER_URL={url!r}: Redis database is not a number")
    suite_db = SUITE_REDIS_DB if int(db) != SUITE_REDIS_DB else SUITE_REDIS_DB - 1
    return parts._replace(path=f"/{suite_db}").geturl()


def isolate(environ: MutableMapping[str, str]) -> Path:
    """Point `environ` at the session's own var folder and broker; return the folder."""
    if environ.get(SESSION_DIR_ENV):  # a worker or CLI the session started
        environ["LAB_VAR_DIR"] = environ[SESSION_DIR_ENV]
        return Path(environ[SESSION_DIR_ENV])
    var_dir = tempfile.mkdtemp(prefix="hhh-tests-")
    atexit.register(shutil.rmtree, var_dir, ignore_errors=True)
    for name in DEMO_PATH_SETTINGS:
        environ.pop(name, None)
    if urlsplit(environ.get("DATABASE_URL", "")).scheme == "sqlite":
        del environ["DATABASE_URL"]
    if "CELERY_BROKER_URL" in environ:
        environ["CELERY_BROKER_URL"] = suite_broker_url(environ["CELERY_BROKER_URL"])
    environ.setdefault("LAB_MODEL_DIR", str(SHARED_MODEL_DIR))
    environ["LAB_CACHE_URL"] = ""
    environ[SESSION_DIR_ENV] = environ["LAB_VAR_DIR"] = var_dir
    return Path(var_dir)


# hhh.settings reads the environment once, when first imported: it must not be yet.
if "hhh.settings" in sys.modules:
    raise ImproperlyConfigured("hhh.settings was imported before hhh.test_settings")
isolate(os.environ)

from hhh.settings import *  # noqa: E402, F403

# The suite's servers serve static files straight from the apps' folders (debug is off and
# nothing is collected); the lab serves the collected, compressed copies.
WHITENOISE_USE_FINDERS = True

# Users are made by the hundred in the suite: a fast hash (never outside tests).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
