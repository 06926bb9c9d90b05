"""Quality while collecting: per-worker figures, rules that pause, lifting pauses, the paused
page, reports, and keeping checks out of training and the default exports.

Actors: ``owner`` and ``other_worker`` (crowdworkers), ``third`` (a third worker for
agreement), ``researcher`` (staff), anonymous. Items are built by hand (a conversation of
their own, candidates written out) so every figure is known in advance.
"""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from labeling import quality, quality_views, selectors
from labeling.crowd_selectors import Stage, worker_stage
from labeling.gate import gate
from labeling.models import (
    Campaign,
    CandidateResponse,
    Conversation,
    GoldItem,
    Judgment,
    Pause,
    QuizAnswer,
    QuizAttempt,
    Report,
    Turn,
)
from labeling.services import conversations as chat
from labeling.services import quality as services
from labeling.services.judgments import judgment_record
from tests import factories
from tests.factories import finish_candidates
from tests.test_views import PageMarkup

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
PAIR = ("A short one.", "A much longer response, with more words in it.")


@pytest.fixture
def third(django_user_model):
    return django_user_model.objects.create_user("third", password="third-pass-123")


@pytest.fixture
def pairs(tiny_assistant):
    """A campaign of hand-built pairs (the rules at their defaults: gold from 3 checks at
    60%, time off, position above 90% after 10 judgments)."""
    return factories.ranking_campaign(tiny_assistant, k=2, slug="pairs")


def make_item(campaign: Campaign, texts=PAIR, *, source: str = "test") -> Turn:
    """An item of ``campaign``: the one turn of a conversation of its own, texts by slot."""
    conversation = Conversation.objects.create(campaign=campaign, source=source)
    item = Turn.objects.create(
        conversation=conversation,
        index=0,
        human_text="Which is right?",
        display_order=list(range(len(texts))),
    )
    for slot, text in enumerate(texts):
        CandidateResponse.objects.create(
            turn=item, slot=slot, text=text, status=CandidateResponse.Status.DONE
        )
    return item


def make_gold(campaign: Campaign, best_slot: int = 1, texts=PAIR) -> Turn:
    item = make_item(campaign, texts, source="gold:test")
    others = [s for s in range(len(texts)) if s != best_slot]
    GoldItem.objects.create(
        item=item,
        campaign=campaign,
        role=GoldItem.Role.CHECK,
        answer=[[best_slot], others],
        explanation="The longer one answers.",
    )
    return item


def judge(item: Turn, worker, *, top: int, shown=(0, 1), seconds: float = 20, campaign=None):
    """``worker`` saw the slots in ``shown`` order (A first) and put slot ``top`` on top."""
    by_slot = {c.slot: c for c in item.candidates.all()}
    first = list(shown).index(top)
    rest = [p for p in range(len(shown)) if p != first]
    return judgment_record(
        item=item,
        campaign=campaign or item.conversation.campaign,
        worker=worker,
        task_type=Judgment.TaskType.RANKING,
        question="better",
        shown=[by_slot[s] for s in shown],
        order=[[first], rest],
        strength=3 if len(shown) == 2 else None,
        time_spent_ms=int(seconds * 1000),
    )


def judge_and_apply(item, worker, **kwargs):
    judgment = judge(item, worker, **kwargs)
    services.rules_apply(campaign=judgment.campaign, worker=worker)
    return judgment


def metrics_of(campaign, worker) -> quality.WorkerMetrics:
    [row] = quality.worker_metrics(campaign, worker=worker)
    return row


# --- The figures.


def test_the_figures_of_a_hand_built_campaign(pairs, owner, other_worker, third):
    real = [make_item(pairs) for _ in range(4)]
    # owner: slot 1 (the longer) shown first and picked on items 0, 1; slot 0 (shorter)
    # shown second and picked on item 2; slot 1 shown second and picked on item 3.
    judge(real[0], owner, top=1, shown=(1, 0), seconds=10)
    judge(real[1], owner, top=1, shown=(1, 0), seconds=30)
    judge(real[2], owner, top=0, shown=(1, 0), seconds=20)
    judge(real[3], owner, top=1, shown=(0, 1), seconds=40)
    right, wrong = make_gold(pairs, best_slot=1), make_gold(pairs, best_slot=1)
    judge(right, owner, top=1, shown=(0, 1), seconds=50)
    judge(wrong, owner, top=0, shown=(0, 1), seconds=60)
    # Overlap: other_worker agrees on item 0 and disagrees on item 2; third agrees on item 0.
    judge(real[0], other_worker, top=1)
    judge(real[2], other_worker, top=1)
    judge(real[0], third, top=1, shown=(1, 0))
    judge(right, other_worker, top=0)  # gold items never count towards agreement

    m = metrics_of(pairs, owner)
    assert (m.judgments, m.gold_seen, m.gold_right, m.gold_accuracy) == (4, 2, 1, 0.5)
    # First shown on top: items 0, 1 and the wrong gold answer: 3 of 6.
    assert m.first_position_rate == 0.5
    assert m.longer_rate == 0.75  # real pairs only: 3 of 4 picked the longer text
    assert m.median_seconds == 35  # of 10, 20, 30, 40, 50, 60
    assert (m.agreement, m.overlap_items) == (2 / 3, 2)
    assert m.pause is None
    everyone = quality.worker_metrics(pairs)
    assert [row.worker for row in everyone] == [other_worker, owner, third]
    assert everyone[1] == m
    assert everyone[0].agreement == 2 / 3 and everyone[2].agreement == 1.0


def test_for_the_more_harmful_question_the_less_harmful_pick_is_what_longer_reads(pairs, owner):
    item = make_item(pairs)
    by_slot = {c.slot: c for c in item.candidates.all()}
    judgment_record(
        item=item,
        campaign=pairs,
        worker=owner,
        task_type=Judgment.TaskType.RED_TEAM,
        question="more_harmful",
        shown=[by_slot[0], by_slot[1]],
        order=[[0], [1]],  # the short one is more harmful: the longer is preferred
        strength=2,
    )
    assert metrics_of(pairs, owner).longer_rate == 1.0


def test_a_researchers_correction_is_not_the_workers_behaviour(pairs, owner, researcher):
    gold = make_gold(pairs, best_slot=1)
    wrong = judge(gold, owner, top=0)
    from labeling.services.judgments import judgment_supersede

    judgment_supersede(judgment=wrong, by=researcher, reason="Typo", order=[[1], [0]], strength=3)
    assert metrics_of(pairs, owner).gold_right == 0


def test_the_figures_take_a_handful_of_queries_whatever_the_size(
    pairs, owner, other_worker, django_assert_max_num_queries
):
    for _ in range(6):
        item = make_item(pairs)
        judge(item, owner, top=0)
        judge(item, other_worker, top=1)
    with django_assert_max_num_queries(5):
        rows = quality.worker_metrics(pairs)
    assert [r.agreement for r in rows] == [0.0, 0.0]


# --- The rules.


@pytest.mark.parametrize(
    ("setup", "rule", "words"),
    [
        ("gold", Pause.Rule.GOLD_ACCURACY, "1 of 3 check questions answered as expected (33%)"),
        ("fast", Pause.Rule.TOO_FAST, "took 1.0 seconds each"),
        ("first", Pause.Rule.POSITION_BIAS, "picked the response shown first in 100%"),
    ],
)
def test_each_rule_pauses_once_with_a_reason_and_the_figures(pairs, owner, setup, rule, words):
    pairs.min_judgment_seconds = 3
    pairs.rule_min_judgments = 4
    pairs.save()
    pauses = []
    if setup == "gold":
        for answer in (1, 0, 0):
            pauses.append(judge_and_apply(make_gold(pairs), owner, top=answer))
    for n in range(5):
        shown = (0, 1) if setup == "first" or n % 2 else (1, 0)
        seconds = 1 if setup == "fast" else 10
        judge_and_apply(make_item(pairs), owner, top=shown[0], shown=shown, seconds=seconds)
    [pause] = Pause.objects.filter(worker=owner, campaign=pairs)
    assert pause.rule == rule and words in pause.reason
    assert pause.lifted_at is None and pause.created_by is None
    assert pause.metrics["threshold"] is not None
    if rule == Pause.Rule.GOLD_ACCURACY:
        assert (pause.metrics["gold_right"], pause.metrics["gold_seen"]) == (1, 3)
        assert "this campaign needs 60%" in pause.reason
    if rule == Pause.Rule.TOO_FAST:
        assert pause.metrics["median_seconds"] == 1.0 and pause.metrics["threshold"] == 3
    if rule == Pause.Rule.POSITION_BIAS:
        assert pause.metrics["first_position_rate"] == 1.0
    assert services.rules_apply(campaign=pairs, worker=owner) is None  # already paused


def test_an_honest_worker_is_not_paused(pairs, owner):
    """Gold right, slow enough, positions mixed and a taste for longer answers."""
    pairs.min_judgment_seconds = 3
    pairs.rule_min_judgments = 5
    pairs.save()
    for n in range(20):
        if n % 4 == 0:
            judge_and_apply(
                make_gold(pairs, best_slot=1), owner, top=1, shown=(n % 8 // 4, 1 - n % 8 // 4)
            )
        shown = (0, 1) if n % 3 else (1, 0)
        judge_and_apply(make_item(pairs), owner, top=1, shown=shown, seconds=4 + n % 5)
    assert not Pause.objects.exists()
    m = metrics_of(pairs, owner)
    assert m.gold_accuracy == 1.0 and m.longer_rate == 1.0 and m.first_position_rate < 0.9


def test_the_gold_rule_waits_for_enough_checks(pairs, owner):
    for _ in range(2):
        judge_and_apply(make_gold(pairs), owner, top=0)
    assert not Pause.objects.exists()


def test_after_a_lift_the_old_figures_do_not_pause_again_but_new_ones_do(pairs, owner, researcher):
    for _ in range(3):
        judge_and_apply(make_gold(pairs), owner, top=0)
    pause = Pause.objects.get()
    services.pause_lift(pause=pause, by=researcher, reason="The checks were ambiguous.")
    judge_and_apply(make_item(pairs), owner, top=1)
    judge_and_apply(make_gold(pairs), owner, top=1)
    assert Pause.objects.filter(lifted_at__isnull=True).count() == 0
    for _ in range(2):
        judge_and_apply(make_gold(pairs), owner, top=0)
    again = Pause.objects.get(lifted_at__isnull=True)
    assert again.rule == Pause.Rule.GOLD_ACCURACY and "1 of 3" in again.reason


# --- Pausing and lifting by hand.


def test_a_researcher_pauses_and_lifts_by_hand_and_a_worker_cannot(pairs, owner, researcher):
    with pytest.raises(PermissionDenied):
        services.pause_create(campaign=pairs, worker=owner, reason="Spam", by=owner)
    with pytest.raises(ValidationError, match="Say why"):
        services.pause_create(campaign=pairs, worker=owner, reason="  ", by=researcher)
    judge(make_item(pairs), owner, top=0)
    pause = services.pause_create(
        campaign=pairs, worker=owner, reason="Copied answers.", by=researcher
    )
    assert (pause.rule, pause.created_by, pause.metrics["judgments"]) == ("manual", researcher, 1)
    with pytest.raises(ValidationError, match="already paused"):
        services.pause_create(campaign=pairs, worker=owner, reason="Again", by=researcher)
    with pytest.raises(PermissionDenied):
        services.pause_lift(pause=pause, by=owner, reason="Let me back")
    with pytest.raises(ValidationError, match="Say why"):
        services.pause_lift(pause=pause, by=researcher, reason="")
    lifted = services.pause_lift(pause=pause, by=researcher, reason="Checked: not copied.")
    assert lifted.lifted_by == researcher and lifted.lift_reason == "Checked: not copied."
    assert lifted.lifted_at is not None
    with pytest.raises(ValidationError, match="already lifted"):
        services.pause_lift(pause=pause, by=researcher, reason="Twice")


def test_the_admin_lifts_a_pause_with_a_reason_and_shows_the_figures(
    client, pairs, owner, researcher
):
    judge(make_item(pairs), owner, top=0)
    pause = services.pause_create(campaign=pairs, worker=owner, reason="Check.", by=researcher)
    client.force_login(researcher)
    assert client.get(reverse("admin:labeling_pause_changelist")).status_code == 200
    page = client.get(reverse("admin:labeling_pause_change", args=[pause.pk])).content.decode()
    assert "Lift the pause" in page and "&quot;judgments&quot;: 1" in page
    lift = reverse("admin:labeling_pause_lift", args=[pause.pk])
    assert client.post(lift, {"reason": ""}).status_code == 200  # the form again, with why
    assert client.post(lift, {"reason": "Fine."}).status_code == 302
    pause.refresh_from_db()
    assert pause.lifted_by == researcher and pause.lift_reason == "Fine."
    table = client.get(reverse("admin:labeling_worker_quality", args=[pairs.slug]))
    assert "owner" in table.content.decode() and "Pause…" in table.content.decode()
    assert client.get(reverse("admin:labeling_worker_quality_index")).status_code == 200
    added = client.post(
        reverse("admin:labeling_pause_add"),
        {"campaign": pairs.pk, "worker": "owner", "reason": "Again."},
    )
    assert added.status_code == 302 and Pause.objects.filter(lifted_at__isnull=True).count() == 1
    assert client.get(reverse("admin:labeling_report_changelist")).status_code == 200


def test_worker_pages_of_the_admin_are_for_staff_only(client, pairs, owner):
    client.force_login(owner)
    for target in (
        reverse("admin:labeling_worker_quality", args=[pairs.slug]),
        reverse("admin:labeling_pause_add"),
    ):
        assert client.get(target).status_code == 302


# --- The paused page.


def test_a_paused_worker_sees_why(client, pairs, owner):
    for _ in range(3):
        judge_and_apply(make_gold(pairs), owner, top=0)
    assert worker_stage(pairs, owner) == Stage.PAUSED
    client.force_login(owner)
    request = RequestFactory().get("/")
    request.user, request.htmx = owner, False
    assert gate(request, pairs)["Location"] == reverse("labeling:paused", args=[pairs.slug])
    page = client.get(reverse("labeling:paused", args=[pairs.slug]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Your work in Rank 2 is paused" in text
    assert "0 of 3 check questions answered as expected (0%); this campaign needs 60%." in text
    assert "A researcher reviews every pause" in text and "so far are kept" in text
    assert PageMarkup(text).problems == []


def test_a_worker_who_is_not_paused_goes_on_to_their_tasks(client, pairs, owner):
    client.force_login(owner)
    page = client.get(reverse("labeling:paused", args=[pairs.slug]))
    assert page.status_code == 302
    assert page["Location"] == reverse("labeling:task_next", args=[pairs.slug])


def test_the_paused_page_needs_a_login(client, pairs):
    page = client.get(reverse("labeling:paused", args=[pairs.slug]))
    assert page.status_code == 302 and "/accounts/login/" in page["Location"]


# --- Reports.


def report_url(campaign, item):
    return reverse("labeling:item_report", args=[campaign.slug, item.pk])


def test_a_report_is_recorded_and_never_counted_as_a_judgment(client, pairs, owner):
    item = make_item(pairs)
    client.force_login(owner)
    response = client.post(report_url(pairs, item), {"reason": "broken", "note": " Empty. "})
    assert response.status_code == 302
    assert response["Location"] == reverse("labeling:task_next", args=[pairs.slug])
    report = Report.objects.get()
    assert (report.worker, report.item, report.reason, report.note) == (
        owner,
        item,
        "broken",
        "Empty.",
    )
    assert not Judgment.objects.exists()
    assert metrics_of(pairs, owner).judgments == 0
    htmx = client.post(report_url(pairs, make_item(pairs)), {"reason": "cant_judge"}, **HX)
    assert htmx["HX-Redirect"] == reverse("labeling:task_next", args=[pairs.slug])


def test_a_report_needs_a_reason_and_is_made_once(client, pairs, owner):
    item = make_item(pairs)
    client.force_login(owner)
    client.post(report_url(pairs, item), {"note": "?"})
    assert not Report.objects.exists()
    with pytest.raises(ValidationError, match="Choose what is wrong"):
        services.report_submit(
            campaign=pairs, worker=owner, item=item, reason="boring", note="", draft={}
        )
    services.report_submit(campaign=pairs, worker=owner, item=item, reason="other", draft={})
    with pytest.raises(ValidationError, match="already reported"):
        services.report_submit(campaign=pairs, worker=owner, item=item, reason="other", draft={})


def test_nobody_reports_an_item_the_campaign_does_not_serve_them(client, pairs, owner, campaign):
    elsewhere = make_item(campaign)
    client.force_login(owner)
    assert client.post(report_url(pairs, elsewhere), {"reason": "other"}).status_code == 404
    client.logout()
    page = client.post(report_url(pairs, make_item(pairs)), {"reason": "other"})
    assert page.status_code == 302 and "/accounts/login/" in page["Location"]
    assert not Report.objects.exists()


def test_the_queue_ends_the_task_as_reported_with_the_draft(client, pairs, owner, monkeypatch):
    item = make_item(pairs)
    calls = []
    monkeypatch.setattr(
        "labeling.services.queue.assignment_report", lambda **kwargs: calls.append(kwargs)
    )
    client.force_login(owner)
    posted = {"reason": "cant_judge", "note": "", "comment": "half", "place_0": "2"}
    client.post(report_url(pairs, item), posted, **HX)
    [call] = calls
    assert (call["campaign"], call["worker"], call["item"]) == (pairs, owner, item)
    assert call["draft"] == {"comment": "half", "place_0": "2"}


def test_a_chat_turn_report_keeps_the_worker_on_their_conversation(campaign, owner, other_worker):
    conversation = chat.conversation_start(campaign=campaign, worker=owner)
    turn = chat.turn_create(conversation=conversation, worker=owner, text="Hi")
    finish_candidates(turn)
    response = quality_views.turn_report(_post(owner, {"reason": "harmful"}), pk=turn.pk)
    assert response.status_code == 302
    assert response["Location"] == reverse("labeling:conversation", args=[conversation.pk])
    assert Report.objects.get().item == turn and not Judgment.objects.exists()
    again = quality_views.turn_report(_post(owner, {"reason": "other"}, htmx=True), pk=turn.pk)
    assert "already reported" in again.content.decode()
    with pytest.raises(Exception) as refused:  # someone else's turn: 404
        quality_views.turn_report(_post(other_worker, {"reason": "other"}), pk=turn.pk)
    assert refused.typename == "Http404"


def _post(user, data, *, htmx=False):
    """A POST request as the middleware leaves it (turn_report's URL is the lead's to add)."""
    from django.contrib.messages.storage.fallback import FallbackStorage

    request = RequestFactory().post("/", data)
    request.user, request.htmx, request.session = user, htmx, {}
    request._dont_enforce_csrf_checks = True
    request._messages = FallbackStorage(request)
    return request


def test_the_report_form_offers_every_reason_without_inline_script(pairs, campaign, owner):
    item = make_item(pairs)
    html = render_to_string("labeling/_report.html", {"campaign": pairs, "item": item})
    assert "<summary>Can't judge / report this response</summary>" in html
    for value, label in Report.Reason.choices:
        assert f'value="{value}"' in html and label in html
    assert report_url(pairs, item) in html
    assert PageMarkup(html).problems == []
    chat_html = render_to_string(
        "labeling/_report.html", {"campaign": campaign, "item": item, "chat": True}
    )
    assert "still pick a response" in chat_html


# --- Training and exports.


def test_paused_and_gold_judgments_leave_training_and_come_back_when_lifted(
    pairs, owner, other_worker, researcher
):
    judge(make_item(pairs), owner, top=0)
    judge(make_item(pairs), other_worker, top=1)
    judge(make_gold(pairs), other_worker, top=1)
    assert len(list(selectors.preference_rankings(campaign_slug=pairs.slug))) == 2
    pause = services.pause_create(campaign=pairs, worker=owner, reason="Check.", by=researcher)
    [left] = selectors.preference_rankings(campaign_slug=pairs.slug)
    assert (
        left.source
        == f"judgment:{Judgment.objects.get(worker=other_worker, item__gold__isnull=True).pk}"
    )
    assert selectors.judgments_since_last_training() == 1
    services.pause_lift(pause=pause, by=researcher, reason="Fine.")
    assert len(list(selectors.preference_rankings(campaign_slug=pairs.slug))) == 2


def test_exports_leave_checks_out_by_default_and_mark_them_on_request(
    tmp_path, pairs, owner, other_worker, researcher
):
    counted = judge(make_item(pairs), other_worker, top=1)
    gold_item = make_gold(pairs)
    gold = judge(gold_item, other_worker, top=1)
    paused = judge(make_item(pairs), owner, top=0)
    services.pause_create(campaign=pairs, worker=owner, reason="Check.", by=researcher)
    attempt = QuizAttempt.objects.create(campaign=pairs, worker=owner, number=1)
    quiz = QuizAnswer.objects.create(
        attempt=attempt,
        gold=GoldItem.objects.get(),
        shown=[1, 0],
        order=[[1], [0]],
        strength=3,
        correct=False,
        time_spent_ms=900,
    )

    def export(fmt, *flags):
        out = tmp_path / f"{fmt}{len(flags)}.jsonl"
        call_command("export_preferences", "--format", fmt, "-o", str(out), *flags)
        return [json.loads(line) for line in out.read_text().splitlines()]

    [row] = export("lab")
    assert row["id"] == counted.pk and "excluded" not in row
    rows = export("lab", "--include-checks")
    marks = {(r["id"], r.get("quiz_answer")): r["excluded"] for r in rows}
    assert marks == {
        (counted.pk, None): None,
        (gold.pk, None): "gold",
        (paused.pk, None): "paused",
        (None, quiz.pk): "quiz",
    }
    [quiz_row] = [r for r in rows if r["excluded"] == "quiz"]
    assert quiz_row["responses"] == [PAIR[1], PAIR[0]] and quiz_row["chosen"] == PAIR[0]
    assert quiz_row["correct"] is False and quiz_row["worker"].startswith("w-")
    assert len(export("hh-rlhf")) == 1
    assert sorted(str(r["excluded"]) for r in export("hh-rlhf", "--include-checks")) == [
        "None",
        "gold",
        "paused",
        "quiz",
    ]


def test_a_paused_red_teamers_conversations_leave_the_red_team_export(
    tmp_path, red_team_campaign, owner, researcher
):
    conversation = chat.conversation_start(campaign=red_team_campaign, worker=owner)
    turn = chat.turn_create(conversation=conversation, worker=owner, text="Insult me.")
    finish_candidates(turn)
    chat.comparison_submit(turn=turn, worker=owner, choice="A2")
    chat.conversation_finish(
        conversation=conversation,
        worker=owner,
        attack_rating=2,
        harm_rating=3,
        task_description="Insult.",
    )
    services.pause_create(campaign=red_team_campaign, worker=owner, reason="X.", by=researcher)
    out = tmp_path / "rt.jsonl"
    call_command("export_preferences", "--format", "red-team", "-o", str(out))
    assert out.read_text() == ""
    call_command("export_preferences", "--format", "red-team", "--include-checks", "-o", str(out))
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["excluded"] == "paused"
