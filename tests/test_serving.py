"""The lab is served by its production server: the web command `manage.py lab` runs
(uvicorn on the ASGI application) answers pages, and WhiteNoise its static files, with
debug off, as in production."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.management.commands.lab import web_command
from tests.conftest import worker_database_url

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, **headers):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return r.status, r.headers, r.read()


@pytest.fixture
def production_server(django_db_setup, tmp_path):
    call_command("collectstatic", interactive=False, verbosity=0)  # as `lab` does
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "test-only",
        "DJANGO_SETTINGS_MODULE": "hhh.settings",  # the lab's own (collected static files)
    }
    log_path = tmp_path / "web.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            web_command("127.0.0.1", port, workers=1, log_level="WARNING"),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"no server: {log_path.read_text()[-3000:]}") from None
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=20)
    # uvicorn stops cleanly, then dies of the signal it caught, as the caller asked.
    assert proc.returncode in (0, -15), log_path.read_text()[-3000:]
    assert log_path.read_text() == ""  # no access log, no warnings


def test_the_production_server_serves_pages_and_static_files(production_server):
    status, headers, body = get(f"{production_server}/accounts/login/")
    assert status == 200 and headers["server"] == "uvicorn"
    css = re.search(rb'href="(/static/labeling/app\.css)"', body).group(1).decode()

    status, headers, body = get(production_server + css, **{"Accept-Encoding": "gzip"})

    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert headers["Content-Encoding"] == "gzip"  # collectstatic's compressed copy
    assert "max-age" in headers["Cache-Control"]


def test_lab_refuses_a_port_another_server_holds():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(CommandError, match=f"cannot serve on 127.0.0.1:{port}"):
            call_command("lab", port=port)
