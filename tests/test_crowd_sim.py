"""The crowd simulator's parts: annotators, reading forms as a browser without JavaScript
does, and refusing bad options (the run itself: tests/test_simulate_crowd.py)."""

import random

import pytest
from django.core.management import CommandError, call_command

from labeling.crowd_sim.annotators import make_annotator
from labeling.crowd_sim.browser import Browser
from labeling.crowd_sim.run import CrowdConfig
from models_backend.dialogue import HUMAN, Message

CONTEXT = [Message(HUMAN, "Hello?")]
TEXTS = ["short", "a much longer answer", "middling one"]


def test_the_length_annotator_prefers_the_longer_response():
    annotator = make_annotator("length", noise=0.0, rng=random.Random(0))
    assert annotator(CONTEXT, TEXTS) == [1, 2, 0]


def test_label_noise_replaces_about_that_share_of_answers_with_random_ones():
    annotator = make_annotator("length", noise=0.5, rng=random.Random(1))
    answers = [annotator(CONTEXT, TEXTS) for _ in range(400)]
    share = sum(a != [1, 2, 0] for a in answers) / len(answers)
    assert 0.3 < share < 0.55  # half are random, and a random order is right 1/6 of the time


def test_a_preference_model_oracle_orders_by_its_rewards_the_same_way_each_time():
    annotator = make_annotator("pm:tiny-random", noise=0.0, rng=random.Random(0))
    first = annotator(CONTEXT, TEXTS)
    assert sorted(first) == [0, 1, 2] and annotator(CONTEXT, TEXTS) == first


def test_the_browser_reads_forms_buttons_selects_and_links_as_posted_without_javascript():
    page = Browser._page(
        "http://lab/tasks/x/",
        200,
        b"""<a href="/campaigns/x/next/">Next  item</a>
        <form method="post" action="items/7/rank/"><input type="hidden" name="shown" value="3,1">
        <select name="place_0"><option value="1">1</option><option value="2" selected>2</option>
        </select><textarea name="comment">typed</textarea>
        <input type="radio" name="reason" value="a"><input type="radio" name="reason" value="b">
        <button name="choice" value="A3" type="submit"><kbd>3</kbd> A is slightly better</button>
        <button type="submit" class="primary">Submit ranking</button></form>""",
    )
    form = page.form(r"/rank/$")
    assert form.action == "http://lab/tasks/x/items/7/rank/" and form.method == "post"
    assert form.fields == {"shown": "3,1", "place_0": "2", "comment": "typed"}
    assert form.selects == {"place_0": ["1", "2"]} and form.radios == {"reason": ["a", "b"]}
    assert form.button(r"slightly better") == ("choice", "A3", "3 A is slightly better")
    assert form.button(r"submit ranking") == ("", "", "Submit ranking")
    assert page.link(r"next item") == "http://lab/campaigns/x/next/"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"workers": 0}, "--workers and --tasks must be at least 1"),
        ({"noise": 2.0}, "--noise must lie between 0 and 1"),
        ({"gold_failing": 9}, "--gold-failing must lie between 0 and --workers"),
        ({"annotator": "oracle"}, "unknown annotator 'oracle'"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options, message):
    base = {"url": "http://lab/", "campaign": "c", "workers": 2, "tasks": 1}
    with pytest.raises(ValueError, match=message):
        CrowdConfig(**{**base, **options})


@pytest.mark.django_db
def test_the_command_refuses_a_bad_url_or_an_unknown_campaign(campaign):
    with pytest.raises(CommandError, match="must be an http"):
        call_command("simulate_crowd", url="lab", campaign=campaign.slug, workers=1, tasks=1)
    with pytest.raises(CommandError, match="No campaign with the slug 'nope'"):
        call_command("simulate_crowd", url="http://lab/", campaign="nope", workers=1, tasks=1)
