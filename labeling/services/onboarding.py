"""Onboarding (DESIGN §8): versioned guidelines, consent and withdrawal, and the
qualification quiz. The order a worker meets these steps in is ``crowd_selectors.worker_stage``.

Quiz answers are ``QuizAnswer`` rows, never judgments: they are not data and never reach
training. Every write about one worker in one campaign first locks their ``Enrollment``
row, so a double-clicked button cannot start two attempts or answer a question twice.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from labeling import scale
from labeling.crowd_selectors import Stage, worker_stage
from labeling.item_selectors import item_display_order
from labeling.models import Campaign, Enrollment, GoldItem, Guidelines, QuizAnswer, QuizAttempt
from labeling.onboarding_selectors import quiz_needed
from labeling.services import queue
from labeling.services.gold import gold_correct
from training.questions import check_order

# ---- Guidelines


def guidelines_examples_check(*, campaign: Campaign, examples: Mapping) -> dict[str, str]:
    """The examples as stored, blanks dropped. Pair campaigns need one for each level of
    the 8-point scale (keys ``scale.CHOICES``); ranking campaigns may name theirs freely."""
    if not isinstance(examples, Mapping):
        raise ValidationError("Examples are a mapping from a level to its example.")
    cleaned = {}
    for key, text in examples.items():
        if not isinstance(key, str) or not isinstance(text, str):
            raise ValidationError("Each example is a text under the name of its level.")
        if key.strip() and text.strip():
            cleaned[key.strip()] = text.strip()
    if campaign.candidates_per_item != 2:
        return cleaned
    unknown = [key for key in cleaned if key not in scale.CHOICES]
    if unknown:
        raise ValidationError(
            f"Unknown level(s) {', '.join(unknown)}: the scale's are {', '.join(scale.CHOICES)}."
        )
    missing = [level for level in scale.CHOICES if level not in cleaned]
    if missing:
        raise ValidationError(
            f"Give an example for each level of the scale; missing: {', '.join(missing)}."
        )
    return {level: cleaned[level] for level in scale.CHOICES}


@transaction.atomic
def guidelines_publish(
    *,
    campaign: Campaign,
    text: str,
    examples: Mapping,
    consent: str = "",
    content_warning: str = "",
    by=None,
) -> Guidelines:
    """The campaign's next guidelines version. Old versions are never edited: judgments
    record the version they were made under, consents the version agreed to, and a new
    version with consent text asks every worker to agree again."""
    # Lock the campaign: two publishes at once must not both take the same next number.
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("Write the guidelines: what to judge and how.")
    examples = guidelines_examples_check(campaign=campaign, examples=examples)
    last = campaign.guideline_versions.aggregate(last=Max("version"))["last"] or 0
    return Guidelines.objects.create(
        campaign=campaign,
        version=last + 1,
        text=text.strip(),
        examples=examples,
        consent=consent.strip(),
        content_warning=content_warning.strip(),
        created_by=by,
    )


# ---- Consent and withdrawal


def _enrollment_locked(campaign: Campaign, worker) -> Enrollment:
    enrollment, _ = Enrollment.objects.get_or_create(campaign=campaign, worker=worker)
    return Enrollment.objects.select_for_update().get(pk=enrollment.pk)


@transaction.atomic
def consent_give(*, campaign: Campaign, worker, version: int) -> Enrollment:
    """The worker agrees to the consent text of guidelines ``version``, the one their page
    showed: if a newer version came out meanwhile, they read that one first."""
    enrollment = _enrollment_locked(campaign, worker)
    if enrollment.withdrawn_at is not None:
        raise ValidationError("You withdrew from this campaign: rejoin it first.")
    current = campaign.current_guidelines()
    if current is None or not current.consent.strip():
        raise ValidationError("This campaign asks for no consent.")
    if version != current.version:
        raise ValidationError(
            "The consent text changed while you were reading it: read the new version, "
            "then agree again."
        )
    enrollment.consent_version = current.version
    enrollment.consented_at = timezone.now()
    enrollment.save(update_fields=["consent_version", "consented_at"])
    return enrollment


@transaction.atomic
def worker_withdraw(*, campaign: Campaign, worker) -> Enrollment:
    """Nothing more is served to the worker in this campaign; the tasks reserved for them
    go back to the queue. Their judgments so far stay (judgments are never deleted)."""
    enrollment = _enrollment_locked(campaign, worker)
    if enrollment.withdrawn_at is not None:
        raise ValidationError("You have already withdrawn from this campaign.")
    enrollment.withdrawn_at = timezone.now()
    enrollment.save(update_fields=["withdrawn_at"])
    queue.assignments_release(campaign=campaign, worker=worker)
    return enrollment


@transaction.atomic
def worker_rejoin(*, campaign: Campaign, worker) -> Enrollment:
    """A withdrawn worker comes back: they consent again (to the current version); a quiz
    they passed still counts."""
    enrollment = _enrollment_locked(campaign, worker)
    if enrollment.withdrawn_at is None:
        raise ValidationError("You have not withdrawn from this campaign.")
    enrollment.withdrawn_at = None
    enrollment.consent_version = None
    enrollment.consented_at = None
    enrollment.save(update_fields=["withdrawn_at", "consent_version", "consented_at"])
    return enrollment


# ---- The qualification quiz

_NOT_AT_QUIZ = {
    Stage.WITHDRAWN: "You withdrew from this campaign.",
    Stage.CONSENT: "Read and agree to the consent page before the quiz.",
    Stage.NOT_QUALIFIED: "You have used every attempt at this quiz.",
    Stage.PAUSED: "You have already passed the quiz.",
    Stage.WORK: "You have already passed the quiz.",
}


def _check_at_quiz(campaign: Campaign, worker, enrollment: Enrollment) -> None:
    stage = worker_stage(campaign, worker)
    if stage == Stage.QUIZ:
        return
    if stage in (Stage.WORK, Stage.PAUSED) and enrollment.qualified_at is None:
        raise ValidationError("This campaign has no quiz.")
    raise ValidationError(_NOT_AT_QUIZ[stage])


@transaction.atomic
def quiz_start(*, campaign: Campaign, worker) -> QuizAttempt:
    """A new attempt of ``min(quiz_size, quiz items)`` questions drawn at random, or the
    worker's open attempt if they have one (a double-clicked "Start" starts one)."""
    enrollment = _enrollment_locked(campaign, worker)
    _check_at_quiz(campaign, worker, enrollment)
    attempts = campaign.quiz_attempts.filter(worker=worker)
    open_attempt = attempts.filter(passed__isnull=True).first()
    if open_attempt is not None:
        return open_attempt
    number = (attempts.aggregate(last=Max("number"))["last"] or 0) + 1
    if number > campaign.quiz_max_attempts:  # the stage says so too; a guard, not the rule
        raise ValidationError(_NOT_AT_QUIZ[Stage.NOT_QUALIFIED])
    pool = list(campaign.gold_items.filter(role=GoldItem.Role.QUIZ).values_list("pk", flat=True))
    questions = random.sample(pool, min(campaign.quiz_size, len(pool)))
    return QuizAttempt.objects.create(
        campaign=campaign, worker=worker, number=number, questions=questions
    )


@transaction.atomic
def quiz_answer(
    *,
    attempt: QuizAttempt,
    worker,
    gold: GoldItem,
    order: Sequence[Sequence[int]],
    strength: int | None = None,
    shown_ids: Sequence[int] | None = None,
    time_spent_ms: int | None = None,
) -> QuizAnswer:
    """The worker's answer to the next question of their open attempt, as a task's: groups
    of display positions top first, and for a pair the strength on the 8-point scale.
    ``shown_ids``: the candidate ids the page showed, A first. The last answer ends the
    attempt: passed when the share right reaches the pass mark, and then the worker is
    qualified."""
    campaign = attempt.campaign
    enrollment = _enrollment_locked(campaign, worker)
    attempt = QuizAttempt.objects.select_for_update().get(pk=attempt.pk)
    if attempt.worker_id != worker.pk:
        raise PermissionDenied("This is not your quiz.")
    if attempt.passed is not None:
        raise ValidationError("This quiz attempt is over.")
    _check_at_quiz(campaign, worker, enrollment)
    answered = list(attempt.answers.values_list("gold_id", flat=True))
    if gold.pk in answered:
        raise ValidationError("You have already answered this question.")
    if gold.pk not in attempt.questions:
        raise ValidationError("This question is not part of your quiz.")
    if attempt.questions[len(answered)] != gold.pk:
        raise ValidationError("Answer the questions in order: this is not the next one.")
    shown_slots, shown_pks = _shown(gold, worker)
    if shown_ids is not None and list(shown_ids) != shown_pks:
        raise ValidationError("This page is out of date: reload it and answer again.")
    order, strength = _checked_answer(campaign, len(shown_slots), order, strength)
    answer = QuizAnswer.objects.create(
        attempt=attempt,
        gold=gold,
        shown=shown_slots,
        order=order,
        strength=strength,
        correct=gold_correct(gold=gold, shown_slots=shown_slots, order=order),
        time_spent_ms=time_spent_ms,
    )
    attempt.correct += answer.correct
    if len(answered) + 1 == len(attempt.questions):
        _finish(attempt, enrollment)
    attempt.save(update_fields=["correct", "passed", "finished_at"])
    return answer


def _shown(gold: GoldItem, worker) -> tuple[list[int], list[int]]:
    """(slots, candidate ids) in the order this worker sees the gold item, A first: the
    order a task page would show it in (``item_selectors.item_display_order``)."""
    by_slot = {c.slot: c.pk for c in gold.item.candidates.all()}
    slots = item_display_order(gold.item_id, worker.pk, len(by_slot))
    return slots, [by_slot[slot] for slot in slots]


def _checked_answer(
    campaign: Campaign, k: int, order, strength
) -> tuple[list[list[int]], int | None]:
    try:
        order = check_order(order, k, ties=campaign.allow_ties)
    except ValueError as exc:
        raise ValidationError(f"Bad answer: {exc}.") from None
    if k == 2 and strength not in scale.STRENGTHS:
        raise ValidationError("Pick one of the eight buttons.")
    return order, strength if k == 2 else None


def _finish(attempt: QuizAttempt, enrollment: Enrollment) -> None:
    campaign = attempt.campaign
    now = timezone.now()
    attempt.passed = attempt.correct >= quiz_needed(campaign, len(attempt.questions))
    attempt.finished_at = now
    if attempt.passed:
        enrollment.qualified_at = now
        enrollment.save(update_fields=["qualified_at"])
