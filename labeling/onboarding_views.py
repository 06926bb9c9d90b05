"""Consent, withdrawal and the qualification quiz: parse, call one service, render.

Each page answers whatever step the worker is at (``crowd_selectors.worker_stage``): the
consent page of a withdrawn worker says so and offers to rejoin, the quiz page of a worker
who used every attempt says they did not qualify, and a worker past the step is sent on
to their next one (the task queue at the end). Plain forms and redirects: no JavaScript
needed; the quiz shows one question per page, then whether the answer was right and why.
"""

from __future__ import annotations

import time

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from labeling import onboarding_selectors as selectors
from labeling import scale
from labeling.crowd_selectors import Stage, enrollment, worker_stage
from labeling.forms import time_spent_ms
from labeling.item_forms import rank_cards
from labeling.onboarding_forms import ConsentForm, QuizPairForm, QuizRankingForm
from labeling.services import onboarding as services

CONSENT_PAGE = "labeling/consent.html"
QUIZ_PAGE = "labeling/quiz.html"


@login_required
@require_http_methods(["GET", "POST"])
def consent(request, slug):
    campaign = selectors.get_campaign_for_worker(request.user, slug)
    if request.method == "GET":
        stage = worker_stage(campaign, request.user)
        if stage not in (Stage.WITHDRAWN, Stage.CONSENT):
            return redirect(selectors.next_step_url(campaign, request.user))
        return _consent_page(request, campaign)
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            if form.cleaned_data["action"] == "rejoin":
                services.worker_rejoin(campaign=campaign, worker=request.user)
            else:
                version = form.cleaned_data["version"]
                services.consent_give(campaign=campaign, worker=request.user, version=version)
            return redirect(selectors.next_step_url(campaign, request.user))
        except ValidationError as exc:
            form.add_error(None, exc)
    return _consent_page(request, campaign, errors=_errors(form), status=400)


@login_required
@require_http_methods(["GET", "POST"])
def withdraw(request, slug):
    """GET asks to confirm; POST withdraws and shows the consent page, which says so."""
    campaign = selectors.get_campaign_for_worker(request.user, slug)
    if worker_stage(campaign, request.user) == Stage.WITHDRAWN:
        return redirect("labeling:consent", slug=campaign.slug)
    if request.method == "GET":
        return _consent_page(request, campaign, mode="withdraw")
    try:
        services.worker_withdraw(campaign=campaign, worker=request.user)
    except ValidationError as exc:
        return _consent_page(request, campaign, mode="withdraw", errors=exc.messages, status=400)
    return redirect("labeling:consent", slug=campaign.slug)


def _consent_page(request, campaign, *, mode=None, errors=(), status=200):
    stage = worker_stage(campaign, request.user)
    context = {
        "campaign": campaign,
        "question": scale.QUESTION_TEXT[campaign.question],
        "mode": mode or ("withdrawn" if stage == Stage.WITHDRAWN else "consent"),
        "guidelines": campaign.current_guidelines(),
        "enrollment": enrollment(campaign, request.user),
        "errors": list(errors),
    }
    return render(request, CONSENT_PAGE, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def quiz(request, slug):
    campaign = selectors.get_campaign_for_worker(request.user, slug)
    if request.method == "GET":
        feedback_on = _int(request.GET.get("answer")) or None  # not a number: no feedback
        if feedback_on is None:
            stage = worker_stage(campaign, request.user)
            if stage not in (Stage.QUIZ, Stage.NOT_QUALIFIED):
                return redirect(selectors.next_step_url(campaign, request.user))
        return _quiz_page(request, campaign, feedback_on=feedback_on)
    if request.POST.get("action") == "start":
        try:
            services.quiz_start(campaign=campaign, worker=request.user)
        except ValidationError as exc:
            return _quiz_page(request, campaign, errors=exc.messages, status=400)
        return redirect("labeling:quiz", slug=campaign.slug)
    return _quiz_answer(request, campaign)


def _quiz_answer(request, campaign):
    attempt = selectors.get_attempt_for_worker(
        request.user, campaign, _int(request.POST.get("attempt"))
    )
    gold = selectors.get_quiz_gold(campaign, _int(request.POST.get("gold")))
    k = gold.item.candidates.count()
    form = QuizPairForm(request.POST) if k == 2 else QuizRankingForm(request.POST, k=k)
    if form.is_valid():
        order, strength = form.answer()
        try:
            answer = services.quiz_answer(
                attempt=attempt,
                worker=request.user,
                gold=gold,
                order=order,
                strength=strength,
                shown_ids=form.cleaned_data["shown"],
                time_spent_ms=time_spent_ms(form.cleaned_data["shown_at"]),
            )
            return redirect(f"{request.path}?answer={answer.pk}")
        except ValidationError as exc:
            form.add_error(None, exc)
    return _quiz_page(request, campaign, errors=_errors(form), posted=form, status=400)


def _int(value) -> int:
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    return int(value) if isinstance(value, str) and value.isdecimal() else 0


def _errors(form) -> list[str]:
    return [error for errors in form.errors.values() for error in errors]


def _quiz_page(request, campaign, *, feedback_on=None, errors=(), posted=None, status=200):
    page = selectors.quiz_page(campaign, request.user, feedback_on=feedback_on)
    question = page.question
    cards = []
    if question is not None and len(question.view.responses) > 2:
        same = posted is not None and posted.data.get("gold") == str(question.gold.pk)
        cards = rank_cards(question.view.responses, posted.data if same else {})
    context = {
        "campaign": campaign,
        "page": page,
        "question": scale.QUESTION_TEXT[campaign.question],
        "scale_buttons": scale.buttons(campaign.question),
        "cards": cards,
        "places": range(1, len(cards) + 1),
        "errors": list(errors),
        "shown_at": int(time.time() * 1000),
    }
    return render(request, QUIZ_PAGE, context, status=status)
