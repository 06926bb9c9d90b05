"""Load and faults: a simulated crowd against a lab run as production runs it, with faults
injected mid-run; did every judgment arrive once, how fast were the pages, how soon did
each fault heal?

    python -m benchmarks.load --workers 50 --tasks 3 \\
        --faults worker-kill,worker-child-kill,broker-pause,db-kill [--model tiny-random]

The harness starts everything it uses: a private redis-server on a free port, a fresh
PostgreSQL database beside --database-url's (dropped at the end), and `manage.py lab` on
them (uvicorn, a generation worker, a training worker, beat, each restarted if it dies).
The crowd enters by Prolific links, consents, passes the quiz and does --tasks chat tasks
each (type a message, watch the responses stream, judge the pair, rate the conversation),
arriving over --arrival seconds and thinking --think seconds per step. Faults strike one
after another while the crowd works (benchmarks.load_faults). Then one generation worker's
capacity is measured alone: --capacity-turns sends at once, turns finished per second.

It prints one JSON object: submitted, stored, lost (answered 2xx but absent), duplicated,
refused (4xx; and how many fell outside the fault windows), http_5xx, latency p50/p95/p99
per endpoint and over all pages (log-in apart), Send → first token and → ready, each fault's
recovery_s, the capacity, and each goal met or not."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.load_faults import LAB_APP_NAME, parse_faults, run_faults
from benchmarks.load_report import summarize
from benchmarks.stack import PrivateRedis, free_port, fresh_postgres, wait_http

REPO = Path(__file__).resolve().parent.parent
CAMPAIGN = "helpful-chat"  # seed_demo's chat campaign: consent, a two-question quiz


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        faults = parse_faults(args.faults)
    except ValueError as exc:
        _parser().error(str(exc))
    folder = Path(tempfile.mkdtemp(prefix="hhh-load-"))
    with contextlib.ExitStack() as stack:
        redis = PrivateRedis(folder)
        stack.callback(redis.stop)
        database_url = stack.enter_context(fresh_postgres(args.database_url, "hhh_load"))
        env = _lab_env(args, folder, database_url, redis.url)
        os.environ.update({**env, "PGAPPNAME": "hhh-load-harness"})  # spared by db-kill
        _prepare(args)
        port = free_port()
        lab = _start_lab(env, port, args.web_workers, folder / "lab.log")
        stack.callback(_stop, lab)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", timeout=300)  # database, broker, every worker beating
        alone = _alone(args, url)  # the baseline: the same walk with nobody else about
        crowd, fault_logs, since = _run(args, faults, url, lab.pid, redis, database_url)
        capacity = _capacity(args.capacity_turns)
        summary = summarize(args, crowd, fault_logs, since, capacity, alone)
        summary["lab_log_tail"] = (folder / "lab.log").read_text()[-2000:].splitlines()[-12:]
    print(json.dumps(summary, indent=2))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=50, help="simulated crowdworkers")
    parser.add_argument("--tasks", type=int, default=3, help="chat tasks per worker")
    parser.add_argument("--faults", default="", help="comma-separated, in order of striking")
    parser.add_argument("--model", default="tiny-random", help="the assistant's model spec")
    parser.add_argument("--think", type=float, default=10.0, help="seconds per typing or judging")
    parser.add_argument("--arrival", type=float, default=20.0, help="workers arrive over this")
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn processes")
    parser.add_argument("--first-fault", type=float, default=20.0, help="seconds into the run")
    parser.add_argument("--fault-gap", type=float, default=5.0, help="seconds between faults")
    parser.add_argument("--capacity-turns", type=int, default=40, help="0: no capacity run")
    parser.add_argument("--timeout", type=float, default=900.0, help="the crowd's time limit")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server to make the run's own database on",
    )
    return parser


def _lab_env(args, folder: Path, database_url: str, broker_url: str) -> dict[str, str]:
    """The environment of a production lab on the run's own services (nothing inherited
    from a demo or the suite: their LAB_*, DJANGO_* and service URLs are dropped)."""
    keep = {"LAB_MODEL_DIR"}  # converted models are a shared, read-mostly cache
    env = {
        k: v
        for k, v in os.environ.items()
        if k in keep or not k.startswith(("LAB_", "DJANGO_", "DATABASE_URL", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="hhh.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        LAB_VAR_DIR=str(folder / "var"),
        LAB_DEFAULT_MODEL_SPEC=args.model,
        LAB_PM_BASE_SPEC=args.model,
        LAB_LOG_LEVEL="WARNING",
    )
    return env


def _prepare(args) -> None:
    """Migrate, seed the demo's campaigns, and size the chat campaign's sets to --tasks."""
    import django

    django.setup()
    from django.core.management import call_command

    from labeling.models import Campaign

    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    Campaign.objects.filter(slug=CAMPAIGN).update(
        set_size=args.tasks, max_turns=1, completion_code="LOADDONE"
    )


def _start_lab(env: dict, port: int, web_workers: int, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "lab", "--port", str(port)]
    command += ["--web-workers", str(web_workers)]
    with open(log_path, "w") as log:
        return subprocess.Popen(
            command,
            cwd=REPO,
            env={**env, "PGAPPNAME": LAB_APP_NAME},  # the connections db-kill ends
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # the supervisor stops its children in order
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _alone(args, url: str):
    """One worker's walk (entry, quiz, --tasks chats) alone on the lab, before the crowd:
    the pages and the turns at no load, the baseline the crowd's figures are set against."""
    from benchmarks.load_crowd import CrowdLog, LoadWorker, LoggingBrowser
    from labeling.crowd_sim.run import CrowdConfig, run_workers

    config = CrowdConfig(
        url=url, campaign=CAMPAIGN, workers=1, tasks=args.tasks, think_s=0.5, seed=1
    )
    for _ in range(2):  # the first walk warms the processes up (imports, templates, model)
        alone = CrowdLog()
        alone.worker_logs = run_workers(
            config, lambda index, log=alone: LoggingBrowser(url, log), worker_class=LoadWorker
        )
    return alone


def _run(args, faults, url, lab_pid, redis, database_url):
    """The crowd, and the faults beside it; the crowd's log, the faults' logs, the start."""
    from django.utils import timezone

    from benchmarks.load_crowd import CrowdLog, LoadWorker, LoggingBrowser
    from labeling.crowd_sim.run import CrowdConfig, run_workers

    config = CrowdConfig(
        url=url,
        campaign=CAMPAIGN,
        workers=args.workers,
        tasks=args.tasks,
        think_s=args.think,
        arrival_s=args.arrival,
        timeout_s=args.timeout,
    )
    crowd = CrowdLog()
    since, done, fault_logs = timezone.now(), threading.Event(), []
    admin_url = args.database_url
    database = database_url.rsplit("/", 1)[1]

    def strike_all():
        fault_logs.extend(
            run_faults(
                faults,
                since=since,
                lab_pid=lab_pid,
                redis=redis,
                admin_url=admin_url,
                database=database,
                stop=done,
                first_after_s=args.first_fault,
                gap_s=args.fault_gap,
            )
        )

    striker = threading.Thread(target=strike_all, daemon=True)
    striker.start()
    started, cpu_before = time.monotonic(), _cpu_seconds(lab_pid)
    crowd.worker_logs = run_workers(
        config, lambda index: LoggingBrowser(url, crowd), worker_class=LoadWorker
    )
    crowd.seconds = time.monotonic() - started
    cpu_after = _cpu_seconds(lab_pid)
    crowd.cpu_share = {
        name: round((cpu_after[name] - cpu_before.get(name, 0.0)) / crowd.seconds, 2)
        for name in cpu_after
    }
    done.set()
    striker.join()
    return crowd, fault_logs, since


def _cpu_seconds(lab_pid: int) -> dict[str, float]:
    """CPU seconds used so far by each of the lab's children (with their own children),
    by this harness, and by the whole machine (all cores)."""
    import psutil

    def used(process, *, with_children: bool = True) -> float:
        total = 0.0
        for each in [process, *(process.children(recursive=True) if with_children else [])]:
            with contextlib.suppress(psutil.Error):
                times = each.cpu_times()
                total += times.user + times.system
        return total

    seconds = {"harness": used(psutil.Process(), with_children=False)}  # the lab apart
    for child in psutil.Process(lab_pid).children():
        with contextlib.suppress(psutil.Error):
            args = " ".join(child.cmdline())
            name = next(
                (n for n in ("uvicorn", "generate@", "train@", "beat") if n in args), "other"
            )
            seconds[name.rstrip("@").replace("uvicorn", "web")] = used(child)
    machine = psutil.cpu_times()
    seconds["machine"] = machine.user + machine.system + machine.nice
    return seconds


def _capacity(turns: int) -> dict | None:
    """One generation worker alone, saturated: ``turns`` sends at once (the crowd is
    gone); turns finished per second from the first send to the last response."""
    if turns < 1:
        return None
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from benchmarks.load_faults import turns_in_flight
    from labeling.models import Campaign
    from labeling.services import conversations

    campaign = Campaign.objects.get(slug=CAMPAIGN)
    users = [
        get_user_model().objects.create_user(f"capacity{i:03d}-{secrets.token_hex(2)}")
        for i in range(turns)
    ]
    since = timezone.now()
    started = time.monotonic()
    for user in users:
        conversation = conversations.conversation_start(campaign=campaign, worker=user)
        conversations.turn_create(conversation=conversation, worker=user, text="Hello!")
    deadline = started + 600
    while turns_in_flight(since) and time.monotonic() < deadline:
        time.sleep(0.2)
    seconds = time.monotonic() - started
    return {"turns": turns, "seconds": round(seconds, 1), "turns_per_s": round(turns / seconds, 2)}


if __name__ == "__main__":
    main()
