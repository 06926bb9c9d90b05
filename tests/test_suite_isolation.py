"""The suite keeps its files and queues apart from a `make demo` running meanwhile
(hhh/test_settings.py): its own temporary var folder, its own Redis database."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from hhh.test_settings import SESSION_DIR_ENV, suite_broker_url
from tests.conftest import REPO

DEMO_TASK = "tests.a_demo_job_that_must_stay_queued"  # unregistered: a worker would drop it

# A demo's queued job, sent with the demo's settings.
QUEUE_A_JOB = f"""
from hhh.celery import app

print(app.send_task({DEMO_TASK!r}, queue="generate").id)
"""

# What the demo's worker does next: take its job. Other messages (a real demo's, on a
# shared Redis) are left unacknowledged, so they go back to the queue.
TAKE_THE_JOB = """
import sys
from kombu import Queue
from hhh.celery import app

with app.connection_for_write() as conn:
    queue = Queue("generate", channel=conn.default_channel)
    while (message := queue.get(no_ack=False)) is not None:
        if message.headers.get("id") == sys.argv[1]:
            message.ack()
            print("taken")
            break
"""

# What the suite does when a session starts: purge its queues, create its test database
# (without migrations, which say nothing about where the database is and take seconds).
SESSION_START = """
import pytest
from tests.conftest import purge_queues


@pytest.mark.django_db
def test_a_session_starts(django_user_model):
    purge_queues()
    django_user_model.objects.create_user("tester")
"""


def demo_environment(demo: Path, broker_url: str) -> dict[str, str]:
    """The shell of someone running the demo from this checkout on `demo`'s files."""
    ours = ("LAB_", "DJANGO_", "CELERY_", "DATABASE_", "PYTEST_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(ours)}
    return env | {
        "DJANGO_SETTINGS_MODULE": "hhh.settings",  # exported for the demo; must not win
        "LAB_VAR_DIR": str(demo),
        "DATABASE_URL": f"sqlite:///{demo / 'lab.sqlite3'}",
        "CELERY_BROKER_URL": broker_url,
        "LAB_MODEL_DIR": str(demo / "models"),
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under `folder` (itself too): a hash of its bytes, its mtime."""
    state = {".": ("folder", folder.stat().st_mtime_ns)}
    for path in sorted(folder.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        state[str(path.relative_to(folder))] = (digest, path.stat().st_mtime_ns)
    return state


@contextlib.contextmanager
def no_new_redis_keys(url: str):
    """The demo's Redis database as found: the keys the test makes there go after it."""
    client = redis.Redis.from_url(url)
    before = set(client.keys())
    try:
        yield
    finally:
        if made := set(client.keys()) - before:
            client.delete(*made)


def demo_broker_url(kind: str) -> str:
    if kind == "folder":
        return "filesystem://"
    if urlsplit(settings.CELERY_BROKER_URL).scheme not in {"redis", "rediss"}:
        pytest.skip("the suite runs on the folder broker (CELERY_BROKER_URL=redis://… for this)")
    # The demo on database 0 of the suite's Redis server, as .ci/run's URL names it.
    return urlsplit(settings.CELERY_BROKER_URL)._replace(path="/0").geturl()


@pytest.mark.parametrize("broker", ["folder", "redis"])
def test_the_suite_leaves_a_running_demos_database_and_queued_jobs_alone(tmp_path, broker):
    broker_url = demo_broker_url(broker)
    redis_as_found = (
        no_new_redis_keys(broker_url) if broker == "redis" else contextlib.nullcontext()
    )
    with redis_as_found:
        check_the_suite_leaves_the_demo_alone(tmp_path / "demo", broker_url)


def check_the_suite_leaves_the_demo_alone(demo: Path, broker_url: str) -> None:
    env = demo_environment(demo, broker_url)
    job_id = run([sys.executable, "-c", QUEUE_A_JOB], env).stdout.strip()
    with contextlib.closing(sqlite3.connect(demo / "lab.sqlite3")) as db, db:
        db.execute("PRAGMA journal_mode=WAL")  # as the lab's settings open it
        db.execute("CREATE TABLE turn (id INTEGER PRIMARY KEY, text TEXT)")
        db.executemany("INSERT INTO turn (text) VALUES (?)", [("hello",), ("again",)])
    for name, text in {
        "models/smollm2-135m-instruct/config.json": "{}",
        "preference_models/run-1/config.json": "{}",
        "celerybeat-schedule": "beat",
    }.items():
        (demo / name).parent.mkdir(parents=True, exist_ok=True)
        (demo / name).write_text(text)
    if broker_url == "filesystem://":
        assert list((demo / "broker").glob("*.msg")), "the demo's job was not queued"
    before = snapshot(demo)

    session = demo.parent / "test_session_start.py"
    session.write_text(SESSION_START)
    pytest_args = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider"]
    pytest_args += ["-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO)]
    pytest_args += [f"--basetemp={demo.parent / 'session-tmp'}", "--no-migrations", "-q"]
    pytest_args += [str(session)]
    assert "1 passed" in run(pytest_args, env).stdout

    assert snapshot(demo) == before
    assert run([sys.executable, "-c", TAKE_THE_JOB, job_id], env).stdout.strip() == "taken"


def test_this_session_keeps_its_files_in_a_folder_of_its_own():
    var_dir = Path(os.environ[SESSION_DIR_ENV])
    assert settings.VAR_DIR == var_dir != REPO / "var"
    assert os.environ["LAB_VAR_DIR"] == str(var_dir)  # for the processes tests start
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        assert Path(settings.DATABASES["default"]["TEST"]["NAME"]).parent == var_dir
    for path in (settings.LAB_PM_DIR, settings.CELERY_BEAT_SCHEDULE_FILENAME):
        assert Path(path).is_relative_to(var_dir)
    if settings.CELERY_BROKER_URL == "filesystem://":
        assert settings.BROKER_DIR.is_relative_to(var_dir)


@pytest.mark.parametrize(
    ("demo", "suite"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/15"),
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/15"),
        ("rediss://:secret@cache:6380/3", "rediss://:secret@cache:6380/15"),
        ("redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/14"),
        ("filesystem://", "filesystem://"),
    ],
)
def test_on_redis_the_suite_uses_a_database_number_the_demo_does_not(demo, suite):
    assert suite_broker_url(demo) == suite


def test_a_redis_url_whose_database_is_not_a_number_is_refused():
    with pytest.raises(ImproperlyConfigured, match="not a number"):
        suite_broker_url("redis://127.0.0.1:6379/zero")
