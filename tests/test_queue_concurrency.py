"""Many workers asking for the next task at once never get the same reservation: on the
suite's own database (in this process), and on the other backend in a subprocess (a fresh
SQLite file, or a temporary PostgreSQL database when one answers at 127.0.0.1:5432).

Each worker is a thread with its own database connection, released together by a
barrier. PostgreSQL: the queue's ``FOR UPDATE SKIP LOCKED`` and its count under the lock
keep them apart. SQLite: transactions begin IMMEDIATE, so they run one at a time.

Run as ``python -m tests.test_queue_concurrency`` with DATABASE_URL (and
DJANGO_SETTINGS_MODULE=hhh.settings) set, it migrates that database, runs the race and
prints what each worker got as JSON: what the subprocess cases below do.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
WORKERS = 12
ITEMS = 5  # fewer than the workers: with overlap 1, seven of them must get nothing
POSTGRES = ("127.0.0.1", 5432)
SUBPROCESS_TIMEOUT_S = 60


def make_race(*, workers: int = WORKERS, items: int = ITEMS) -> tuple[int, list[int]]:
    """A ranking campaign with ``items`` ready items (overlap 1), and ``workers`` workers:
    written directly, so nothing is sent to a broker."""
    from django.contrib.auth import get_user_model

    from labeling.models import Campaign, CandidateResponse, Conversation, ModelVersion, Turn

    tag = uuid.uuid4().hex[:8]
    model = ModelVersion.objects.create(name=f"race-{tag}", kind="assistant", spec="tiny-random")
    campaign = Campaign.objects.create(
        name="Race",
        slug=f"race-{tag}",
        kind=Campaign.Kind.RANKING,
        instructions="Order the responses.",
        candidates_per_item=3,
        model_a=model,
        model_b=model,
    )
    for i in range(items):
        conversation = Conversation.objects.create(campaign=campaign, source="race")
        turn = Turn.objects.create(
            conversation=conversation, index=0, human_text=f"Q{i}?", display_order=[0, 1, 2]
        )
        CandidateResponse.objects.bulk_create(
            CandidateResponse(turn=turn, slot=s, status="done", text=f"reply {s}") for s in range(3)
        )
    users = get_user_model().objects
    ids = [users.create_user(f"racer-{tag}-{i}").pk for i in range(workers)]
    return campaign.pk, ids


def race(campaign_id: int, worker_ids: list[int]) -> list[int | None]:
    """Every worker asks for the next task at the same moment; the item each one got."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    from labeling.models import Campaign
    from labeling.services import queue

    barrier = threading.Barrier(len(worker_ids))
    got: list[int | None] = [None] * len(worker_ids)
    errors: list[str] = []

    def ask(i: int) -> None:
        try:
            campaign = Campaign.objects.get(pk=campaign_id)
            worker = get_user_model().objects.get(pk=worker_ids[i])
            barrier.wait(timeout=30)
            assignment = queue.task_next(campaign=campaign, worker=worker)
            got[i] = assignment.item_id if assignment is not None else None
        except Exception as exc:  # noqa: BLE001 - reported below, with the others
            errors.append(f"worker {i}: {exc!r}")
            barrier.abort()
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(worker_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return got


def check(got: list[int | None], *, items: int = ITEMS) -> None:
    served = [item for item in got if item is not None]
    assert len(served) == len(set(served)), f"an item was reserved twice: {got}"
    assert len(served) == items, f"every item should be reserved once: {got}"
    assert got.count(None) == len(got) - items


@pytest.mark.django_db(transaction=True)
def test_many_workers_asking_at_once_never_share_a_reservation():
    from labeling.models import Assignment

    campaign_id, worker_ids = make_race()
    check(race(campaign_id, worker_ids))
    rows = Assignment.objects.filter(campaign_id=campaign_id)
    assert rows.count() == ITEMS and rows.values("item").distinct().count() == ITEMS


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(POSTGRES, timeout=1):
            return True
    except OSError:
        return False


def _postgres_admin_url() -> str:
    """The server the suite uses when it is PostgreSQL, else the local default."""
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme in {"postgres", "postgresql"}:
        return urlsplit(url)._replace(path="/postgres").geturl()
    return f"postgres://postgres@{POSTGRES[0]}:{POSTGRES[1]}/postgres"


def _run_race(database_url: str, var_dir: Path) -> list[int | None]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hhh.settings",  # not the suite's: its own database
        "DATABASE_URL": database_url,
        "LAB_VAR_DIR": str(var_dir),
        "LAB_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_queue_concurrency"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["got"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_same_race_on_the_other_database_backend(backend, tmp_path):
    from django.db import connection

    if connection.vendor == backend:
        pytest.skip(f"the suite itself runs on {backend}: the test above covers it")
    if backend == "sqlite":
        check(_run_race(f"sqlite:///{tmp_path / 'race.sqlite3'}", tmp_path))
        return
    if not _postgres_answers():
        pytest.skip("no PostgreSQL answers at 127.0.0.1:5432")
    import psycopg

    admin = _postgres_admin_url()
    name = f"hhh_queue_race_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        check(_run_race(urlsplit(admin)._replace(path=f"/{name}").geturl(), tmp_path))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    campaign_id, worker_ids = make_race()
    got = race(campaign_id, worker_ids)
    print(json.dumps({"vendor": connection.vendor, "got": got}))


if __name__ == "__main__":
    main()
