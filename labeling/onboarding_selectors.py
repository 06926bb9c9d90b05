"""Reads for the onboarding pages (labeling/onboarding_views.py): the guidelines with their
examples, where a worker goes next, and what the quiz page shows."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse

from labeling import scale
from labeling.crowd_selectors import Stage, worker_stage
from labeling.gate import STAGE_PAGES
from labeling.item_selectors import ItemView, item_view
from labeling.models import Campaign, GoldItem, Guidelines, QuizAnswer, QuizAttempt
from labeling.selectors import position_letter


def get_campaign_for_worker(user, slug: str) -> Campaign:
    if not user.is_authenticated:
        raise Http404
    return get_object_or_404(
        Campaign.objects.select_related("source_campaign"), slug=slug, is_active=True
    )


def next_step_url(campaign: Campaign, worker) -> str:
    """The page of the worker's next step; the task queue once they have none left."""
    page = STAGE_PAGES.get(worker_stage(campaign, worker), "labeling:task_next")
    return reverse(page, kwargs={"slug": campaign.slug})


# ---- Guidelines


@dataclass(frozen=True)
class Example:
    level: str  # "A4" on the 8-point scale, or a ranking campaign's own name for it
    label: str  # what the page calls it: "A is much better"
    text: str  # markdown


@dataclass(frozen=True)
class GuidelinesView:
    guidelines: Guidelines | None  # None before the first version: the instructions stand in
    examples: list[Example]  # pairs: in the order of the scale's buttons, left to right


def guidelines_view(campaign: Campaign) -> GuidelinesView:
    current = campaign.current_guidelines()
    if current is None:
        return GuidelinesView(None, [])
    if campaign.candidates_per_item != 2:
        examples = [Example(key, key, text) for key, text in current.examples.items()]
        return GuidelinesView(current, examples)
    examples = [
        Example(button.value, button.label, current.examples[button.value])
        for button in scale.buttons(campaign.question)
        if current.examples.get(button.value)
    ]
    return GuidelinesView(current, examples)


# ---- The quiz


def quiz_needed(campaign: Campaign, questions: int) -> int:
    """Right answers an attempt of ``questions`` needs to pass: the pass mark's share,
    rounded up (a small tolerance: 4 of 5 meets 0.8 however the float rounds)."""
    return math.ceil(campaign.quiz_pass_mark * questions - 1e-9)


@dataclass(frozen=True)
class Question:
    gold: GoldItem
    number: int  # 1 for the first
    view: ItemView  # the context and the responses in this worker's order


@dataclass(frozen=True)
class Feedback:
    answer: QuizAnswer
    expected: list[str]  # letters (as shown to this worker) of the gold answer's first group
    explanation: str


@dataclass(frozen=True)
class QuizPage:
    """What the quiz page shows: one of a question, the feedback on an answer, or (with
    neither) the start page or the "not qualified" page. ``last`` is the latest finished
    attempt, whose result the start and feedback pages report."""

    stage: Stage
    open: QuizAttempt | None
    last: QuizAttempt | None
    question: Question | None
    feedback: Feedback | None
    size: int  # questions per attempt
    needed: int  # right answers an attempt of ``size`` questions needs to pass
    attempts_left: int

    @property
    def total(self) -> int:
        attempt = self.open or self.last
        return len(attempt.questions) if attempt else self.size


def quiz_page(campaign: Campaign, worker, *, feedback_on: int | None = None) -> QuizPage:
    """``feedback_on``: the id of the worker's answer whose result and explanation to show."""
    attempts = list(campaign.quiz_attempts.filter(worker=worker).order_by("number"))
    finished = [a for a in attempts if a.passed is not None]
    open_attempt = next((a for a in attempts if a.passed is None), None)
    feedback = _feedback(campaign, worker, feedback_on) if feedback_on is not None else None
    question = None
    if feedback is None and open_attempt is not None:
        question = _next_question(open_attempt, worker)
    size = min(campaign.quiz_size, campaign.gold_items.filter(role=GoldItem.Role.QUIZ).count())
    return QuizPage(
        stage=worker_stage(campaign, worker),
        open=open_attempt,
        last=finished[-1] if finished else None,
        question=question,
        feedback=feedback,
        size=size,
        needed=quiz_needed(campaign, size),
        attempts_left=max(campaign.quiz_max_attempts - len(attempts), 0),
    )


def _next_question(attempt: QuizAttempt, worker) -> Question | None:
    answered = attempt.answers.count()
    if answered >= len(attempt.questions):
        return None
    gold = GoldItem.objects.select_related("item__conversation").get(pk=attempt.questions[answered])
    return Question(gold=gold, number=answered + 1, view=item_view(gold.item, worker))


def _feedback(campaign: Campaign, worker, answer_id: int) -> Feedback:
    try:
        answer = QuizAnswer.objects.select_related("gold", "attempt").get(
            pk=answer_id, attempt__worker=worker, attempt__campaign=campaign
        )
    except QuizAnswer.DoesNotExist:
        raise Http404 from None
    first = set(answer.gold.answer[0])
    expected = [position_letter(p) for p, slot in enumerate(answer.shown) if slot in first]
    return Feedback(answer=answer, expected=expected, explanation=answer.gold.explanation)


def get_attempt_for_worker(worker, campaign: Campaign, pk: int) -> QuizAttempt:
    return get_object_or_404(
        QuizAttempt.objects.select_related("campaign"), pk=pk, campaign=campaign, worker=worker
    )


def get_quiz_gold(campaign: Campaign, pk: int) -> GoldItem:
    """A quiz item of ``campaign`` (the service says whether it is the one to answer now)."""
    return get_object_or_404(
        GoldItem.objects.select_related("item"), pk=pk, campaign=campaign, role=GoldItem.Role.QUIZ
    )
