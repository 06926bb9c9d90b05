"""Recovery in seconds: rows name their holder, a live holder beats for them, a lost
holder's rows are taken over; a database blip is retried, and failure is written on a
fresh connection. The last tests kill a real worker process with SIGKILL mid-turn."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from hhh.celery import app
from labeling import selectors, tasks
from labeling.generation_sink import Heartbeat
from labeling.models import Campaign, CandidateResponse, ModelVersion
from labeling.services import conversations as svc
from labeling.services import generation
from tests.conftest import REPO, start_worker, wait_for

Status = CandidateResponse.Status


@pytest.fixture
def turn(campaign, owner):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    return svc.turn_create(conversation=conversation, worker=owner, text="Hi there")


def age(turn, seconds: float) -> None:
    """As if the rows' holder last beat ``seconds`` ago."""
    turn.candidates.update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


@pytest.mark.django_db
def test_a_holder_keeps_its_rows_until_it_stops_beating(turn):
    claimed = generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="w1:1")
    assert {c.holder for c in claimed} == {"w1:1"}
    assert generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="w2:2") == []
    assert selectors.candidates_held_elsewhere(turn_id=turn.pk, holder="w2:2", stale_after_s=10)
    age(turn, 30)
    assert (
        generation.candidates_heartbeat(candidate_ids=[c.pk for c in claimed], holder="w2:2") == 0
    )
    assert (
        generation.candidates_heartbeat(candidate_ids=[c.pk for c in claimed], holder="w1:1") == 2
    )
    age(turn, 30)  # w1 died: w2 takes over, and w1's late writes change nothing
    assert len(generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="w2:2")) == 2
    generation.candidate_progress(candidate_id=claimed[0].pk, text="stale words", holder="w1:1")
    assert set(turn.candidates.values_list("holder", "text")) == {("w2:2", "")}


@pytest.mark.django_db
def test_a_retry_of_its_own_task_takes_the_holders_rows_back_at_once(turn):
    generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="w1:1")
    assert len(generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="w1:1")) == 2


def a_dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.django_db
def test_rows_of_a_process_of_this_machine_that_is_gone_are_taken_over_at_once(turn):
    """A killed worker's rows need not wait out the stale threshold: its process is gone."""
    here = socket.gethostname()
    dead, alive = f"generate@{here}:{a_dead_pid()}", f"generate@{here}:{os.getpid()}"
    generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder=alive)
    assert generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="new:2") == []
    assert generation.candidates_requeue_stale(stale_after_s=10) == []
    turn.candidates.update(holder=dead)  # the same rows, held by a process that has exited
    assert generation.candidates_requeue_stale(stale_after_s=10) == [turn.pk]
    assert len(generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="new:2")) == 2


@pytest.mark.django_db
def test_rows_held_on_another_machine_wait_for_their_heartbeat(turn):
    elsewhere = f"generate@another-host:{a_dead_pid()}"
    generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder=elsewhere)
    assert generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="new:2") == []


@pytest.mark.django_db
def test_a_retried_turn_counts_as_asked_now_not_when_it_was_created(turn, owner, monkeypatch):
    monkeypatch.setattr(generation, "_enqueue_generation", lambda turn_id: None)
    claimed = generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="w1:1")
    generation.candidates_fail(candidate_ids=[c.pk for c in claimed], error="boom")
    turn.candidates.update(created_at=timezone.now() - timedelta(minutes=5))
    age(turn, 300)
    generation.candidates_retry(turn=turn, worker=owner)
    assert generation.candidates_requeue_stale(stale_after_s=10) == []
    age(turn, 30)
    assert generation.candidates_requeue_stale(stale_after_s=10) == [turn.pk]


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_keeps_the_holders_running_rows_fresh_while_the_task_works(turn):
    claimed = generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="w1:1")
    age(turn, 30)
    with Heartbeat(holder="w1:1", candidate_ids=[c.pk for c in claimed], every_s=0.05):
        time.sleep(0.5)
    fresh = timezone.now() - timedelta(seconds=5)
    assert turn.candidates.filter(heartbeat_at__gt=fresh).count() == 2


def test_a_stale_threshold_shorter_than_two_heartbeats_is_refused_at_start():
    env = {
        **os.environ,
        "LAB_GENERATION_HEARTBEAT_SECONDS": "3",
        "LAB_GENERATION_STALE_SECONDS": "5",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "must be at least two heartbeats" in result.stderr


class Retried(Exception):
    pass


@pytest.mark.django_db
def test_a_redelivered_task_finding_fresh_rows_of_another_holder_comes_back_when_stale(
    turn, settings, monkeypatch
):
    settings.LAB_GENERATION_STALE_SECONDS = 10
    generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="dead-worker:1")
    countdowns = []

    def retry(**kwargs):
        countdowns.append(kwargs["countdown"])
        return Retried()

    monkeypatch.setattr(tasks.generate_candidates, "retry", retry)
    result = tasks.generate_candidates.apply(args=[turn.pk])
    assert isinstance(result.result, Retried) and countdowns == [10]
    assert set(turn.candidates.values_list("status", flat=True)) == {Status.RUNNING}


def break_the_connection() -> None:
    """What a database restart does to the connection a worker holds."""
    connection.ensure_connection()
    connection.connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_database_blip_in_the_final_write_is_retried_and_the_rows_taken_back(turn, monkeypatch):
    real = generation.candidate_complete
    calls = []

    def blip_once(**kwargs):
        calls.append(kwargs["candidate_id"])
        if len(calls) == 1:
            break_the_connection()
            raise OperationalError("server closed the connection unexpectedly")
        real(**kwargs)

    monkeypatch.setattr(generation, "candidate_complete", blip_once)
    tasks.generate_candidates.apply(args=[turn.pk])  # eager: the retry runs at once
    assert set(turn.candidates.values_list("status", flat=True)) == {Status.DONE}
    assert len(calls) == 3  # the failed write, then both rows again


@pytest.mark.django_db(transaction=True)
def test_with_no_retry_left_the_rows_fail_on_a_fresh_connection(turn, monkeypatch):
    def broken(**kwargs):
        break_the_connection()
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(generation, "candidate_complete", broken)
    tasks.generate_candidates(turn.pk)  # called directly: no queue to retry through
    rows = list(turn.candidates.all())
    assert {c.status for c in rows} == {Status.FAILED}
    assert all("OperationalError" in c.error for c in rows)


# --- A real worker killed mid-turn. Its workers take messages from a queue of this test's
# own: the session's worker (test_celery_worker.py) listens on "generate" on the same
# broker and would otherwise race them for the turn.

QUEUE = f"recovery-{uuid.uuid4().hex[:8]}"
HEARTBEAT_S, STALE_S = 1, 3
RECOVERY_S = 30  # the goal: a turn goes on within this long of a worker being ready


@pytest.fixture
def workers(tmp_path, monkeypatch):
    """Starts workers on QUEUE (each leading its own process group); kills what is left."""
    monkeypatch.setattr(
        generation,
        "_enqueue_generation",
        lambda turn_id: app.send_task(generation.GENERATE_TASK, args=[turn_id], queue=QUEUE),
    )
    started: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        node = f"{name}-{os.getpid()}@%h"
        settings = {
            "LAB_GENERATION_HEARTBEAT_SECONDS": str(HEARTBEAT_S),
            "LAB_GENERATION_STALE_SECONDS": str(STALE_S),
        }
        proc = start_worker(
            tmp_path / f"{name}.log",
            queues=QUEUE,
            node=node,
            env=settings,
            start_new_session=True,
        )
        proc.node = node.split("@")[0]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with app.connection_for_write() as conn, contextlib.suppress(Exception):
        conn.default_channel.queue_purge(QUEUE)


@pytest.fixture
def slow_turn(db, owner):
    """A turn that takes seconds: greedy tiny-random@4x128 writes 1,500 tokens (it meets
    no end-of-sequence token on this message)."""
    model = ModelVersion.objects.create(
        name="tiny-4x128", kind=ModelVersion.Kind.ASSISTANT, spec="tiny-random@4x128"
    )
    campaign = Campaign.objects.create(
        name="Slow",
        slug="slow",
        instructions="x",
        model_a=model,
        model_b=model,
        temperature=0,
        max_new_tokens=1500,
    )
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    return svc.turn_create(conversation=conversation, worker=owner, text="Hello, assistant")


def generating(turn):
    """The turn's rows, once both are running with streamed text under one holder."""
    rows = list(turn.candidates.all())
    if (
        all(c.status == Status.RUNNING and c.text for c in rows)
        and len({c.holder for c in rows}) == 1
    ):
        return rows
    assert Status.DONE not in {c.status for c in rows}, "the turn finished before the kill"
    return None


def ready(worker) -> bool:
    return "ready." in Path(worker.log_path).read_text()


def done(turn):
    rows = list(turn.candidates.all())
    assert Status.FAILED not in {c.status for c in rows}, [c.error for c in rows]
    return rows if {c.status for c in rows} == {Status.DONE} else None


@pytest.mark.django_db(transaction=True)
def test_a_turn_goes_on_after_its_worker_is_killed_and_another_starts(workers, slow_turn):
    first = workers("recovery-a")
    held = wait_for(lambda: generating(slow_turn), timeout=120, proc=first, what="streaming")
    os.killpg(first.pid, signal.SIGKILL)  # main process and pool child: a lost machine
    first.wait()
    second = workers("recovery-b")
    wait_for(lambda: ready(second), timeout=120, proc=second, what="the new worker")
    available = time.monotonic()
    # The beat's job, done here: once the rows are stale, enqueue the turn again (on the
    # folder broker the killed worker's message is gone; on Redis it is held for an hour).
    wait_for(
        lambda: generation.candidates_requeue_stale(stale_after_s=STALE_S),
        timeout=30,
        what="stale rows",
    )
    rows = wait_for(lambda: done(slow_turn), timeout=120, proc=second, what="the turn")
    took = time.monotonic() - available
    assert {c.holder.split("@")[0] for c in rows} == {second.node}, [c.holder for c in rows]
    assert held[0].holder.split("@")[0] == first.node
    assert took < RECOVERY_S, f"recovered in {took:.1f}s"


@pytest.mark.django_db(transaction=True)
def test_a_killed_pool_process_redelivers_and_its_successor_takes_the_turn_over(workers, slow_turn):
    worker = workers("recovery-c")
    held = wait_for(lambda: generating(slow_turn), timeout=120, proc=worker, what="streaming")
    child_pid = int(re.fullmatch(r".*:(\d+)", held[0].holder).group(1))
    assert child_pid != worker.pid  # the pool process, not the worker's main process
    killed = time.monotonic()
    os.kill(child_pid, signal.SIGKILL)
    rows = wait_for(lambda: done(slow_turn), timeout=120, proc=worker, what="the turn")
    took = time.monotonic() - killed
    holders = {c.holder for c in rows}
    assert len(holders) == 1 and held[0].holder not in holders
    assert next(iter(holders)).startswith(worker.node)
    assert took < RECOVERY_S, f"recovered in {took:.1f}s"
