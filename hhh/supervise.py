"""Run a few long-lived commands as one: start each, restart any that dies, stop them all
on Ctrl-C or SIGTERM. `manage.py lab` hands it the web server, the workers and beat.

Django-free on purpose: it only starts processes, so it is tested with `sleep` children.

- Each child leads its own session (so its own process group): a Ctrl-C in the terminal
  reaches this process alone. A stop sends SIGTERM to each child, which shuts its own
  tree down in order (a Celery worker finishes its task and ends its pool processes;
  uvicorn ends its workers), then SIGKILL to each child's whole group: to all of it once
  the child has exited (nothing may outlive it), after `grace_s` if it has not.
- A child that exits, for any reason, is started again after a wait that doubles from
  `first_delay_s` to `max_delay_s`, and starts over from `first_delay_s` once the child
  had run for `stable_s`: a crash loop does not spin, a rare crash is repaired at once.
- Children's output (stdout and stderr) comes through this process line by line,
  prefixed with the child's name; lines matching a `quiet` pattern are dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TextIO


def next_delay(
    last_s: float | None, ran_s: float, *, first_s: float, max_s: float, stable_s: float
) -> float:
    """The wait before restarting a child that exited after running `ran_s` seconds, its
    previous wait having been `last_s` (None: it never crashed before)."""
    if last_s is None or ran_s >= stable_s:
        return first_s
    return min(last_s * 2, max_s)


def describe_status(code: int) -> str:
    """`status 3`, or `status -9 (SIGKILL)` for a child killed by a signal."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"status {code} ({signal.Signals(-code).name})"
    return f"status {code}"


@dataclass
class _Child:
    name: str
    argv: Sequence[str]
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = None
    started_at: float = 0.0
    last_delay_s: float | None = None
    restart_at: float | None = None  # set while the child waits to be started again


class Supervisor:
    def __init__(
        self,
        commands: Mapping[str, Sequence[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        out: TextIO | None = None,
        name: str = "supervisor",
        quiet: Iterable[str] = (),
        first_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
        stable_s: float = 60.0,
        grace_s: float = 15.0,
        poll_s: float = 0.2,
    ):
        self._children = [_Child(child, list(argv)) for child, argv in commands.items()]
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._out = out if out is not None else sys.stdout
        self._name = name
        self._quiet = [re.compile(pattern) for pattern in quiet]
        self._first_delay_s, self._max_delay_s = first_delay_s, max_delay_s
        self._stable_s, self._grace_s, self._poll_s = stable_s, grace_s, poll_s
        self._width = max(len(name), *(len(child.name) for child in self._children))
        self._write_lock = threading.Lock()
        self._stopping = threading.Event()
        self._hurry = threading.Event()  # a second Ctrl-C: kill now, do not wait

    # --- For the caller (any thread).

    @property
    def pids(self) -> dict[str, int]:
        """The pid of each child running now."""
        return {c.name: c.proc.pid for c in self._children if c.proc and c.proc.poll() is None}

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask run() to stop every child and return; asked again while stopping, it kills
        the children at once instead of waiting for them."""
        if self._stopping.is_set():
            self._hurry.set()
        self._stopping.set()

    def say(self, text: str, who: str | None = None) -> None:
        """Write lines to the output, each prefixed with `who` (default: this supervisor)."""
        prefix = f"{who or self._name:<{self._width}} | "
        # Output gone (a closed pipe): drop the lines, so children never block writing.
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            for line in text.splitlines() or [""]:
                self._out.write(prefix + line + "\n")
            self._out.flush()

    def run(self, *, handle_signals: bool = True) -> None:
        """Start every child and keep them running until stop(), SIGINT or SIGTERM; then
        SIGTERM each child and SIGKILL its process group once it exits or after `grace_s`.
        Signals are only handled when called from the main thread."""
        previous = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda *_: self.stop())
        try:
            for child in self._children:
                self._spawn(child)
            self.say(", ".join(f"{c.name} (pid {c.proc.pid})" for c in self._children) + " started")
            while not self._stopping.wait(self._poll_s):
                self._check(time.monotonic())
        finally:  # stopped, or an error here: either way nothing may stay behind
            self._stopping.set()
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    # --- Inside run().

    def _spawn(self, child: _Child) -> None:
        child.proc = subprocess.Popen(
            child.argv,
            env=self._env,
            cwd=self._cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        child.reader = threading.Thread(
            target=self._pump, args=(child.name, child.proc.stdout), daemon=True
        )
        child.reader.start()

    def _pump(self, who: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            # A progress bar redraws with \r: keep what the line finally showed.
            line = raw.decode(errors="replace").rstrip("\r\n").rsplit("\r", 1)[-1]
            if not any(pattern.search(line) for pattern in self._quiet):
                self.say(line, who)
        stream.close()

    def _check(self, now: float) -> None:
        for child in self._children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._spawn(child)
                    self.say(f"{child.name} restarted (pid {child.proc.pid})")
                continue
            code = child.proc.poll()
            if code is None:
                continue
            # Its process group may outlive it (a worker's pool process): end it too, and
            # let its last lines out before saying it exited.
            _killpg(child.proc.pid, signal.SIGKILL)
            child.reader.join(timeout=1)
            ran_s = now - child.started_at
            child.last_delay_s = next_delay(
                child.last_delay_s,
                ran_s,
                first_s=self._first_delay_s,
                max_s=self._max_delay_s,
                stable_s=self._stable_s,
            )
            child.restart_at = now + child.last_delay_s
            self.say(
                f"{child.name} exited with {describe_status(code)} after {ran_s:.0f} s; "
                f"restarting in {child.last_delay_s:g} s"
            )

    def _stop_all(self) -> None:
        running = [c for c in self._children if c.proc is not None and c.restart_at is None]
        if running:
            names = ", ".join(c.name for c in running)
            self.say(f"stopping {names} (Ctrl-C again kills them at once)")
        for child in running:
            # The child alone, not its group: a pool process killed under its worker
            # would be logged as a lost worker, and its task cut short.
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace_s
        for child in running:
            while child.proc.poll() is None and time.monotonic() < deadline:
                if self._hurry.wait(0.05):
                    break
            if child.proc.poll() is None:
                self.say(f"{child.name} still running: killed")
            # The leader gone or not, nothing of its group may stay behind.
            _killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()
        for child in self._children:
            if child.reader is not None:
                child.reader.join(timeout=2)
        self.say("stopped")


def _killpg(pgid: int, signum: int) -> None:
    # The group is gone once its last process has exited: nothing left to signal.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
