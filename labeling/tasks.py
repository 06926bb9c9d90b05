"""Celery tasks: thin. Load by id, claim the work, call models_backend/training, write back
through services. Queues: "generate" and "train" (one model per process: prefetch 1,
concurrency 1), "default" for bookkeeping."""

from __future__ import annotations

import logging
import secrets
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError

from labeling import selectors
from labeling.services import evaluation as eval_services
from labeling.services import generation as gen_services
from labeling.services import training as train_services
from models_backend.assistants import get_assistant
from models_backend.best_of_n import Scored, choose, get_scorer
from models_backend.generation import SEED_BITS, SamplingConfig
from models_backend.loading import load_causal_lm

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.4  # how often streamed text is written to the database
SAMPLING_KEYS = {"max_new_tokens", "temperature", "top_p", "stop"}  # the seed is drawn per call


@shared_task(
    acks_late=True,  # idempotent: a redelivered message regenerates unclaimed rows only
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),  # the database went away for a moment
    retry_backoff=2,
    max_retries=3,
    soft_time_limit=300,
    time_limit=330,
)
def generate_candidates(turn_id: int) -> None:
    groups = selectors.candidate_groups(turn_id)  # {(spec, prompt): [slot, …]}, waiting ones
    if not groups:
        return
    # Load before claiming: the first load of the default model converts it (tens of
    # seconds), and a claimed row must show a heartbeat soon or it is taken for lost.
    assistants = {key: _assistant(*key) for key in groups}
    claimed = gen_services.candidates_claim(
        turn_id=turn_id, stale_after_s=settings.LAB_GENERATION_STALE_SECONDS
    )
    if not claimed:
        return
    campaign = claimed[0].turn.conversation.campaign
    reward_model = selectors.active_preference_model() if campaign.best_of > 1 else None
    if reward_model is not None:
        messages = selectors.dialogue_before(claimed[0].turn)
        _generate_best_of(assistants, messages, claimed, campaign, reward_model)
        return
    for key, assistant in assistants.items():
        rows = [c for c in claimed if _assistant_key(c) == key]
        if rows:
            _generate_rows(assistant, rows + _concurrent_rows(assistant, rows[0], turn_id))


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


def _assistant_key(candidate) -> tuple[str, str]:
    return candidate.model_version.spec, candidate.model_version.prompt


def _sampling(candidate) -> SamplingConfig:
    stored = {k: v for k, v in candidate.sampling.items() if k in SAMPLING_KEYS}
    return SamplingConfig(**stored, seed=secrets.randbits(SEED_BITS))


def _generate_rows(assistant, rows) -> None:
    """Generate ``rows`` (one or several turns' candidates from one assistant) in one batch."""
    ids = [c.pk for c in rows]
    sampling = _sampling(rows[0])
    turns = sorted({c.turn_id for c in rows})
    per_turn = [[c for c in rows if c.turn_id == t] for t in turns]
    dialogues = [selectors.dialogue_before(group[0].turn) for group in per_turn]
    order = [c.pk for group in per_turn for c in group]  # row order of the flattened results
    last_write = 0.0

    def on_progress(texts: list[list[str]]) -> None:
        nonlocal last_write
        if time.monotonic() - last_write < PROGRESS_EVERY_S:
            return
        last_write = time.monotonic()
        for pk, text in zip(order, [t for group in texts for t in group], strict=True):
            gen_services.candidate_progress(candidate_id=pk, text=text)

    try:
        if len(per_turn) == 1:
            results = [
                assistant.generate(
                    dialogues[0],
                    k=len(rows),
                    sampling=sampling,
                    on_progress=lambda texts: on_progress([texts]),
                )
            ]
        else:
            ks = [len(group) for group in per_turn]
            results = assistant.generate_many(
                dialogues, ks=ks, sampling=sampling, on_progress=on_progress
            )
        for pk, result in zip(order, [r for group in results for r in group], strict=True):
            gen_services.candidate_complete(
                candidate_id=pk,
                text=result.text,
                token_count=result.token_count,
                finish_reason=result.finish_reason,
                seconds=result.seconds,
                seed=result.seed,
            )
    except SoftTimeLimitExceeded:
        gen_services.candidates_fail(candidate_ids=ids, error="Generation took too long.")
        raise
    except Exception as exc:  # a model or write error must reach the page, not a spinner
        log.exception("generation failed for candidates %s", ids)
        gen_services.candidates_fail(candidate_ids=ids, error=f"{type(exc).__name__}: {exc}")


def _concurrent_rows(assistant, first, turn_id: int) -> list:
    """Other turns' candidates waiting for the same model and campaign, claimed to ride in
    this batch (in-process assistants only; a remote server batches on its own)."""
    if settings.LAB_GENERATION_BATCH_TURNS < 2 or not hasattr(assistant, "generate_many"):
        return []
    return gen_services.candidates_claim_batch(
        campaign_id=first.turn.conversation.campaign_id,
        model_version_id=first.model_version_id,
        sampling=first.sampling,
        exclude_turn_id=turn_id,
        max_turns=settings.LAB_GENERATION_BATCH_TURNS - 1,
        stale_after_s=settings.LAB_GENERATION_STALE_SECONDS,
    )


def _generate_best_of(assistants, messages, rows, campaign, reward_model) -> None:
    """n samples per slot (one shared prefill per assistant), scored by the active PM; the
    campaign's pair policy picks what each slot shows (``models_backend.best_of_n``)."""
    ids, n = [c.pk for c in rows], campaign.best_of
    by_slot = {c.slot: c for c in rows}
    status = f"Sampling {n} responses and choosing the best…"
    try:
        scorer = get_scorer(reward_model.spec)
        selection = {
            "policy": campaign.pair_policy,
            "preference_model": reward_model.name,
            "preference_model_id": reward_model.pk,
            "n": n,
        }
        samples: dict[int, list[Scored]] = {}
        for key, assistant in assistants.items():
            mine = [c for c in rows if _assistant_key(c) == key]
            if not mine:
                continue
            for c in mine:  # a heartbeat, so the rows are not taken for lost while sampling
                gen_services.candidate_progress(candidate_id=c.pk, text=status)
            out = assistant.generate(messages, k=n * len(mine), sampling=_sampling(mine[0]))
            for sample in out:  # score the text that is stored (NUL dropped), not another
                sample.text = gen_services.model_text(sample.text)
            for i, c in enumerate(mine):
                batch = out[i * n : (i + 1) * n]
                rewards = scorer(messages, [b.text for b in batch])
                samples[c.slot] = [
                    Scored(b, c.slot, r) for b, r in zip(batch, rewards, strict=True)
                ]
        shown = choose(campaign.pair_policy, samples)
        kept = {id(s) for s in shown.values()}
        for slot, scored in shown.items():
            result = scored.candidate
            alternatives = [
                {"text": s.candidate.text, "reward": s.reward, "seed": s.candidate.seed}
                for s in samples[slot]
                if id(s) not in kept
            ]
            gen_services.candidate_complete(
                candidate_id=by_slot[slot].pk,
                text=result.text,
                token_count=result.token_count,
                finish_reason=result.finish_reason,
                seconds=result.seconds,
                seed=result.seed,
                best_of={
                    "reward": scored.reward,
                    "alternatives": alternatives,
                    "model_version_id": by_slot[scored.source].model_version_id,
                    "selection": selection,
                },
            )
    except SoftTimeLimitExceeded:
        gen_services.candidates_fail(candidate_ids=ids, error="Generation took too long.")
        raise
    except Exception as exc:  # a model or write error must reach the page, not a spinner
        log.exception("best-of-%d generation failed for candidates %s", n, ids)
        gen_services.candidates_fail(candidate_ids=ids, error=f"{type(exc).__name__}: {exc}")


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


@shared_task(soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def train_preference_model(run_id: int) -> None:
    """Train a PM on every usable comparison, compare it with the active one on the same
    held-out pairs, register it, and make it active if it is at least as accurate."""
    if not train_services.training_run_claim(run_id=run_id):
        return  # already taken (a redelivered message) or cancelled
    try:
        _train(run_id)
    except Exception as exc:  # the run must end as failed with the reason, never hang
        log.exception("training run %s failed", run_id)
        train_services.training_run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")


def _train(run_id: int) -> None:
    from models_backend.reward import load_preference_model
    from training.pairs import split_holdout
    from training.preference import PreferenceConfig, evaluate, fit

    run = selectors.training_run(run_id)
    rankings = list(selectors.preference_rankings())
    train_pairs, eval_pairs = split_holdout(rankings, every=10)
    # The timestamp keeps a reset database (ids restarting) from reusing an old directory.
    out = settings.LAB_PM_DIR / f"run-{run_id}-{time.strftime('%Y%m%d-%H%M%S')}"
    defaults = train_services.default_training_config()
    config = PreferenceConfig(**{**defaults, **run.config, "out": str(out)})
    last_write = 0.0

    def progress(fraction: float, info: dict) -> None:
        nonlocal last_write
        if time.monotonic() - last_write >= 2.0 or fraction >= 1.0:
            last_write = time.monotonic()
            train_services.training_run_progress(run_id=run_id, progress=fraction, metrics=info)

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
        run_id=run_id, metrics=result, model_dir=str(out), activate=activate
    )


@shared_task(soft_time_limit=4 * 3600, time_limit=4 * 3600 + 300)
def evaluate_model_version(run_id: int) -> None:
    """Run the HHH evaluation of a model version and store its results."""
    if not eval_services.evaluation_claim(run_id=run_id):
        return  # already taken (a redelivered message)
    try:
        _evaluate(run_id)
    except Exception as exc:  # the run must end as failed with the reason, never hang
        log.exception("evaluation run %s failed", run_id)
        eval_services.evaluation_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")


def _evaluate(run_id: int) -> None:
    from training.evaluate import evaluate_hhh, limit_examples, load_tasks

    run = selectors.evaluation_run(run_id)
    version, config = run.model_version, run.config
    tasks = limit_examples(load_tasks(config["tasks"]), config.get("limit"))
    last_write = 0.0

    def progress(fraction: float, info: dict) -> None:
        nonlocal last_write
        if time.monotonic() - last_write >= 2.0 or fraction >= 1.0:
            last_write = time.monotonic()
            eval_services.evaluation_progress(run_id=run_id, progress=fraction)

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
    eval_services.evaluation_succeed(run_id=run_id, metrics=result)
