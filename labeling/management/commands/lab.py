import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from models_backend import specs
from models_backend.loading import ensure_smollm2_cache


class Command(BaseCommand):
    help = "Run the whole lab: web server, a generation worker, a training worker and beat."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("LAB_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT", "8000")))

    def handle(self, *args, host, port, **options):
        resolved = specs.resolve(settings.LAB_DEFAULT_MODEL_SPEC)
        if resolved.kind == "smollm2":
            self.stdout.write("Preparing the default model (converted once, then cached)…")
            ensure_smollm2_cache(resolved.path)
        celery = [sys.executable, "-m", "celery", "-A", "hhh"]
        commands = {
            "web": [sys.executable, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            "generate": celery
            + ["worker", "-Q", "generate,default", "-c", "1", "-n", "generate@%h", "-l", "INFO"],
            "train": celery + ["worker", "-Q", "train", "-c", "1", "-n", "train@%h", "-l", "INFO"],
            "beat": celery + ["beat", "-l", "INFO"],
        }
        # Each child leads its own process group, so stopping them is this command's job
        # alone: a stop reaches every child once, then stragglers are killed.
        # Two workers share the CPU: torch's one-thread-per-core default would make them
        # fight (on 2 busy cores, preference training measured 4x slower with 2 threads).
        env = {**os.environ}
        env.setdefault("LAB_TORCH_THREADS", str(max(1, (os.cpu_count() or 2) // 2)))
        procs = {
            name: subprocess.Popen(cmd, env=env, start_new_session=True)
            for name, cmd in commands.items()
        }
        self.stdout.write(self.style.SUCCESS(f"\nThe lab is running at http://{host}:{port}/"))
        self.stdout.write("Press Ctrl-C to stop web, workers and beat.\n")
        signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self._watch(procs)
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            _stop(procs)

    def _watch(self, procs):
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise CommandError(f"{name} exited with status {proc.returncode}")
            time.sleep(1)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop(procs, grace_s: float = 15.0) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
