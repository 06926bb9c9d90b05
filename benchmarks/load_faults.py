"""Faults the load harness injects, each only on its own lab: its processes, its private
redis-server and its own PostgreSQL database (connections of other programs, other
databases and the shared services are never touched).

- worker-kill: SIGKILL to the generation worker's main process (the lab's supervisor
  starts it again; its pool process dies with it).
- worker-child-kill: SIGKILL to the generation worker's pool process, the one running
  the task (the worker starts another).
- broker-pause: SIGSTOP to the private redis-server for BROKER_PAUSE_S, then SIGCONT.
- broker-disconnect: the private redis-server drops every client connection.
- db-kill: PostgreSQL ends every connection the lab's processes hold to its database.

Recovery: from the fault to the moment every turn that was in flight when it struck (its
responses being generated) has all its responses finished. A fault waits for such a turn
before it strikes."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import psutil
import psycopg

FAULTS = ("worker-kill", "worker-child-kill", "broker-pause", "broker-disconnect", "db-kill")
BROKER_PAUSE_S = 8.0
LAB_APP_NAME = "hhh-lab"  # the lab's processes' PostgreSQL application_name (PGAPPNAME)
RECOVERY_LIMIT_S = 180.0  # a fault not recovered by then is reported as not recovered


@dataclass
class FaultLog:
    fault: str
    at: float  # monotonic time it struck
    in_flight: int  # turns in flight when it struck
    recovery_s: float | None = None  # None: not recovered within RECOVERY_LIMIT_S


def parse_faults(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault {', '.join(unknown)}: choose from {', '.join(FAULTS)}")
    return names


def generation_worker(lab_pid: int) -> psutil.Process:
    """The lab's generation worker (a `celery worker` named generate@…), now."""
    for child in psutil.Process(lab_pid).children():
        if any(arg.startswith("generate@") for arg in child.cmdline()):
            return child
    raise RuntimeError("the lab has no generation worker running")


def strike(fault: str, *, lab_pid: int, redis, admin_url: str, database: str) -> None:
    if fault == "worker-kill":
        os.kill(generation_worker(lab_pid).pid, signal.SIGKILL)
    elif fault == "worker-child-kill":
        pool = generation_worker(lab_pid).children()
        if not pool:
            raise RuntimeError("the generation worker has no pool process")
        os.kill(pool[0].pid, signal.SIGKILL)
    elif fault == "broker-pause":
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(BROKER_PAUSE_S)
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
    elif fault == "broker-disconnect":
        for kind in ("normal", "pubsub"):
            redis.cli("CLIENT", "KILL", "TYPE", kind)
    elif fault == "db-kill":
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s",
                (database, LAB_APP_NAME),
            )
    else:
        raise ValueError(f"unknown fault {fault!r}")


def turns_in_flight(since, statuses=("pending", "running")) -> set[int]:
    """Turns of this run with responses in one of ``statuses`` (default: not finished)."""
    from labeling.models import CandidateResponse

    return set(
        CandidateResponse.objects.filter(
            turn__created_at__gte=since, status__in=statuses
        ).values_list("turn_id", flat=True)
    )


def run_faults(faults, *, since, lab_pid, redis, admin_url, database, stop, first_after_s, gap_s):
    """Strike each fault in turn while the crowd works (each waits for a turn in flight),
    and time its recovery; the faults' logs. ``stop``: an Event set when the crowd ends."""
    from django.db import connection

    logs: list[FaultLog] = []
    if stop.wait(first_after_s):
        return logs
    for fault in faults:
        deadline = time.monotonic() + 60
        while not (flight := turns_in_flight(since, ["running"])) and time.monotonic() < deadline:
            if stop.wait(0.2):
                return logs
        log = FaultLog(fault, time.monotonic(), len(flight))
        logs.append(log)
        strike(fault, lab_pid=lab_pid, redis=redis, admin_url=admin_url, database=database)
        while time.monotonic() - log.at < RECOVERY_LIMIT_S:
            if not flight & turns_in_flight(since):
                log.recovery_s = round(time.monotonic() - log.at, 1)
                break
            time.sleep(0.2)
        connection.close()
        if stop.wait(gap_s):
            return logs
    return logs
