"""Onboarding: versioned guidelines with an example per level, consent (again after a new
version), withdrawal and rejoining, and the qualification quiz with its attempts."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from labeling import scale
from labeling.crowd_selectors import Stage, worker_stage
from labeling.item_selectors import item_display_order
from labeling.models import Enrollment, Guidelines, Judgment, QuizAnswer, QuizAttempt
from labeling.services import conversations as chat
from labeling.services import onboarding, queue
from labeling.services.gold import gold_item_create
from models_backend.dialogue import HUMAN, Message
from tests.factories import finish_candidates, ranking_campaign
from tests.test_views import PageMarkup

pytestmark = pytest.mark.django_db

EXAMPLES = {level: f"Example of **{level}**." for level in scale.CHOICES}


def publish(campaign, by=None, **kwargs):
    fields = {"text": "Judge *helpfulness*.", "examples": EXAMPLES, "consent": "", **kwargs}
    return onboarding.guidelines_publish(campaign=campaign, by=by, **fields)


def add_quiz(campaign, n=2, *, size=2, pass_mark=1.0, attempts=2):
    campaign.quiz_size, campaign.quiz_pass_mark, campaign.quiz_max_attempts = (
        size,
        pass_mark,
        attempts,
    )
    campaign.save()
    k = campaign.candidates_per_item
    return [
        gold_item_create(
            campaign=campaign,
            role="quiz",
            context=[Message(HUMAN, f"Question {i}?")],
            responses=[f"right {i}", *(f"wrong {i}.{j}" for j in range(1, k))],
            answer=0,
            explanation=f"Explanation {i}: the first is right.",
        )
        for i in range(n)
    ]


def choice(gold, worker, *, right: bool) -> str:
    """The scale button that picks the gold answer (or the other response), as shown."""
    shown = item_display_order(gold.item_id, worker.pk, 2)
    position = shown.index(0) if right else shown.index(1)
    return f"{scale.POSITIONS[position]}3"


def shown_ids(gold, worker) -> str:
    by_slot = {c.slot: c.pk for c in gold.item.candidates.all()}
    k = len(by_slot)
    return ",".join(str(by_slot[s]) for s in item_display_order(gold.item_id, worker.pk, k))


def answer_form(attempt, gold, worker, *, right: bool) -> dict:
    return {
        "action": "answer",
        "attempt": attempt.pk,
        "gold": gold.pk,
        "shown": shown_ids(gold, worker),
        "choice": choice(gold, worker, right=right),
    }


def url(name, campaign):
    return reverse(f"labeling:{name}", args=[campaign.slug])


# ---- Guidelines


def test_a_judgment_records_guideline_version_v2_after_publishing_twice(campaign, owner):
    publish(campaign)
    second = publish(campaign, text="Judge helpfulness, then honesty.")
    assert (second.version, campaign.guideline_version) == (2, "v2")
    conversation = chat.conversation_start(campaign=campaign, worker=owner)
    turn = chat.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    judgment = chat.comparison_submit(turn=turn, worker=owner, choice="A2")
    assert judgment.guideline_version == "v2"
    assert Guidelines.objects.get(version=1).text == "Judge *helpfulness*."  # never edited


def test_a_pair_campaigns_guidelines_without_all_8_examples_are_refused(campaign):
    partial = {level: text for level, text in EXAMPLES.items() if level not in ("A1", "B3")}
    with pytest.raises(ValidationError, match="missing: A1, B3"):
        publish(campaign, examples=partial)
    with pytest.raises(ValidationError, match="Unknown level"):
        publish(campaign, examples={**EXAMPLES, "C4": "?"})
    assert not Guidelines.objects.exists()


def test_a_ranking_campaigns_examples_are_optional_and_named_freely(tiny_assistant):
    ranking = ranking_campaign(tiny_assistant, k=3)
    assert publish(ranking, examples={}).examples == {}
    assert publish(ranking, examples={"A clear best": "…"}).examples == {"A clear best": "…"}


def test_the_guidelines_show_the_markdown_and_an_example_for_each_of_the_8_levels(
    client, campaign, owner
):
    publish(campaign, consent="You agree to **judge**.")
    client.force_login(owner)
    page = client.get(url("consent", campaign)).content.decode()
    assert "Judge <em>helpfulness</em>." in page and "Guidelines v1" in page
    for button in scale.buttons(campaign.question):
        assert f"<summary>{button.label}</summary>" in page
        assert f"Example of <strong>{button.value}</strong>." in page
    assert page.index("A is much better") < page.index("B is much better")


def test_the_task_page_folds_the_examples_and_offers_to_withdraw(client, campaign, owner):
    publish(campaign)
    conversation = chat.conversation_start(campaign=campaign, worker=owner)
    client.force_login(owner)
    page = client.get(reverse("labeling:conversation", args=[conversation.pk])).content
    page = page.decode()
    assert '<details class="examples">' in page and "About the same, B" in page
    assert url("withdraw", campaign) in page and "Withdraw from this campaign" in page


def test_the_guidelines_admin_publishes_the_next_version_prefilled_from_the_last(
    client, researcher, campaign
):
    first = publish(campaign, consent="Old consent.")
    client.force_login(researcher)
    add = reverse("admin:labeling_guidelines_add")
    form = client.get(f"{add}?from={first.pk}").content.decode()
    assert "Judge *helpfulness*." in form and "Example of **B2**." in form
    data = {"campaign": campaign.pk, "text": "New text.", "consent": "New consent."}
    data |= {f"example_{level}": text for level, text in EXAMPLES.items()}
    response = client.post(add, data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert list(campaign.guideline_versions.values_list("version", "text")) == [
        (2, "New text."),
        (1, "Judge *helpfulness*."),
    ]
    assert campaign.current_guidelines().created_by == researcher
    data.pop("example_A4")
    refused = client.post(add, data)
    assert refused.status_code == 200 and "missing: A4" in refused.content.decode()
    change = reverse("admin:labeling_guidelines_change", args=[first.pk])
    assert client.post(change, {**data, "text": "Edited."}).status_code == 403
    assert Guidelines.objects.get(pk=first.pk).text == "Judge *helpfulness*."


# ---- Consent and withdrawal


def test_consent_is_asked_when_the_guidelines_have_consent_text_and_again_after_a_new_version(
    client, campaign, owner
):
    publish(campaign)  # no consent text: no consent step
    assert worker_stage(campaign, owner) == Stage.WORK
    publish(campaign, consent="Your answers are used to train models.")
    assert worker_stage(campaign, owner) == Stage.CONSENT
    client.force_login(owner)
    page = client.get(url("consent", campaign)).content.decode()
    assert "Your answers are used to train models." in page and "I agree" in page
    response = client.post(url("consent", campaign), {"action": "agree", "version": 2})
    assert response.status_code == 302 and response.url == url("task_next", campaign)
    enrollment = Enrollment.objects.get(worker=owner)
    assert enrollment.consent_version == 2 and enrollment.consented_at is not None
    assert client.get(url("consent", campaign)).url == url("task_next", campaign)

    publish(campaign, consent="Your answers are used to train and evaluate models.")
    assert worker_stage(campaign, owner) == Stage.CONSENT
    stale = client.post(url("consent", campaign), {"action": "agree", "version": 2})
    assert stale.status_code == 400 and "changed while you were reading" in stale.content.decode()
    client.post(url("consent", campaign), {"action": "agree", "version": 3})
    assert worker_stage(campaign, owner) == Stage.WORK


def test_a_red_team_consent_page_says_plainly_what_the_work_involves(
    client, red_team_campaign, owner
):
    examples = EXAMPLES
    publish(red_team_campaign, examples=examples, consent="OK?", content_warning="Violence.")
    client.force_login(owner)
    page = client.get(url("consent", red_team_campaign)).content.decode()
    assert "What this work involves" in page and "read harmful text" in page
    assert "Content warning" in page and "Violence." in page
    assert "A is much more harmful" in page  # the examples' levels under its question


def test_a_worker_who_withdraws_is_served_nothing_and_rejoining_asks_for_consent_again(
    client, campaign, owner, monkeypatch
):
    released = []
    monkeypatch.setattr(queue, "assignments_release", lambda **kw: released.append(kw))
    publish(campaign, consent="Consent.")
    client.force_login(owner)
    client.post(url("consent", campaign), {"action": "agree", "version": 1})
    assert "Withdraw from" in client.get(url("withdraw", campaign)).content.decode()
    response = client.post(url("withdraw", campaign))
    assert response.url == url("consent", campaign)
    assert released == [{"campaign": campaign, "worker": owner}]
    assert worker_stage(campaign, owner) == Stage.WITHDRAWN
    page = client.get(url("consent", campaign)).content.decode()
    assert "You withdrew from this campaign" in page and "Rejoin this campaign" in page
    assert client.get(url("quiz", campaign)).url == url("consent", campaign)
    with pytest.raises(ValidationError, match="already withdrawn"):
        onboarding.worker_withdraw(campaign=campaign, worker=owner)

    response = client.post(url("consent", campaign), {"action": "rejoin"})
    assert response.url == url("consent", campaign)
    assert worker_stage(campaign, owner) == Stage.CONSENT
    client.post(url("consent", campaign), {"action": "agree", "version": 1})
    assert worker_stage(campaign, owner) == Stage.WORK


# ---- The quiz


def test_a_new_worker_fails_the_quiz_then_passes_and_is_qualified(client, campaign, owner):
    publish(campaign, consent="Consent.")
    add_quiz(campaign)
    client.force_login(owner)
    response = client.post(url("consent", campaign), {"action": "agree", "version": 1})
    assert response.url == url("quiz", campaign)
    start = client.get(url("quiz", campaign)).content.decode()
    assert "Start the quiz" in start and "You pass with 2 of 2 right" in start

    client.post(url("quiz", campaign), {"action": "start"})
    attempt = QuizAttempt.objects.get()
    for gold_id, right in zip(attempt.questions, [True, False], strict=True):
        gold = campaign.gold_items.get(pk=gold_id)
        page = client.get(url("quiz", campaign)).content.decode()
        assert gold.item.human_text in page and "A is much better" in page
        response = client.post(
            url("quiz", campaign), answer_form(attempt, gold, owner, right=right)
        )
        assert response.status_code == 302
        feedback = client.get(response.url).content.decode()
        assert ("Right" if right else "Not right") in feedback
        assert gold.explanation in feedback
    assert "Not passed: 1 of 2 right; you have 1 attempt left." in feedback
    assert "Try again" in feedback
    assert worker_stage(campaign, owner) == Stage.QUIZ

    client.post(url("quiz", campaign), {"action": "start"})
    second = QuizAttempt.objects.get(number=2)
    for gold_id in second.questions:
        gold = campaign.gold_items.get(pk=gold_id)
        response = client.post(url("quiz", campaign), answer_form(second, gold, owner, right=True))
    result = client.get(response.url).content.decode()
    assert "You passed" in result and url("task_next", campaign) in result
    assert "Start working" in result
    assert Enrollment.objects.get(worker=owner).qualified_at is not None
    assert worker_stage(campaign, owner) == Stage.WORK
    assert client.get(url("quiz", campaign)).url == url("task_next", campaign)


def test_a_worker_who_fails_every_attempt_is_not_qualified(client, campaign, owner):
    add_quiz(campaign, n=1, size=1, attempts=1)
    client.force_login(owner)
    client.post(url("quiz", campaign), {"action": "start"})
    attempt = QuizAttempt.objects.get()
    gold = campaign.gold_items.get()
    response = client.post(url("quiz", campaign), answer_form(attempt, gold, owner, right=False))
    feedback = client.get(response.url).content.decode()
    assert "Not passed: 0 of 1 right; you have 0 attempts left." in feedback
    assert "Try again" not in feedback
    assert worker_stage(campaign, owner) == Stage.NOT_QUALIFIED
    page = client.get(url("quiz", campaign)).content.decode()
    assert "You did not qualify for this campaign" in page
    again = client.post(url("quiz", campaign), {"action": "start"})
    assert again.status_code == 400 and "used every attempt" in again.content.decode()
    assert QuizAttempt.objects.count() == 1


def test_quiz_answers_are_quiz_answer_rows_never_judgments(campaign, owner):
    golds = add_quiz(campaign, size=1, pass_mark=0.5)
    attempt = onboarding.quiz_start(campaign=campaign, worker=owner)
    gold = next(g for g in golds if g.pk == attempt.questions[0])
    position = item_display_order(gold.item_id, owner.pk, 2).index(0)
    answer = onboarding.quiz_answer(
        attempt=attempt,
        worker=owner,
        gold=gold,
        order=[[position], [1 - position]],
        strength=2,
        time_spent_ms=1500,
    )
    assert (answer.correct, answer.strength, answer.time_spent_ms) == (True, 2, 1500)
    assert answer.shown == item_display_order(gold.item_id, owner.pk, 2)
    assert QuizAnswer.objects.count() == 1 and not Judgment.objects.exists()
    attempt.refresh_from_db()
    assert (attempt.correct, attempt.passed) == (1, True) and attempt.finished_at


def test_a_question_cannot_be_answered_twice_or_out_of_order(client, campaign, owner):
    add_quiz(campaign, n=3, size=3, pass_mark=0.5)
    attempt = onboarding.quiz_start(campaign=campaign, worker=owner)
    first, second, third = (campaign.gold_items.get(pk=pk) for pk in attempt.questions)
    client.force_login(owner)
    out_of_order = client.post(
        url("quiz", campaign), answer_form(attempt, second, owner, right=True)
    )
    assert out_of_order.status_code == 400
    assert "Answer the questions in order" in out_of_order.content.decode()
    client.post(url("quiz", campaign), answer_form(attempt, first, owner, right=True))
    twice = client.post(url("quiz", campaign), answer_form(attempt, first, owner, right=False))
    assert "You have already answered this question" in twice.content.decode()
    assert list(QuizAnswer.objects.values_list("gold_id", "correct")) == [(first.pk, True)]
    assert onboarding.quiz_start(campaign=campaign, worker=owner) == attempt  # resumed


def test_a_ranking_quiz_is_answered_with_places(client, tiny_assistant, owner):
    ranking = ranking_campaign(tiny_assistant, k=3)
    (gold,) = add_quiz(ranking, n=1, size=1)
    client.force_login(owner)
    client.post(url("quiz", ranking), {"action": "start"})
    attempt = QuizAttempt.objects.get()
    page = client.get(url("quiz", ranking)).content.decode()
    assert "Submit ranking" in page and 'name="place_2"' in page
    shown = item_display_order(gold.item_id, owner.pk, 3)
    best_first = [shown.index(0), *(p for p, slot in enumerate(shown) if slot != 0)]
    places = {f"place_{p}": place for place, p in enumerate(best_first, start=1)}
    data = {"action": "answer", "attempt": attempt.pk, "gold": gold.pk}
    data |= {"shown": shown_ids(gold, owner), **places}
    response = client.post(url("quiz", ranking), data)
    assert response.status_code == 302, response.content.decode()[-1500:]
    answer = QuizAnswer.objects.get()
    assert answer.correct and answer.strength is None
    assert "You passed" in client.get(response.url).content.decode()


def test_onboarding_pages_carry_no_inline_script_style_or_handler(
    client, tiny_assistant, campaign, owner
):
    publish(campaign, consent="Consent.", content_warning="Warning.")
    add_quiz(campaign)
    ranking = ranking_campaign(tiny_assistant, k=3)
    add_quiz(ranking, n=1, size=1)
    client.force_login(owner)
    pages = [client.get(url("consent", campaign))]
    client.post(url("consent", campaign), {"action": "agree", "version": 1})
    pages.append(client.get(url("quiz", campaign)))
    client.post(url("quiz", campaign), {"action": "start"})
    pages.append(client.get(url("quiz", campaign)))
    client.post(url("quiz", ranking), {"action": "start"})
    pages.append(client.get(url("quiz", ranking)))
    pages.append(client.get(url("withdraw", campaign)))
    client.post(url("withdraw", campaign))
    pages.append(client.get(url("consent", campaign)))
    for page in pages:
        assert page.status_code == 200
        assert PageMarkup(page.content.decode()).problems == []


def test_enrollments_and_quiz_attempts_are_read_only_lists_in_the_admin(
    client, researcher, campaign, owner
):
    add_quiz(campaign, size=1, pass_mark=0.5)
    attempt = onboarding.quiz_start(campaign=campaign, worker=owner)
    client.force_login(researcher)
    for model in ("enrollment", "quizattempt", "guidelines", "golditem"):
        assert client.get(reverse(f"admin:labeling_{model}_changelist")).status_code == 200
    page = client.get(reverse("admin:labeling_quizattempt_change", args=[attempt.pk]))
    assert page.status_code == 200
    assert client.get(reverse("admin:labeling_enrollment_add")).status_code == 403
    assert client.get(reverse("admin:labeling_quizattempt_add")).status_code == 403
