"""Celery tasks: thin. Load by id, claim the work, call models_backend/training, write back
through services. Queues: "generate" and "train" (one model per process: prefetch 1,
concurrency 1), "default" for bookkeeping."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError, connection

from labeling import (
    heartbeat,  # noqa: F401 (a worker's heartbeat starts with it: /healthz)
    selectors,
    streams,
)
from labeling.generation_sink import GenerationSink, Heartbeat
from labeling.models import Run
from labeling.services import distillation as distill_services
from labeling.services import evaluation as eval_services
from labeling.services import generation as gen_services
from labeling.services import runs as run_services
from labeling.services import training as train_services
from models_backend import orchestrate
from models_backend.assistants import get_assistant
from models_backend.loading import load_causal_lm
from models_backend.remote import RemoteGenerationError

log = logging.getLogger(__name__)
GENERATE_RETRIES = 5  # database blips, a busy generation server, waiting out a lost holder
RUN_PROGRESS_EVERY_S = 2.0  # how often a training or evaluation run writes its progress


@shared_task(
    bind=True,
    acks_late=True,  # idempotent: a redelivered message regenerates unclaimed rows only
    reject_on_worker_lost=True,  # a killed pool process: the message goes back to the queue
    max_retries=GENERATE_RETRIES,
    autoretry_for=(OperationalError,),  # the database away while claiming (later: below)
    retry_backoff=1,
    soft_time_limit=300,
    time_limit=330,
)
def generate_candidates(self, turn_id: int) -> None:
    holder = f"{self.request.hostname or socket.gethostname()}:{os.getpid()}"
    stale_s = settings.LAB_GENERATION_STALE_SECONDS
    rows = gen_services.candidates_claim(turn_id=turn_id, stale_after_s=stale_s, holder=holder)
    if not rows:
        # A redelivery (a killed pool process) finds the rows still fresh under their old
        # holder: come back when they would be stale, to take them over if it is dead.
        if selectors.candidates_held_elsewhere(
            turn_id=turn_id, holder=holder, stale_after_s=stale_s
        ) and _can_retry(self):
            raise self.retry(countdown=stale_s)
        return
    campaign = rows[0].turn.conversation.campaign
    best_of = _best_of(campaign)
    if best_of is None:
        rows += _concurrent_rows(rows, turn_id, holder)
    ids = [row.pk for row in rows]
    sink = GenerationSink(
        holder=holder,
        every_s=settings.LAB_GENERATION_PROGRESS_SECONDS,
        turns={row.pk: row.turn_id for row in rows},
        publisher=streams.publisher(),
    )
    beat_s = settings.LAB_GENERATION_HEARTBEAT_SECONDS
    with Heartbeat(holder=holder, candidate_ids=ids, every_s=beat_s):
        try:
            orchestrate.generate(_job(rows), assistant_for=_assistant, sink=sink, best_of=best_of)
        except SoftTimeLimitExceeded:
            sink.fail(ids, "Generation took too long.")
            raise
        except Exception as exc:  # a model or write error must reach the page, not a spinner
            _retry_or_fail(self, sink, ids, exc)


def _can_retry(task) -> bool:
    """Called as a plain function (tests, a shell) there is no queue to retry through."""
    return not task.request.called_directly and task.request.retries < task.max_retries


def _retry_or_fail(task, sink: GenerationSink, ids: list[int], exc: Exception) -> None:
    """The one failure path, on a fresh connection. A database blip or a busy generation
    server is retried with backoff (the rows stay held: the retry takes them back at once);
    anything else fails the rows with the reason. If that write fails too, the database is
    still away: retry, so the rows are taken over as soon as it is back rather than once
    they go stale. (Inside a transaction, a test calling the task, the caller owns the
    connection.)"""
    if not connection.in_atomic_block:  # the error may be the database's own: start afresh
        connection.close()
    transient = isinstance(exc, OperationalError) or (
        isinstance(exc, RemoteGenerationError) and exc.transient
    )
    countdown = 2**task.request.retries  # 1, 2, 4, 8, 16 s
    if transient and _can_retry(task):
        log.warning("generation of candidates %s retried: %s", ids, exc)
        raise task.retry(exc=exc, countdown=countdown)
    log.error("generation failed for candidates %s", ids, exc_info=exc)
    try:
        sink.fail(ids, f"{type(exc).__name__}: {exc}")
    except OperationalError as write_error:
        if not _can_retry(task):
            raise
        raise task.retry(exc=write_error, countdown=countdown) from exc


def _best_of(campaign) -> orchestrate.BestOf | None:
    """Best-of-n where the campaign asks for it and a preference model is active (else
    plain sampling: there is nothing to score with)."""
    reward_model = selectors.active_preference_model() if campaign.best_of > 1 else None
    if reward_model is None:
        return None
    selection = {
        "policy": campaign.pair_policy,
        "preference_model": reward_model.name,
        "preference_model_id": reward_model.pk,
        "n": campaign.best_of,
    }
    return orchestrate.BestOf(campaign.best_of, campaign.pair_policy, reward_model.spec, selection)


def _concurrent_rows(rows, turn_id: int, holder: str) -> list:
    """Other turns' candidates waiting for the same model, sampling and campaign, claimed to
    ride in this batch (in-process only: a remote server batches on its own)."""
    if settings.LAB_GENERATION_BATCH_TURNS < 2 or settings.LAB_GENERATION_URL:
        return []
    firsts = {row.model_version_id: row for row in rows}  # a turn's rows share its sampling
    return [
        other
        for first in firsts.values()
        for other in gen_services.candidates_claim_batch(
            campaign_id=first.turn.conversation.campaign_id,
            model_version_id=first.model_version_id,
            sampling=first.sampling,
            exclude_turn_id=turn_id,
            max_turns=settings.LAB_GENERATION_BATCH_TURNS - 1,
            stale_after_s=settings.LAB_GENERATION_STALE_SECONDS,
            holder=holder,
        )
    ]


def _job(candidates) -> list[orchestrate.Row]:
    """The claimed rows as plain records for models_backend (one dialogue read per turn)."""
    turns = {c.turn_id: c.turn for c in candidates}
    dialogues = {pk: tuple(selectors.dialogue_before(turn)) for pk, turn in turns.items()}
    return [
        orchestrate.Row(
            candidate_id=c.pk,
            turn_id=c.turn_id,
            slot=c.slot,
            spec=c.model_version.spec,
            prompt=c.model_version.prompt,
            sampling=c.sampling,
            messages=dialogues[c.turn_id],
            model_id=c.model_version_id,
        )
        for c in candidates
    ]


def _assistant(spec: str, prompt: str):
    """The in-process assistant (loaded once per process), or a client of the generation
    server when ``LAB_GENERATION_URL`` is set."""
    if not settings.LAB_GENERATION_URL:
        return get_assistant(spec, prompt)
    from models_backend.remote import RemoteAssistant, RemoteConfig

    config = RemoteConfig(
        base_url=settings.LAB_GENERATION_URL,
        model=spec,
        api_key=settings.LAB_GENERATION_API_KEY or None,
    )
    return RemoteAssistant(config, prompt)


@shared_task(soft_time_limit=50, time_limit=60)
def requeue_stale_candidates() -> list[int]:
    return gen_services.candidates_requeue_stale(
        stale_after_s=settings.LAB_GENERATION_STALE_SECONDS
    )


@shared_task(soft_time_limit=50, time_limit=60)
def schedule_preference_training() -> int | None:
    """Beat: start a retraining run once enough new comparisons have come in."""
    new = selectors.judgments_since_last_training()
    if new < settings.LAB_RETRAIN_MIN_COMPARISONS:
        log.info(
            "retraining skipped: %d new judgments (need %d)",
            new,
            settings.LAB_RETRAIN_MIN_COMPARISONS,
        )
        return None
    config = train_services.default_training_config()
    return train_services.training_run_request(config=config).pk


Progress = Callable[[float, dict], None]


def _run(run_id: int, work: Callable[[Run, Progress], None]) -> None:
    """Every run's one life: claim it (a redelivered message finds it taken), do the work
    with a throttled progress writer, and end it failed with the reason on any error — a
    run never hangs as running."""
    if not run_services.run_claim(run_id=run_id):
        return
    throttle = orchestrate.Throttle(RUN_PROGRESS_EVERY_S)

    def progress(fraction: float, info: dict | None = None) -> None:
        if throttle.due(final=fraction >= 1.0):
            run_services.run_progress(run_id=run_id, progress=fraction, metrics=info)

    try:
        work(selectors.run(run_id), progress)
    except Exception as exc:
        log.exception("run %s failed", run_id)
        run_services.run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def train_preference_model(run_id: int) -> None:
    """Train a PM on every usable comparison, compare it with the active one on the same
    held-out pairs, register it, and make it active if it is at least as accurate."""
    _run(run_id, _train)


def _train(run: Run, progress: Progress) -> None:
    from models_backend.reward import load_preference_model
    from training.pairs import split_holdout
    from training.preference import PreferenceConfig, evaluate, fit

    rankings = list(selectors.preference_rankings())
    train_pairs, eval_pairs = split_holdout(rankings, every=10)
    out = _out_dir(settings.LAB_PM_DIR, run)
    defaults = train_services.default_training_config()
    config = PreferenceConfig(**{**defaults, **run.config, "out": str(out)})
    result = fit(config, train_pairs, eval_pairs, progress=progress)
    incumbent = selectors.active_preference_model()
    activate = True
    if incumbent is not None:
        pm, tokenizer = load_preference_model(incumbent.spec)
        before = evaluate(
            pm, tokenizer, eval_pairs, max_length=config.max_length, batch_size=config.batch_size
        )
        result["incumbent"] = {"name": incumbent.name, "eval_accuracy": before["accuracy"]}
        activate = result["eval_accuracy"] >= before["accuracy"]
    train_services.training_run_succeed(
        run_id=run.pk, metrics=result, model_dir=str(out), activate=activate
    )


def _out_dir(root: Path, run: Run) -> Path:
    """The timestamp keeps a reset database (ids restarting) from reusing an old folder."""
    return root / f"run-{run.pk}-{time.strftime('%Y%m%d-%H%M%S')}"


@shared_task(soft_time_limit=4 * 3600, time_limit=4 * 3600 + 300)
def evaluate_model_version(run_id: int) -> None:
    """Run the HHH evaluation of a model version and store its results."""
    _run(run_id, _evaluate)


def _evaluate(run: Run, progress: Progress) -> None:
    from training.evaluate import evaluate_hhh, limit_examples, load_tasks

    version, config = run.model_version, run.config
    tasks = limit_examples(load_tasks(config["tasks"]), config.get("limit"))
    if version.kind == version.Kind.PREFERENCE:
        from models_backend.reward import load_preference_model
        from training.hhh_pm import evaluate_hhh_pm

        pm, tokenizer = load_preference_model(version.spec)
        result = evaluate_hhh_pm(pm, tokenizer, tasks, progress=progress)
    else:
        prefix = None
        if version.prompt == "hhh":
            from models_backend.prompt import load_hhh_prompt

            prefix = load_hhh_prompt().transcript()
        lm = load_causal_lm(version.spec)  # not the process cache: freed when done
        result = evaluate_hhh(
            lm, tasks, prefix=prefix, batch_size=config["batch_size"], progress=progress
        )
    result.pop("details")
    eval_services.evaluation_succeed(run_id=run.pk, metrics=result)


@shared_task(soft_time_limit=12 * 3600, time_limit=12 * 3600 + 300)
def distill_assistant(run_id: int) -> None:
    """Context-distil an assistant (training/distill.py) and register it, not yet in use."""
    _run(run_id, _distill)


def _distill(run: Run, progress: Progress) -> None:
    from training.distill import DistillConfig, fit

    out = _out_dir(settings.LAB_ASSISTANT_DIR, run)
    result = fit(DistillConfig(**{**run.config, "out": str(out)}), progress=progress)
    distill_services.distillation_succeed(run_id=run.pk, metrics=result, model_dir=str(out))


@shared_task(soft_time_limit=2 * 3600, time_limit=2 * 3600 + 300)
def export_data(run_id: int) -> None:
    """Write an export (labeling/exports.py) to the export folder, streaming."""
    _run(run_id, _export)


def _export(run: Run, progress: Progress) -> None:
    from labeling.services.exports import export_run

    export_run(run=run, progress=progress)
