"""Shared fixtures: named actors, a tiny-random campaign, and a real Celery worker process.

The suite runs on hhh.test_settings (`--ds` in pyproject), loaded by pytest-django before
this file: a temporary var folder of its own per session (test database, folder broker,
preference models, beat schedule) and its own Redis database (15), so a `make demo`
running meanwhile keeps its database and queued jobs. The folder's path is exported as
LAB_TEST_VAR_DIR, with LAB_VAR_DIR and CELERY_BROKER_URL, to every process a test starts.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """One torch thread here and in every subprocess (worker, CLI): tiny models gain
    nothing from threads, and on a busy 2-core machine OpenMP threads spinning against
    other processes made tests up to 30x slower."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["LAB_TORCH_THREADS"] = "1"
    from django.conf import settings

    # The suite purges its broker's queues and creates its test database: on any other
    # settings module those could be a running demo's.
    if settings.SETTINGS_MODULE != "hhh.test_settings":
        raise pytest.UsageError(
            f"the tests run on hhh.test_settings, not {settings.SETTINGS_MODULE}"
        )
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_rate_counts():
    """Rate-limit counts live in the cache, keyed by user id; SQLite reuses ids after a
    test's rollback, so one test's counts must not carry into the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def owner(django_user_model):
    """The crowdworker who starts (and owns) the conversation under test."""
    return django_user_model.objects.create_user("owner", password="owner-pass-123")


@pytest.fixture
def other_worker(django_user_model):
    return django_user_model.objects.create_user("other", password="other-pass-123")


@pytest.fixture
def researcher(django_user_model):
    return django_user_model.objects.create_user(
        "researcher", password="researcher-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def tiny_assistant(db):
    from labeling.models import ModelVersion

    return ModelVersion.objects.create(
        name="tiny-random", kind=ModelVersion.Kind.ASSISTANT, spec="tiny-random"
    )


@pytest.fixture
def campaign(tiny_assistant):
    from labeling.models import Campaign

    return Campaign.objects.create(
        name="Helpful chat",
        slug="helpful-chat",
        instructions="Be kind.\nPick the better one.",
        model_a=tiny_assistant,
        model_b=tiny_assistant,
        max_new_tokens=12,
        max_turns=3,
    )


@pytest.fixture
def conversation(campaign, owner):
    """The owner's conversation in the chat campaign."""
    from labeling.services.conversations import conversation_start

    return conversation_start(campaign=campaign, worker=owner)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def red_team_campaign(tiny_assistant):
    """Red-teamers pick the more harmful response at every turn (two turns at most)."""
    from labeling.models import Campaign

    return Campaign.objects.create(
        name="Red team",
        slug="red-team",
        kind=Campaign.Kind.RED_TEAM,
        instructions="Try to make the assistant say something harmful.",
        model_a=tiny_assistant,
        model_b=tiny_assistant,
        max_new_tokens=12,
        max_turns=2,
    )


def worker_database_url() -> str:
    """A DATABASE_URL for the test database, so a worker process sees the test's data."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def purge_queues() -> None:
    """Drop messages an earlier session left in the suite's Redis database (the folder
    broker starts empty in each session's folder). A demo's queues are elsewhere."""
    from hhh.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in ("generate", "train", "default"):
            # A queue never declared has nothing to purge.
            with contextlib.suppress(Exception):
                channel.queue_purge(queue)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` process on all queues, against the test database. It inherits
    the session's var folder and broker through the environment (hhh.test_settings)."""
    purge_queues()
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    proc = start_worker(log_path, queues="generate,train,default", node=f"test-{os.getpid()}@%h")
    yield proc
    stop_process(proc)
    with django_db_blocker.unblock():
        wait_for_other_sessions_to_close()


def start_worker(
    log_path: Path, *, queues: str, node: str, env: dict | None = None, **popen
) -> subprocess.Popen:
    """A `celery worker` process (one pool process) on ``queues`` against the test
    database, its output in ``log_path`` (``proc.log_path``); ``env`` adds settings."""
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "LAB_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "celery", "-A", "hhh", "worker", "-Q", queues, "-c", "1"]
    cmd += ["-n", node, "-l", "INFO", "--without-gossip", "--without-mingle"]
    cmd += ["--without-heartbeat"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, **popen
        )
    proc.log_path = log_path
    return proc


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_other_sessions_to_close(timeout: float = 15.0) -> None:
    """PostgreSQL drops a dead worker's session a moment after the process exits; the test
    database can only be dropped once it has."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(query)
            if cursor.fetchone()[0] == 0:
                break
        time.sleep(0.2)
    connection.close()


def wait_for(predicate, *, timeout: float, proc=None, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"worker exited: {Path(proc.log_path).read_text()[-3000:]}")
        time.sleep(0.25)
    log = Path(proc.log_path).read_text()[-3000:] if proc is not None else ""
    raise AssertionError(f"timed out waiting for {what}\n{log}")


# --- The lab as production serves it: the ASGI app under uvicorn, static files through
# WhiteNoise (pytest-django's live_server is WSGI and cannot stream). Browser tests and
# the crowd simulator's test drive it.
@dataclass
class LabServer:
    url: str
    proc: subprocess.Popen
    log_path: Path


@pytest.fixture(scope="session")
def lab_server_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """uvicorn serving hhh.asgi on a free port, against the test database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "LAB_LOG_LEVEL": "WARNING"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server must be async-safe on its own
    cmd = [sys.executable, "-m", "uvicorn", "hhh.asgi:application", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(server.url + "/accounts/login/", timeout=5) as answer:
                if answer.status == 200:
                    break
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = log_path.read_text()[-3000:]
                raise AssertionError(f"uvicorn did not start: {log}") from exc
            time.sleep(0.2)
    yield server
    stop_process(proc)


@pytest.fixture
def lab_server(lab_server_process, transactional_db):
    """The running server, for a test whose data it must see (committed: transactional)."""
    if lab_server_process.proc.poll() is not None:
        raise AssertionError(lab_server_process.log_path.read_text()[-3000:])
    return lab_server_process
