from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling import selectors
from labeling.models import CandidateResponse, Conversation, Judgment, ModelVersion, Turn
from labeling.services import conversations as svc
from labeling.services import generation, training
from models_backend.dialogue import ASSISTANT, HUMAN, Message
from tests.factories import finish_candidates, shown, top_and_rest

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(campaign, owner):
    return svc.conversation_start(campaign=campaign, worker=owner)


def test_sending_a_message_creates_two_pending_candidates_and_enqueues_generation_on_commit(
    conversation, owner, tiny_assistant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        turn = svc.turn_create(conversation=conversation, worker=owner, text="  Hello there  ")
    assert turn.human_text == "Hello there"
    assert sorted(turn.display_order) == [0, 1]
    candidates = list(turn.candidates.order_by("slot"))
    assert [c.slot for c in candidates] == [0, 1]
    assert all(c.status == CandidateResponse.Status.PENDING for c in candidates)
    assert all(c.model_version == tiny_assistant for c in candidates)
    assert candidates[0].sampling == {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 12}
    assert len(callbacks) == 1


def test_an_empty_message_is_refused_and_nothing_is_written(conversation, owner):
    with pytest.raises(ValidationError, match="Type a message"):
        svc.turn_create(conversation=conversation, worker=owner, text="   ")
    assert not Turn.objects.exists()


def test_a_second_message_before_picking_a_response_is_refused(conversation, owner):
    svc.turn_create(conversation=conversation, worker=owner, text="one")
    with pytest.raises(ValidationError, match="Pick a response"):
        svc.turn_create(conversation=conversation, worker=owner, text="two")
    assert Turn.objects.count() == 1


def test_another_worker_cannot_write_to_someone_elses_conversation(
    conversation, owner, other_worker
):
    with pytest.raises(PermissionDenied):
        svc.turn_create(conversation=conversation, worker=other_worker, text="hi")
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    with pytest.raises(PermissionDenied):
        svc.comparison_submit(turn=turn, worker=other_worker, choice="A4")


def test_a_pick_on_the_left_chooses_the_left_candidate_and_records_the_position(
    conversation, owner
):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    left, right = shown(turn)
    judgment = svc.comparison_submit(
        turn=turn, worker=owner, choice="A3", time_spent_ms=1500, comment=" nice "
    )
    assert top_and_rest(judgment) == (left, [right])
    assert [e.candidate for e in judgment.entries.order_by("position")] == [left, right]
    assert (judgment.question, judgment.task_type) == ("better", "chat")
    assert (judgment.strength, judgment.time_spent_ms, judgment.comment) == (3, 1500, "nice")
    turn.refresh_from_db()
    assert turn.chosen == left


def test_a_pick_on_the_right_at_the_weakest_level_chooses_the_right_candidate(conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    right = shown(turn)[1]
    judgment = svc.comparison_submit(turn=turn, worker=owner, choice="B1")
    assert top_and_rest(judgment)[0] == right and judgment.strength == 1


def test_a_comparison_cannot_be_submitted_twice(conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    svc.comparison_submit(turn=turn, worker=owner, choice="A4")
    with pytest.raises(ValidationError, match="already picked"):
        svc.comparison_submit(turn=turn, worker=owner, choice="B4")
    assert Judgment.objects.count() == 1


def test_the_database_refuses_a_second_judgment_by_the_same_worker(conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    svc.comparison_submit(turn=turn, worker=owner, choice="A4")
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            item=turn,
            campaign=turn.conversation.campaign,
            worker=owner,
            task_type="chat",
            question="better",
            strength=2,
        )


def test_the_database_refuses_a_second_candidate_in_one_slot(conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    with pytest.raises(IntegrityError), transaction.atomic():
        CandidateResponse.objects.create(turn=turn, slot=0)


def test_a_comparison_waits_until_both_candidates_are_done(conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    with pytest.raises(ValidationError, match="Wait until"):
        svc.comparison_submit(turn=turn, worker=owner, choice="A4")


def test_an_unknown_button_is_refused(conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    with pytest.raises(ValidationError, match="eight buttons"):
        svc.comparison_submit(turn=turn, worker=owner, choice="C9")


def test_the_conversation_continues_with_the_picked_reply(conversation, owner):
    first = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(first, texts=("hello!", "go away"))
    picked = top_and_rest(svc.comparison_submit(turn=first, worker=owner, choice="A4"))[0]
    second = svc.turn_create(conversation=conversation, worker=owner, text="how are you?")
    assert second.index == 1
    assert selectors.dialogue_before(second) == [
        Message(HUMAN, "hi"),
        Message(ASSISTANT, picked.text),
        Message(HUMAN, "how are you?"),
    ]


def test_a_conversation_stops_taking_messages_at_its_last_turn(conversation, owner, campaign):
    for i in range(campaign.max_turns):
        turn = svc.turn_create(conversation=conversation, worker=owner, text=f"message {i}")
        finish_candidates(turn)
        svc.comparison_submit(turn=turn, worker=owner, choice="A2")
    with pytest.raises(ValidationError, match="last turn"):
        svc.turn_create(conversation=conversation, worker=owner, text="one more")


def test_finishing_records_the_rating_and_refuses_out_of_range(conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    svc.comparison_submit(turn=turn, worker=owner, choice="A2")
    with pytest.raises(ValidationError, match="1 to 5"):
        svc.conversation_finish(conversation=conversation, worker=owner, rating=6)
    svc.conversation_finish(conversation=conversation, worker=owner, rating=4, comment="ok")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.rating) == (Conversation.Status.FINISHED, 4)
    with pytest.raises(ValidationError, match="finished"):
        svc.turn_create(conversation=conversation, worker=owner, text="more?")


def test_claiming_is_exclusive_until_the_claim_goes_stale(conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    assert len(generation.candidates_claim(turn_id=turn.pk, stale_after_s=120)) == 2
    assert generation.candidates_claim(turn_id=turn.pk, stale_after_s=120) == []
    CandidateResponse.objects.update(heartbeat_at=turn.created_at - timedelta(minutes=10))
    assert len(generation.candidates_claim(turn_id=turn.pk, stale_after_s=120)) == 2


def test_stale_turns_are_requeued_and_fresh_ones_are_not(
    conversation, owner, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    monkeypatch.setattr(generation, "_enqueue_generation", enqueued.append)
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    generation.candidates_claim(turn_id=turn.pk, stale_after_s=120)
    assert generation.candidates_requeue_stale(stale_after_s=120) == []
    CandidateResponse.objects.update(heartbeat_at=turn.created_at - timedelta(minutes=10))
    assert generation.candidates_requeue_stale(stale_after_s=120) == [turn.pk]
    assert enqueued[-1] == turn.pk


def test_a_failed_generation_can_be_retried_by_its_owner_only(
    conversation, owner, other_worker, django_capture_on_commit_callbacks
):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    claimed = generation.candidates_claim(turn_id=turn.pk, stale_after_s=120)
    generation.candidates_fail(candidate_ids=[c.pk for c in claimed], error="boom")
    with pytest.raises(PermissionDenied):
        generation.candidates_retry(turn=turn, worker=other_worker)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert generation.candidates_retry(turn=turn, worker=owner) == 2
    assert len(callbacks) == 1
    assert set(turn.candidates.values_list("status", flat=True)) == {"pending"}


def test_a_stalled_turn_can_be_tried_again_and_its_stuck_worker_can_no_longer_write(
    conversation, owner, django_capture_on_commit_callbacks
):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    claimed = generation.candidates_claim(turn_id=turn.pk, stale_after_s=10, holder="stuck:1")
    generation.candidate_progress(candidate_id=claimed[0].pk, text="half", holder="stuck:1")
    with pytest.raises(ValidationError, match="on their way"):  # still beating: not stalled
        generation.candidates_retry(turn=turn, worker=owner, stale_after_s=10)
    CandidateResponse.objects.update(heartbeat_at=timezone.now() - timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert generation.candidates_retry(turn=turn, worker=owner, stale_after_s=10) == 2
    assert len(callbacks) == 1
    generation.candidate_progress(candidate_id=claimed[0].pk, text="late", holder="stuck:1")
    rows = list(turn.candidates.values_list("status", "text", "holder"))
    assert rows == [("pending", "", "")] * 2


def test_pairs_leave_out_the_weakest_level_unless_asked(conversation, owner):
    strong = svc.turn_create(conversation=conversation, worker=owner, text="a")
    finish_candidates(strong)
    svc.comparison_submit(turn=strong, worker=owner, choice="A4")
    weak = svc.turn_create(conversation=conversation, worker=owner, text="b")
    finish_candidates(weak)
    svc.comparison_submit(turn=weak, worker=owner, choice="B1")
    assert len(list(selectors.preference_pairs())) == 1
    assert len(list(selectors.preference_pairs(include_weakest=True))) == 2


def test_a_better_preference_model_becomes_the_active_one(db):
    first_run = training.training_run_request(config={})
    first = training.training_run_succeed(
        run_id=first_run.pk, metrics={"eval_accuracy": 0.6}, model_dir="a", activate=True
    )
    second_run = training.training_run_request(config={})
    second = training.training_run_succeed(
        run_id=second_run.pk, metrics={"eval_accuracy": 0.7}, model_dir="b", activate=True
    )
    first.refresh_from_db()
    assert selectors.active_preference_model() == second and not first.is_active
    third_run = training.training_run_request(config={})
    training.training_run_succeed(
        run_id=third_run.pk, metrics={"eval_accuracy": 0.5}, model_dir="c", activate=False
    )
    assert selectors.active_preference_model() == second
    assert ModelVersion.objects.filter(kind="preference").count() == 3
