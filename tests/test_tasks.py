"""The Celery tasks' own logic, called in-process (the worker tests run them for real)."""

import time

import pytest

from labeling import tasks
from labeling.generation_sink import PUBLISH_EVERY_S, GenerationSink
from labeling.models import CandidateResponse
from labeling.services import conversations as svc
from labeling.services import generation
from models_backend.assistants import Assistant

pytestmark = pytest.mark.django_db


@pytest.fixture
def turn(campaign, owner):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    return svc.turn_create(conversation=conversation, worker=owner, text="Hi there")


def statuses(turn):
    return set(turn.candidates.values_list("status", flat=True))


def test_the_generation_task_fills_both_candidates_from_one_call(turn, monkeypatch):
    calls = []
    real = Assistant.generate

    def counting(self, messages, **kwargs):
        calls.append(kwargs["k"])
        return real(self, messages, **kwargs)

    monkeypatch.setattr(Assistant, "generate", counting)
    tasks.generate_candidates(turn.pk)
    assert calls == [2]  # same model in both slots: one call, one shared prefill
    assert statuses(turn) == {CandidateResponse.Status.DONE}
    seeds = set(turn.candidates.values_list("seed", flat=True))
    assert len(seeds) == 1 and None not in seeds


def test_a_second_delivery_of_the_same_message_does_nothing(turn):
    tasks.generate_candidates(turn.pk)
    before = list(turn.candidates.values_list("text", "finished_at"))
    tasks.generate_candidates(turn.pk)
    assert list(turn.candidates.values_list("text", "finished_at")) == before


def test_a_failure_while_writing_results_marks_the_candidates_failed(turn, monkeypatch):
    def broken_complete(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(generation, "candidate_complete", broken_complete)
    tasks.generate_candidates(turn.pk)
    assert statuses(turn) == {CandidateResponse.Status.FAILED}
    assert "disk full" in turn.candidates.first().error


def test_a_model_error_marks_the_candidates_failed(turn, monkeypatch):
    def broken_generate(*args, **kwargs):
        raise ValueError("prompt longer than the model's context")

    monkeypatch.setattr(Assistant, "generate", broken_generate)
    tasks.generate_candidates(turn.pk)
    assert statuses(turn) == {CandidateResponse.Status.FAILED}


def test_nul_characters_in_model_output_are_dropped_before_storing(turn):
    claimed = generation.candidates_claim(turn_id=turn.pk, stale_after_s=120)
    generation.candidate_progress(candidate_id=claimed[0].pk, text="par\x00tial")
    assert CandidateResponse.objects.get(pk=claimed[0].pk).text == "partial"
    generation.candidate_complete(
        candidate_id=claimed[0].pk,
        text="a\x00b",
        token_count=3,
        finish_reason="eos",
        seconds=0.1,
        seed=1,
    )
    assert CandidateResponse.objects.get(pk=claimed[0].pk).text == "ab"


def test_the_sink_writes_each_rows_streamed_text_at_most_once_per_interval(turn, monkeypatch):
    first, second = generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="w:1")
    writes = []
    monkeypatch.setattr(generation, "candidate_progress", lambda **kw: writes.append(kw["text"]))
    published = []

    class Publisher:  # what labeling.streams.TextPublisher hears
        def text(self, **kw):
            published.append((kw["turn_id"], kw["candidate_id"], kw["text"]))

        def end(self, **kw):
            published.append((kw["turn_id"], kw["candidate_id"], "end"))

    turns = {first.pk: turn.pk, second.pk: turn.pk}
    sink = GenerationSink(holder="w:1", every_s=60, turns=turns, publisher=Publisher())
    for text in ("a", "ab", "abc"):  # every token step reaches the sink
        sink.progress(first.pk, text)
    sink.progress(second.pk, "x")
    assert writes == ["a", "x"]  # each row's first text at once, then nothing for a minute
    # The page hears each row's first text at once, then at most every PUBLISH_EVERY_S.
    assert [p[2] for p in published] == ["a", "x"]
    time.sleep(PUBLISH_EVERY_S)
    sink.progress(first.pk, "abcd")
    assert [p[2] for p in published] == ["a", "x", "abcd"]
    sink.fail([first.pk, second.pk], "boom")
    assert published[-2:] == [(turn.pk, first.pk, "end"), (turn.pk, second.pk, "end")]


def test_scheduled_retraining_waits_for_enough_new_comparisons(db, settings):
    settings.LAB_RETRAIN_MIN_COMPARISONS = 2
    assert tasks.schedule_preference_training() is None


def test_concurrent_turns_for_the_same_model_are_generated_in_one_batch(
    turn, campaign, other_worker, monkeypatch
):
    from labeling.models import Campaign

    other_turn = svc.turn_create(
        conversation=svc.conversation_start(campaign=campaign, worker=other_worker),
        worker=other_worker,
        text="Hello from someone else",
    )
    elsewhere = Campaign.objects.create(
        name="Other",
        slug="other",
        instructions="x",
        model_a=campaign.model_a,
        model_b=campaign.model_b,
        max_new_tokens=5,
    )
    unrelated = svc.turn_create(
        conversation=svc.conversation_start(campaign=elsewhere, worker=other_worker),
        worker=other_worker,
        text="Not in this batch",
    )
    calls = []
    real = Assistant.generate_many

    def counting(self, dialogues, **kwargs):
        calls.append(kwargs["ks"])
        return real(self, dialogues, **kwargs)

    monkeypatch.setattr(Assistant, "generate_many", counting)
    tasks.generate_candidates(turn.pk)
    assert calls == [[2, 2]]
    assert statuses(turn) == statuses(other_turn) == {CandidateResponse.Status.DONE}
    assert statuses(unrelated) == {CandidateResponse.Status.PENDING}
    tasks.generate_candidates(other_turn.pk)  # its own message comes later: nothing left
    assert calls == [[2, 2]]


def test_batching_concurrent_turns_can_be_switched_off(turn, campaign, other_worker, settings):
    settings.LAB_GENERATION_BATCH_TURNS = 1
    other_turn = svc.turn_create(
        conversation=svc.conversation_start(campaign=campaign, worker=other_worker),
        worker=other_worker,
        text="Hello",
    )
    tasks.generate_candidates(turn.pk)
    assert statuses(other_turn) == {CandidateResponse.Status.PENDING}


def test_with_a_generation_server_configured_the_task_streams_from_it(turn, settings, monkeypatch):
    import threading

    from models_backend.loading import load_causal_lm
    from models_backend.serve import make_server

    server = make_server(load_causal_lm("tiny-random", device="cpu"), "", "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    host, port = server.server_address[:2]
    settings.LAB_GENERATION_URL = f"http://{host}:{port}/v1"

    def no_local_model(*args):
        raise AssertionError("the worker must not load a model itself")

    monkeypatch.setattr(tasks, "get_assistant", no_local_model)
    try:
        tasks.generate_candidates(turn.pk)
    finally:
        server.shutdown()
        server.server_close()
    for candidate in turn.candidates.all():
        assert candidate.status == CandidateResponse.Status.DONE, candidate.error
        assert candidate.token_count >= 1 and candidate.seed is not None


def test_an_unreachable_generation_server_marks_the_candidates_failed(turn, settings):
    settings.LAB_GENERATION_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    tasks.generate_candidates(turn.pk)
    for candidate in turn.candidates.all():
        assert candidate.status == CandidateResponse.Status.FAILED
        assert "RemoteGenerationError" in candidate.error
