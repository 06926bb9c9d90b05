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
