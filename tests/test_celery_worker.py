"""A real Celery worker process, on the configured broker (Redis in CI, the folder broker
by default), against the test database."""

from pathlib import Path

import pytest

from labeling.models import CandidateResponse, ModelVersion, Run
from labeling.services import conversations as svc
from labeling.services import training as train_services
from tests.conftest import wait_for
from tests.factories import finish_candidates

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_real_worker_generates_both_candidates_with_tiny_random(
    celery_worker_process, campaign, owner
):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    turn = svc.turn_create(conversation=conversation, worker=owner, text="Hello, assistant")

    def all_done():
        statuses = set(turn.candidates.values_list("status", flat=True))
        assert CandidateResponse.Status.FAILED not in statuses, list(turn.candidates.values())
        return statuses == {CandidateResponse.Status.DONE}

    wait_for(all_done, timeout=180, proc=celery_worker_process, what="two generated candidates")
    for candidate in turn.candidates.all():
        assert 1 <= candidate.token_count <= campaign.max_new_tokens
        assert candidate.generation_seconds > 0
        assert candidate.seed is not None
        assert candidate.finish_reason in {"stop", "eos", "length"}
        assert candidate.sampling["max_new_tokens"] == campaign.max_new_tokens


def test_a_real_worker_trains_and_registers_a_preference_model(
    celery_worker_process, campaign, owner, tmp_path, settings
):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    for i in range(3):
        turn = svc.turn_create(conversation=conversation, worker=owner, text=f"question {i}")
        finish_candidates(turn, texts=(f"good answer {i}", f"bad answer {i}"))
        svc.comparison_submit(turn=turn, worker=owner, choice="A4")
    run = train_services.training_run_request(
        config={"model": "tiny-random", "max_length": 64, "batch_size": 2, "lr": 1e-3}
    )

    def finished():
        run.refresh_from_db()
        return run.status in {Run.Status.SUCCEEDED, Run.Status.FAILED}

    wait_for(finished, timeout=180, proc=celery_worker_process, what="the training run")
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.progress == 1.0
    version = ModelVersion.objects.get(training_run=run)
    assert version.kind == ModelVersion.Kind.PREFERENCE and version.is_active
    assert Path(version.spec).is_dir()
    assert 0.0 <= version.metrics["eval_accuracy"] <= 1.0
    assert version.metrics["train_pairs"] == 2 and version.metrics["eval_pairs"] == 1
