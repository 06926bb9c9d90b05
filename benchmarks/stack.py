"""A benchmark's own services, started and removed by the benchmark: a free port, a
PostgreSQL database beside an existing one, a private redis-server, waiting for a URL."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http(url: str, *, timeout: float = 120, ok=(200,)) -> int:
    """Wait until ``url`` answers with a status in ``ok``; the status."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = None
        if status in ok:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer {ok} within {timeout:g} s (last: {status})")
        time.sleep(0.3)


@contextmanager
def fresh_postgres(url: str, prefix: str):
    """A new, empty database on the server ``url`` names (dropped afterwards): its URL."""
    import psycopg

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PrivateRedis:
    """A redis-server of the benchmark's own, on a free port, keeping nothing on disk."""

    def __init__(self, folder: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(folder)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while self.cli("PING") not in ("PONG", "True"):  # redis-py answers PING with True
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the private redis-server did not start")
            time.sleep(0.1)

    def cli(self, *command: str) -> str:
        import redis

        try:
            answer = redis.Redis(port=self.port, socket_timeout=2).execute_command(*command)
        except redis.RedisError as exc:
            return f"error: {exc}"
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
