"""A crowd of simulated workers, each in a thread of its own, and the run's summary."""

from __future__ import annotations

import random
import secrets
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import close_old_connections, connections

from labeling.crowd_sim.annotators import make_annotator, pm_annotator
from labeling.crowd_sim.browser import Browser, HttpError
from labeling.crowd_sim.worker import SimWorker, WorkerLog
from labeling.models import Campaign, Judgment, Pause


@dataclass(frozen=True)
class CrowdConfig:
    url: str  # the running lab's root URL
    campaign: str  # the campaign's slug
    workers: int  # simulated workers, all at once
    tasks: int  # most tasks each worker does (a set may end sooner)
    annotator: str = "random"  # random | length | pm:SPEC
    noise: float = 0.0  # share of answers replaced by random ones
    gold_failing: int = 0  # the first K workers answer gold checks wrongly
    entry: str = "prolific"  # prolific (entry links) | login (accounts made here)
    think_s: float = 1.0  # seconds each worker reads before answering
    timeout_s: float = 600.0  # the whole run ends by then
    seed: int = 0  # annotators' and messages' randomness
    arrival_s: float = 0.0  # workers arrive spread evenly over this many seconds

    def __post_init__(self):
        if self.workers < 1 or self.tasks < 1:
            raise ValueError("--workers and --tasks must be at least 1")
        if self.think_s < 0 or self.arrival_s < 0:
            raise ValueError("--think and --arrival must not be negative")
        if not 0 <= self.noise <= 1:
            raise ValueError("--noise must lie between 0 and 1")
        if not 0 <= self.gold_failing <= self.workers:
            raise ValueError("--gold-failing must lie between 0 and --workers")
        if self.entry not in ("prolific", "login"):
            raise ValueError("--entry is prolific or login")
        if self.annotator not in ("random", "length") and not self.annotator.startswith("pm:"):
            raise ValueError(f"unknown annotator {self.annotator!r}: use random, length or pm:SPEC")


def simulate(config: CrowdConfig) -> dict:
    """Run the crowd against the lab at ``config.url``; the summary as a dict."""
    campaign = Campaign.objects.get(slug=config.campaign)
    started = time.perf_counter()
    latencies: dict[str, list[float]] = defaultdict(list)
    logs = run_workers(config, lambda index: Browser(config.url, latencies))
    return _summary(campaign, logs, latencies, time.perf_counter() - started)


def run_workers(
    config: CrowdConfig,
    make_browser: Callable[[int], Browser],
    worker_class: type[SimWorker] = SimWorker,
) -> list[WorkerLog]:
    """Each worker walks in a thread of its own, arriving over ``config.arrival_s``; their
    logs once all have ended (or the run's timeout has passed)."""
    campaign = Campaign.objects.get(slug=config.campaign)
    run_id = secrets.token_hex(3)
    lock = threading.Lock()
    logs: list[WorkerLog] = []
    deadline = time.monotonic() + config.timeout_s
    accounts = _accounts(config, run_id) if config.entry == "login" else []
    pm = config.annotator[3:] if config.annotator.startswith("pm:") else None
    oracle = pm_annotator(pm) if pm else None  # one model for the crowd

    def one(index: int) -> None:
        time.sleep(index * config.arrival_s / config.workers)
        rng = random.Random(f"{config.seed}:{index}")
        worker = worker_class(
            browser=make_browser(index),
            campaign=campaign,
            name=f"sim{run_id}w{index:03d}",
            annotator=make_annotator(config.annotator, noise=config.noise, rng=rng, oracle=oracle),
            fails_gold=index < config.gold_failing,
            max_tasks=config.tasks,
            think_s=config.think_s,
            deadline=deadline,
            rng=rng,
        )
        try:
            if config.entry == "prolific":
                page = worker.enter_prolific(f"study{run_id}", f"session{run_id}{index:03d}")
            else:
                page = worker.enter_login(*accounts[index])
            worker.walk(page)
        except HttpError as exc:
            worker.log.http_errors.append(f"{exc.page.status} {exc.page.path}")
            worker.log.ended = f"entry failed: HTTP {exc.page.status}"
        except Exception as exc:  # a crashed walker is reported, never hidden
            worker.log.http_errors.append(f"simulator: {exc!r}")
            worker.log.ended = f"crashed: {exc!r}"
        finally:
            with lock:
                logs.append(worker.log)
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(config.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 30)
    close_old_connections()
    return logs


def _accounts(config: CrowdConfig, run_id: str) -> list[tuple[str, str, int]]:
    """Workers with a password, made here for ``--entry login``."""
    users = get_user_model().objects
    made = []
    for index in range(config.workers):
        password = secrets.token_urlsafe(12)
        user = users.create_user(f"sim{run_id}w{index:03d}", password=password)
        made.append((user.username, password, user.pk))
    return made


def _summary(campaign, logs: list[WorkerLog], latencies, seconds: float) -> dict:
    judged = [pair for log in logs for pair in log.judged]
    stored = {
        (worker, item)
        for worker, item in Judgment.objects.filter(
            worker_id__in={w for w, _ in judged}, item_id__in={i for _, i in judged}
        ).values_list("worker_id", "item_id")
    }
    users = [log.user_id for log in logs if log.user_id is not None]
    paused = Pause.objects.filter(campaign=campaign, worker_id__in=users, lifted_at__isnull=True)
    ended = defaultdict(int)
    for log in logs:
        ended[log.ended or "unknown"] += 1
    return {
        "workers": len(logs),
        "judgments": len(judged),
        "gold_seen": sum(log.gold_seen for log in logs),
        "quiz_answers": sum(log.quiz_answers for log in logs),
        "paused_workers": paused.count(),
        "paused": sorted(
            log.name
            for log in logs
            if log.user_id in set(paused.values_list("worker_id", flat=True))
        ),
        "http_errors": sum(len(log.http_errors) for log in logs),
        "errors": sorted({e for log in logs for e in log.http_errors})[:20],
        "refused": sum(log.refused for log in logs),
        "lost": sum(1 for pair in judged if pair not in stored),
        "tasks": sum(log.tasks for log in logs),
        "completion_codes": sorted({log.completion_code for log in logs if log.completion_code}),
        "ended": dict(sorted(ended.items())),
        "seconds": round(seconds, 1),
        "latency_ms": {
            endpoint: {
                "n": len(times),
                "p50": round(1000 * statistics.median(times), 1),
                "p95": round(1000 * _quantile(times, 0.95), 1),
            }
            for endpoint, times in sorted(latencies.items())
        },
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
