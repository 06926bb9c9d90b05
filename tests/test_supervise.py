"""The supervisor behind `manage.py lab`: a crashed child is started again while the others
run on, and a stop leaves no process behind. Its children here are `sleep`s."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hhh.supervise import Supervisor, describe_status, next_delay

REPO = Path(__file__).resolve().parent.parent


def wait_for(predicate, *, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def group_gone(pgid: int) -> bool:
    """No process is left in the group (an orphan is gone once init has reaped it)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def supervised():
    """Run a Supervisor in a thread; stop it (and check it stopped) after the test."""
    running = []

    def start(commands, **options):
        out = io.StringIO()
        sup = Supervisor(commands, out=out, name="lab", **options)
        thread = threading.Thread(target=sup.run, daemon=True)
        thread.start()
        wait_for(lambda: len(sup.pids) == len(commands), what="children to start")
        running.append((sup, thread))
        return sup, thread, out

    yield start
    for sup, thread in running:
        sup.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_a_killed_child_is_restarted_and_the_others_run_on(supervised):
    sup, _, out = supervised({"web": ["sleep", "60"], "generate": ["sleep", "60"]})
    before = sup.pids

    os.kill(before["generate"], signal.SIGKILL)

    after = wait_for(
        lambda: (p := sup.pids).get("generate") not in (None, before["generate"]) and p,
        what="a new generate pid",
    )
    assert after["web"] == before["web"]
    assert "generate exited with status -9 (SIGKILL)" in out.getvalue()
    restarted = f"generate restarted (pid {after['generate']})"
    wait_for(lambda: restarted in out.getvalue(), what="the restart to be told")


def test_stop_ends_every_process_of_every_child(supervised):
    # A child with a child of its own, and one that ignores SIGTERM (so is killed).
    sup, thread, out = supervised(
        {
            "tree": ["sh", "-c", "sleep 60 & sleep 60"],
            "stubborn": ["sh", "-c", "trap '' TERM; sleep 60"],
        },
        grace_s=0.5,
    )
    pids = sup.pids

    sup.stop()
    thread.join(timeout=5)

    assert not thread.is_alive()
    for pgid in pids.values():
        wait_for(lambda pgid=pgid: group_gone(pgid), timeout=3, what=f"group {pgid} to end")
    assert "stubborn still running: killed" in out.getvalue()


def test_asked_twice_it_kills_at_once(supervised):
    sup, thread, out = supervised({"stubborn": ["sh", "-c", "trap '' TERM; sleep 60"]}, grace_s=60)
    started = time.monotonic()

    sup.stop()
    sup.stop()
    thread.join(timeout=5)

    assert not thread.is_alive() and time.monotonic() - started < 5
    assert "stubborn still running: killed" in out.getvalue()


def test_sigterm_stops_the_supervisor_and_all_children():
    """The real signal path, in a process of its own: SIGTERM, then nothing is left."""
    script = (
        "from hhh.supervise import Supervisor; "
        "Supervisor({'a': ['sleep', '60'], 'b': ['sleep', '60']}, name='lab').run()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    started = proc.stdout.readline()  # "lab | a (pid N), b (pid M) started"
    pids = [int(part.split(")")[0]) for part in started.split("(pid ")[1:]]
    assert len(pids) == 2, started

    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=10)

    assert proc.returncode == 0
    assert "stopping a, b" in rest
    for pid in pids:
        wait_for(lambda pid=pid: group_gone(pid), timeout=3, what=f"child {pid} to end")


def test_output_is_prefixed_and_quiet_lines_are_dropped(supervised):
    sup, _, out = supervised(
        {"web": ["sh", "-c", "echo ready; echo 'No hostname was supplied'; sleep 60"]},
        quiet=["No hostname"],
    )
    wait_for(lambda: "ready" in out.getvalue(), what="the child's output")
    assert "web | ready\n" in out.getvalue()
    assert "hostname" not in out.getvalue()


def test_a_child_crashing_at_once_is_restarted_ever_more_slowly(supervised):
    sup, _, out = supervised(
        {"crash": ["sh", "-c", "sleep 0.2; exit 3"]}, first_delay_s=0.05, stable_s=60
    )
    wait_for(lambda: out.getvalue().count("exited with status 3") >= 3, what="three crashes")
    delays = [
        float(line.rsplit("restarting in ", 1)[1].split()[0])
        for line in out.getvalue().splitlines()
        if "restarting in" in line
    ]
    assert delays[:3] == [0.05, 0.1, 0.2]


def test_backoff_doubles_to_its_cap_and_starts_over_after_a_stable_run():
    kwargs = {"first_s": 1.0, "max_s": 30.0, "stable_s": 60.0}
    delays, last = [], None
    for _ in range(7):
        last = next_delay(last, 2.0, **kwargs)
        delays.append(last)
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert next_delay(30.0, 61.0, **kwargs) == 1.0


def test_exit_status_names_the_signal():
    assert describe_status(-9) == "status -9 (SIGKILL)"
    assert describe_status(1) == "status 1"
