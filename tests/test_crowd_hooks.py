"""The bookkeeping after a judgment (queue, rules) never costs the judgment."""

import pytest

from labeling.models import Judgment
from labeling.services import conversations as chat
from labeling.services import quality
from tests.factories import finish_candidates

pytestmark = pytest.mark.django_db


def test_a_rule_that_fails_is_logged_and_the_judgment_is_kept(campaign, owner, monkeypatch, caplog):
    def broken_rule(**kwargs):
        raise RuntimeError("a bug in a rule")

    monkeypatch.setattr(quality, "rules_apply", broken_rule)
    conversation = chat.conversation_start(campaign=campaign, worker=owner)
    turn = chat.turn_create(conversation=conversation, worker=owner, text="Hello")
    finish_candidates(turn)

    judgment = chat.comparison_submit(turn=turn, worker=owner, choice="B3")

    assert Judgment.objects.filter(pk=judgment.pk, worker=owner, strength=3).exists()
    assert "_apply_rules failed after judgment" in caplog.text
    turn.refresh_from_db()
    assert turn.chosen_id is not None  # the conversation goes on with the pick


def owners_judged_turn(campaign, owner, text="Hi"):
    conversation = chat.conversation_start(campaign=campaign, worker=owner)
    turn = chat.turn_create(conversation=conversation, worker=owner, text=text)
    finish_candidates(turn)
    chat.comparison_submit(turn=turn, worker=owner, choice="A3")
    return turn


def test_the_answer_that_pauses_a_worker_takes_them_to_the_paused_page_not_a_new_item(
    client, campaign, owner, other_worker
):
    from django.urls import reverse

    from labeling.item_selectors import item_shown
    from labeling.models import Assignment, Campaign
    from tests.factories import rejudge_campaign

    turn = owners_judged_turn(campaign, owner)
    rejudge = rejudge_campaign(campaign)
    Campaign.objects.filter(pk=rejudge.pk).update(rule_min_judgments=1, max_first_position_rate=0.5)
    client.force_login(other_worker)
    client.get(reverse("labeling:item_next", args=[rejudge.slug]))  # reserves the item
    shown = ",".join(str(c.pk) for c in item_shown(turn, other_worker))
    answer = client.post(
        reverse("labeling:rejudge_submit", args=[rejudge.slug, turn.pk]),
        {"choice": "A4", "shown": shown},
        HTTP_HX_REQUEST="true",
    )
    assert answer["HX-Redirect"] == reverse("labeling:paused", args=[rejudge.slug])
    assert Judgment.objects.filter(worker=other_worker, item=turn).exists()  # kept
    assert not Assignment.objects.filter(worker=other_worker, status="reserved").exists()


def test_a_paused_worker_holds_no_reservation(campaign, owner, other_worker, researcher):
    from labeling.models import Assignment
    from labeling.services.quality import pause_create
    from labeling.services.queue import task_next
    from tests.factories import rejudge_campaign

    owners_judged_turn(campaign, owner)
    rejudge = rejudge_campaign(campaign)
    held = task_next(campaign=rejudge, worker=other_worker)
    assert held.status == Assignment.Status.RESERVED
    pause_create(campaign=rejudge, worker=other_worker, reason="Checking.", by=researcher)
    held.refresh_from_db()
    assert held.status == Assignment.Status.EXPIRED
