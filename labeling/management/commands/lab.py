import os
import socket
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from hhh.env import env_int
from hhh.supervise import Supervisor
from labeling.management.commands.seed_demo import demo_logins
from models_backend import specs
from models_backend.loading import ensure_smollm2_cache

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Children's lines that tell someone running the lab nothing.
QUIET = [
    # kombu, on every connection to the folder broker, which has no host.
    r"No hostname was supplied\. Reverting to default 'localhost'",
    r"^worker: Warm shutdown",  # celery, on the way out (`lab` has said it stops them)
    r"^\s*$",
]
# Celery's 7-line warning against running as root, once per worker: `lab` says it once.
QUIET_ROOT = ["-W", "ignore:You're running the worker with superuser privileges"]
# Celery 5's notice at each broker connection loss that 6.0 will cancel running acks_late
# tasks then. The lab keeps 5's way on purpose: a turn being generated goes on and reaches
# the page (its late ack is then redelivered and finds nothing left to do).
QUIET_CANCEL = ["-W", "ignore:\nIn Celery 5.1 we introduced an optional breaking change"]
# Django's warning at the first static file: WhiteNoise streams files with a synchronous
# iterator, which the ASGI handler reads in a thread (evansd/whitenoise#531). Harmless for
# small files; the lab's own token stream is asynchronous.
QUIET_WHITENOISE = ["-W", "ignore:StreamingHttpResponse must consume synchronous iterators"]


def web_command(host: str, port: int, *, workers: int, log_level: str) -> list[str]:
    """The production server: uvicorn on the ASGI application (the token stream is a
    long-lived async response), quiet about each request (pages poll)."""
    return [
        *(sys.executable, *QUIET_WHITENOISE, "-m", "uvicorn", "hhh.asgi:application"),
        *("--host", host, "--port", str(port), "--workers", str(workers)),
        *("--no-access-log", "--log-level", log_level.lower()),
        "--lifespan=off",  # Django has no lifespan handler (uvicorn would say so)
        # Open token streams would hold a stop up: they are cut after this many seconds.
        "--timeout-graceful-shutdown=5",
    ]


def worker_commands(log_level: str) -> dict[str, list[str]]:
    celery = [
        sys.executable,
        *QUIET_ROOT,
        *QUIET_CANCEL,
        "-m",
        "celery",
        "-A",
        "hhh",
        "--quiet",
    ]  # no banners
    worker = [*celery, "worker", "-c", "1", "-l", log_level]
    return {
        "generate": [*worker, "-Q", "generate,default", "-n", "generate@%h"],
        "train": [*worker, "-Q", "train", "-n", "train@%h"],
        "beat": [*celery, "beat", "-l", log_level],
    }


class Command(BaseCommand):
    help = (
        "Run the whole lab: the web server (uvicorn), a generation worker, a training "
        "worker and beat; a child that dies is started again. Ctrl-C stops them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("LAB_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT", "8000")))
        parser.add_argument(
            "--web-workers",
            type=int,
            default=env_int("LAB_WEB_WORKERS", 1, minimum=1),
            help="uvicorn worker processes (default 1: one event loop serves the streams)",
        )

    def handle(self, *args, host, port, web_workers, **options):
        log_level = os.environ.get("LAB_LOG_LEVEL", "WARNING").upper()
        if log_level not in LOG_LEVELS:
            raise CommandError(f"LAB_LOG_LEVEL={log_level!r}: use one of {', '.join(LOG_LEVELS)}")
        _check_port_free(host, port)
        env = {**os.environ, "LAB_LOG_LEVEL": log_level, "PYTHONUNBUFFERED": "1"}
        # Two workers share the CPU: torch's one-thread-per-core default would make them
        # fight (on 2 busy cores, preference training measured 4x slower with 2 threads).
        env.setdefault("LAB_TORCH_THREADS", str(max(1, (os.cpu_count() or 2) // 2)))
        env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # a bar at every model load
        sup = Supervisor(
            {"web": web_command(host, port, workers=web_workers, log_level=log_level)}
            | worker_commands(log_level),
            env=env,
            out=self.stdout,
            name="lab",
            quiet=QUIET,
        )
        if os.geteuid() == 0:
            sup.say("running as root: the workers run tasks with root's rights")
        resolved = specs.resolve(settings.LAB_DEFAULT_MODEL_SPEC)
        if resolved.kind == "smollm2":
            sup.say("preparing the default model (converted once, then cached)")
            ensure_smollm2_cache(resolved.path)
        # WhiteNoise serves STATIC_ROOT when debug is off: fill it (only changed files).
        call_command("collectstatic", interactive=False, verbosity=0)
        threading.Thread(target=_announce, args=(sup, host, port), daemon=True).start()
        sup.run()


def _announce(sup: Supervisor, host: str, port: int) -> None:
    """Once the web server answers, say where the lab is and how to log in: last, so
    it is what the terminal shows."""
    try:
        logins = demo_logins()
    except DatabaseError:  # not migrated: the web server will say more
        logins = []
    finally:
        connection.close()
    while not sup.stopping:
        try:
            socket.create_connection((_local(host), port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        return
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    sup.say("\n".join([f"The lab is running at {url} (admin: {url}admin/)", *logins]))
    sup.say("Ctrl-C stops web, workers and beat.")


def _local(host: str) -> str:
    """Where to reach a server listening on `host` from this machine."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _check_port_free(host: str, port: int) -> None:
    """Fail now, not in a restart loop, when another server (an earlier lab?) holds the
    port: the lab would announce that server as its own."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise CommandError(
                f"cannot serve on {host}:{port}: {error.strerror} (use --port or LAB_PORT)"
            ) from None
