"""Fuzz: every form the crowd and researchers post, with Hypothesis (profiles:
tests/fuzzing.py), through the test client as the actor who posts it.

Each field is sent valid, odd (random text with NUL and odd unicode, huge strings,
numbers out of range, "²"-like digits, wrong ids), left out, or twice; now and then a
stray field comes along, and some posts come from htmx. The property: never a 5xx (the
test client raises a view's exception); a refused post (4xx, the form again with its
errors, or a redirect with an error message) writes nothing; an accepted one writes
exactly its rows, holding what was posted.

Actors: ``owner`` (a crowdworker with a chat conversation), ``other_worker`` (judges
ranking and re-judge items, reports, takes the quiz), ``researcher`` (staff: the panel's
forms and the admin's), and anonymous visitors (Prolific entry, log-in).
"""

from __future__ import annotations

import json

import pytest
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from labeling import item_selectors, scale
from labeling.crowd_selectors import Stage, worker_stage
from labeling.models import (
    Conversation,
    GoldItem,
    Guidelines,
    Judgment,
    ModelVersion,
    Pause,
    QuizAnswer,
    Report,
    Run,
)
from labeling.services import conversations as chat
from labeling.services import onboarding
from labeling.services.gold import gold_item_create
from labeling.services.items import ranking_items_create
from labeling.services.quality import pause_create
from models_backend.dialogue import HUMAN, Message
from tests import factories
from tests.fuzzing import growth, labeling_counts, rolled_back

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}

# ---- Field values

SPECIAL = st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "-1",
        "1.5",
        "²",  # a digit to str.isdigit(), not to int()
        "٣",  # a digit to both
        "9" * 30,
        "A5",
        "1,,2",
        "[]",
        "\u202e<script>",
    ]
)
ODD = st.one_of(
    SPECIAL,
    SPECIAL,  # twice: as likely as the three others together
    st.text(max_size=20),  # any code point but surrogates, NUL included
    st.integers().map(str),  # out of any range
    st.just("x" * 20_000),  # past every max_length (4,000 at most); text fields keep it
)
TEXT = st.text(max_size=40)  # a typed text, NUL and all


@st.composite
def posted(draw, **valid):
    """Form data for fields ``valid`` (name: a strategy of good values). An example is
    clean (every field valid), or hostile: then each field is valid or, more often the
    more hostile, odd, left out, or sent twice (Django reads the last). Now and then a
    stray field comes along."""
    hostile = draw(st.sampled_from([0, 3, 6, 9]))  # in ten: how many fields go wrong
    data = {}
    for name, good in valid.items():
        if draw(st.integers(0, 9)) >= hostile:
            data[name] = draw(good)
            continue
        kind = draw(st.sampled_from(["odd", "odd", "missing", "twice"]))
        if kind == "odd":
            data[name] = draw(ODD)
        elif kind == "twice":
            data[name] = [draw(st.one_of(good, ODD)), draw(st.one_of(good, ODD))]
    if draw(st.integers(0, 4)) == 0:
        data[draw(st.text(min_size=1, max_size=8))] = draw(ODD)
    return data


def last(data: dict, name: str, default=None):
    """What the form reads for ``name``: the last value sent."""
    value = data.get(name, default)
    return value[-1] if isinstance(value, list) else value


def send(client, url, data, *, htmx=False, get=False):
    cache.clear()  # rate-limit counts: each example starts from none
    headers = HX if htmx else {}
    response = client.get(url, data, **headers) if get else client.post(url, data, **headers)
    assert response.status_code < 500
    return response


def errors_shown(response) -> list[str]:
    return [m.message for m in get_messages(response.wsgi_request) if m.level_tag == "error"]


def refused_or(response, before, accepted: dict, *, htmx: bool) -> bool:
    """True when the post was accepted: then exactly ``accepted`` rows were written (and a
    plain post was redirected); a refusal (nothing written) must not claim success."""
    grown = growth(before)
    if not grown:
        if not htmx:
            assert response.status_code != 302 or errors_shown(response), (
                "accepted, nothing written"
            )
        return False
    assert grown == accepted, f"wrote {grown}, not {accepted}"
    if not htmx:
        assert response.status_code == 302
    return True


# ---- A chat: the message form, the comparison, the finish ratings


@pytest.fixture
def conversation(campaign, owner):
    return chat.conversation_start(campaign=campaign, worker=owner)


@pytest.fixture
def pending_turn(conversation, owner):
    """A turn of the owner's conversation whose two responses are ready to compare."""
    turn = chat.turn_create(conversation=conversation, worker=owner, text="Hello")
    factories.finish_candidates(turn)
    return turn


@given(
    data=posted(text=st.text(min_size=1, max_size=200)),
    whose=st.sampled_from(["own", "own", "other", "none"]),
    htmx=st.booleans(),
)
def test_the_message_form_starts_a_turn_or_writes_nothing(
    client, owner, other_worker, conversation, campaign, data, whose, htmx
):
    client.force_login(owner)
    with rolled_back():
        other = chat.conversation_start(campaign=campaign, worker=other_worker)
        pk = {"own": conversation.pk, "other": other.pk, "none": 10**9}[whose]
        before = labeling_counts()
        response = send(client, reverse("labeling:message_send", args=[pk]), data, htmx=htmx)
        if whose != "own":
            assert response.status_code == 404 and not growth(before)
            return
        if refused_or(response, before, {"Turn": 1, "CandidateResponse": 2}, htmx=htmx):
            turn = conversation.turns.get()
            assert turn.human_text == last(data, "text").strip()


CHOICES = st.sampled_from(scale.CHOICES)
SHOWN_AT = st.integers(0, 2**62).map(str)


@given(
    data=posted(choice=CHOICES, comment=TEXT, shown_at=SHOWN_AT),
    htmx=st.booleans(),
)
def test_a_comparison_records_one_judgment_or_writes_nothing(
    client, owner, pending_turn, data, htmx
):
    client.force_login(owner)
    with rolled_back():
        before = labeling_counts()
        url = reverse("labeling:comparison_submit", args=[pending_turn.pk])
        response = send(client, url, data, htmx=htmx)
        if refused_or(response, before, {"Judgment": 1, "JudgedCandidate": 2}, htmx=htmx):
            judgment = Judgment.objects.get(item=pending_turn)
            choice = last(data, "choice")
            assert judgment.strength == scale.parse_choice(choice)[1]
            assert judgment.comment == (last(data, "comment") or "").strip()


@pytest.fixture
def picked_conversations(campaign, red_team_campaign, owner):
    """A chat and a red-team conversation of the owner's, each with a turn picked."""
    picked = {}
    for each in (campaign, red_team_campaign):
        conversation = chat.conversation_start(campaign=each, worker=owner)
        turn = chat.turn_create(conversation=conversation, worker=owner, text="Hi")
        factories.finish_candidates(turn)
        chat.comparison_submit(turn=turn, worker=owner, choice="A2")
        picked[each.kind] = conversation
    return picked


RATING = st.integers(1, 5).map(str)


@given(
    kind=st.sampled_from(["chat", "red_team"]),
    data=posted(
        rating=RATING,
        attack_rating=RATING,
        harm_rating=RATING,
        task_description=TEXT,
        comment=TEXT,
    ),
    htmx=st.booleans(),
)
def test_the_finish_ratings_end_the_conversation_or_leave_it_open(
    client, owner, picked_conversations, kind, data, htmx
):
    conversation = picked_conversations[kind]
    client.force_login(owner)
    with rolled_back():
        before = labeling_counts()
        url = reverse("labeling:conversation_finish", args=[conversation.pk])
        response = send(client, url, data, htmx=htmx)
        grown = growth(before)
        conversation.refresh_from_db()
        if conversation.status == Conversation.Status.OPEN:
            assert htmx or response.status_code == 400
            assert not grown
            return
        assert grown == {"Assignment": 1}  # the conversation's task, done
        assert htmx or response.status_code == 302
        assert conversation.comment == (last(data, "comment") or "").strip()
        if kind == "chat":
            assert conversation.rating == int(last(data, "rating"))
        else:
            assert conversation.harm_rating == int(last(data, "harm_rating"))
            assert conversation.task_description == last(data, "task_description").strip()


# ---- Ranking and re-judge answers


@pytest.fixture
def ranking_item(tiny_assistant):
    campaign = factories.ranking_campaign(tiny_assistant, k=4, slug="rank-four")
    [item] = ranking_items_create(campaign=campaign, contexts=[("test", [Message(HUMAN, "Hi?")])])
    factories.finish_candidates(item, ("one", "two", "three", "four"))
    return item


def shown_ids(item, worker) -> str:
    return ",".join(str(c.pk) for c in item_selectors.item_shown(item, worker))


def shown_values(item, worker):
    """The shown ids as the page posts them, or another order, or other ids."""
    right = shown_ids(item, worker)
    return st.one_of(
        st.just(right),
        st.just(right).map(lambda ids: ",".join(reversed(ids.split(",")))),
        st.lists(st.integers(-5, 10**12), max_size=5).map(lambda ids: ",".join(map(str, ids))),
    )


@given(data=st.data(), htmx=st.booleans())
def test_a_ranking_records_one_judgment_or_writes_nothing(
    client, other_worker, ranking_item, data, htmx
):
    campaign = ranking_item.conversation.campaign
    places = {f"place_{p}": st.integers(1, 4).map(str) for p in range(4)}
    fields = data.draw(
        posted(
            shown=shown_values(ranking_item, other_worker),
            comment=TEXT,
            shown_at=SHOWN_AT,
            **places,
        )
    )
    client.force_login(other_worker)
    with rolled_back():
        before = labeling_counts()
        url = reverse("labeling:ranking_submit", args=[campaign.slug, ranking_item.pk])
        response = send(client, url, fields, htmx=htmx)
        accepted = {"Judgment": 1, "JudgedCandidate": 4, "Assignment": 1}
        if refused_or(response, before, accepted, htmx=htmx):
            judgment = Judgment.objects.get(item=ranking_item)
            ranks = dict(judgment.entries.values_list("position", "rank"))
            assert [ranks[p] for p in range(4)] == [
                int(last(fields, f"place_{p}")) - 1 for p in range(4)
            ]


@pytest.fixture
def rejudge_item(campaign, owner):
    """The owner's judged chat turn, served to others by a re-judge campaign."""
    rejudge = factories.rejudge_campaign(campaign)
    conversation = chat.conversation_start(campaign=campaign, worker=owner)
    turn = chat.turn_create(conversation=conversation, worker=owner, text="Hello")
    factories.finish_candidates(turn, ("Kind", "Rude"))
    chat.comparison_submit(turn=turn, worker=owner, choice="A3")
    return rejudge, turn


@given(data=st.data(), htmx=st.booleans())
def test_a_rejudge_records_one_judgment_or_writes_nothing(
    client, other_worker, rejudge_item, data, htmx
):
    rejudge, turn = rejudge_item
    fields = data.draw(
        posted(
            choice=CHOICES,
            shown=shown_values(turn, other_worker),
            comment=TEXT,
            shown_at=SHOWN_AT,
        )
    )
    client.force_login(other_worker)
    with rolled_back():
        before = labeling_counts()
        url = reverse("labeling:rejudge_submit", args=[rejudge.slug, turn.pk])
        response = send(client, url, fields, htmx=htmx)
        accepted = {"Judgment": 1, "JudgedCandidate": 2, "Assignment": 1}
        if refused_or(response, before, accepted, htmx=htmx):
            judgment = Judgment.objects.get(item=turn, worker=other_worker)
            assert judgment.strength == scale.parse_choice(last(fields, "choice"))[1]


# ---- Reports, skips


REASONS = st.sampled_from(Report.Reason.values)


@given(data=st.data(), where=st.sampled_from(["item", "turn"]), htmx=st.booleans())
def test_a_report_is_recorded_with_its_draft_or_refused_with_a_message(
    client, owner, other_worker, ranking_item, pending_turn, data, where, htmx
):
    fields = data.draw(
        posted(reason=REASONS, note=TEXT, comment=TEXT, place_0=st.just("1"), choice=CHOICES)
    )
    if where == "item":
        worker, campaign = other_worker, ranking_item.conversation.campaign
        url = reverse("labeling:item_report", args=[campaign.slug, ranking_item.pk])
    else:
        worker = owner
        url = reverse("labeling:turn_report", args=[pending_turn.pk])
    client.force_login(worker)
    with rolled_back():
        before = labeling_counts()
        response = send(client, url, fields, htmx=htmx)
        grown = growth(before)
        if not grown:
            assert htmx or errors_shown(response), "refused without saying why"
            return
        assert grown in ({"Report": 1}, {"Report": 1, "Assignment": 1})
        report = Report.objects.get(worker=worker)
        assert report.reason == last(fields, "reason")
        assert report.note == (last(fields, "note") or "").strip()


@given(
    data=posted(comment=TEXT, choice=CHOICES, shown=TEXT, place_0=st.just("2"), place_9=TEXT),
    htmx=st.booleans(),
)
def test_a_skip_keeps_any_draft_and_never_fails(client, other_worker, ranking_item, data, htmx):
    campaign = ranking_item.conversation.campaign
    client.force_login(other_worker)
    with rolled_back():
        send(client, reverse("labeling:task_next", args=[campaign.slug]), {}, get=True)
        before = labeling_counts()
        response = send(
            client, reverse("labeling:task_skip", args=[campaign.slug]), data, htmx=htmx
        )
        assert not growth(before)  # the skip ends the worker's assignment: an update
        assert response.status_code == 302 or htmx


# ---- Onboarding: consent, the quiz


EXAMPLES = {level: f"Example of {level}." for level in scale.CHOICES}


@pytest.fixture
def consent_asked(campaign):
    """Guidelines v1 of ``campaign`` with consent text: workers are asked to agree."""
    return onboarding.guidelines_publish(
        campaign=campaign, text="Judge.", examples=EXAMPLES, consent="Your answers train models."
    )


@given(
    data=posted(action=st.sampled_from(["agree", "rejoin"]), version=st.sampled_from(["1", "2"])),
)
def test_the_consent_form_records_consent_to_the_version_shown_or_nothing(
    client, campaign, consent_asked, owner, data
):
    client.force_login(owner)
    with rolled_back():
        before = labeling_counts()
        response = send(client, reverse("labeling:consent", args=[campaign.slug]), data)
        grown = growth(before)
        if worker_stage(campaign, owner) == Stage.CONSENT:
            assert response.status_code == 400 and grown in ({}, {"Enrollment": 1})
            assert not grown or last(data, "action") == "rejoin"  # a rejoin before any consent
            return
        assert response.status_code == 302 and grown == {"Enrollment": 1}
        assert (last(data, "action"), last(data, "version")) == ("agree", "1")


@pytest.fixture
def quiz(campaign, tiny_assistant, other_worker):
    """A started quiz of one question in a pair campaign and one in a ranking campaign."""
    started = {}
    for each in (campaign, factories.ranking_campaign(tiny_assistant, k=3)):
        each.quiz_size, each.quiz_pass_mark, each.quiz_max_attempts = 1, 1.0, 2
        each.save()
        k = each.candidates_per_item
        gold = gold_item_create(
            campaign=each,
            role="quiz",
            context=[Message(HUMAN, "Question?")],
            responses=["right", *(f"wrong {j}" for j in range(1, k))],
            answer=0,
            explanation="The first is right.",
        )
        attempt = onboarding.quiz_start(campaign=each, worker=other_worker)
        started[k] = (each, gold, attempt)
    return started


@given(data=st.data(), k=st.sampled_from([2, 3]))
def test_a_quiz_answer_is_one_quiz_answer_row_or_nothing(client, other_worker, quiz, data, k):
    campaign, gold, attempt = quiz[k]
    ids = st.sampled_from([str(attempt.pk), str(gold.pk), "0", str(10**20)])
    places = {f"place_{p}": st.integers(1, k).map(str) for p in range(k)}
    fields = data.draw(
        posted(
            action=st.sampled_from(["answer", "start"]),
            attempt=st.one_of(st.just(str(attempt.pk)), ids),
            gold=st.one_of(st.just(str(gold.pk)), ids),
            shown=shown_values(gold.item, other_worker),
            choice=CHOICES,
            shown_at=SHOWN_AT,
            **places,
        )
    )
    client.force_login(other_worker)
    with rolled_back():
        before = labeling_counts()
        response = send(client, reverse("labeling:quiz", args=[campaign.slug]), fields)
        grown = growth(before)
        if last(fields, "action") == "start":
            assert response.status_code in (302, 400) and not grown  # resumed, never a second
            return
        if not grown:
            assert response.status_code in (400, 404)
            return
        assert response.status_code == 302 and grown == {"QuizAnswer": 1}
        answer = QuizAnswer.objects.get(attempt=attempt)
        assert answer.gold_id == gold.pk
        assert "?answer=" in response.url


@given(answer=ODD)
def test_the_quiz_feedback_page_takes_any_answer_parameter(client, other_worker, quiz, answer):
    campaign = quiz[2][0]
    client.force_login(other_worker)
    send(client, reverse("labeling:quiz", args=[campaign.slug]), {"answer": answer}, get=True)


# ---- The panel: pause and lift, runs, the leaderboard filter


@given(
    data=st.data(),
    htmx=st.booleans(),
)
def test_a_pause_by_hand_is_one_pause_or_a_message(
    client, researcher, owner, other_worker, campaign, data, htmx
):
    worker_ids = st.sampled_from([owner.pk, other_worker.pk, researcher.pk, 0, 10**20]).map(str)
    fields = data.draw(posted(worker=worker_ids, reason=TEXT))
    client.force_login(researcher)
    with rolled_back():
        before = labeling_counts()
        url = reverse("panel:worker_pause", args=[campaign.slug])
        response = send(client, url, fields, htmx=htmx)
        grown = growth(before)
        if not grown:
            assert htmx or errors_shown(response)
            return
        assert grown == {"Pause": 1}
        pause = Pause.objects.get(campaign=campaign)
        assert pause.worker_id == int(last(fields, "worker"))  # "٣" is 3 to Django too
        assert pause.reason == last(fields, "reason").strip()


@pytest.fixture
def pause(campaign, owner, researcher):
    return pause_create(campaign=campaign, worker=owner, reason="Check.", by=researcher)


@given(data=posted(reason=TEXT), htmx=st.booleans())
def test_a_lift_by_hand_lifts_the_pause_or_leaves_it_with_a_message(
    client, researcher, campaign, pause, data, htmx
):
    client.force_login(researcher)
    with rolled_back():
        before = labeling_counts()
        url = reverse("panel:worker_unpause", args=[campaign.slug, pause.pk])
        response = send(client, url, data, htmx=htmx)
        assert not growth(before)
        pause.refresh_from_db()
        if pause.lifted_at is None:
            assert htmx or errors_shown(response)
            return
        assert pause.lift_reason == last(data, "reason").strip()


@given(data=st.data(), lift=st.booleans())
def test_the_admins_pause_and_lift_forms_write_one_pause_or_show_why_not(
    client, researcher, owner, other_worker, campaign, pause, data, lift
):
    names = st.sampled_from(["owner", "other", "researcher", "nobody", "OWNER"])
    fields = data.draw(
        posted(reason=TEXT)
        if lift
        else posted(campaign=st.sampled_from([str(campaign.pk), "0"]), worker=names, reason=TEXT)
    )
    url = (
        reverse("admin:labeling_pause_lift", args=[pause.pk])
        if lift
        else reverse("admin:labeling_pause_add")
    )
    client.force_login(researcher)
    with rolled_back():
        before = labeling_counts()
        response = send(client, url, fields)
        grown = growth(before)
        pause.refresh_from_db()
        done = pause.lifted_at is not None if lift else bool(grown)
        assert grown == ({"Pause": 1} if done and not lift else {})
        assert response.status_code == (302 if done else 200)
        if done and not lift:  # the owner is paused already: not them again
            assert Pause.objects.latest("pk").worker.username == last(fields, "worker")
            assert last(fields, "worker") != "owner"


@given(
    which=st.sampled_from(["export", "evaluate", "distil", "train"]),
    data=st.data(),
)
def test_a_run_form_queues_one_run_or_shows_the_form_again(
    client, researcher, campaign, which, data
):
    model = ModelVersion.objects.get()
    fields = data.draw(
        {
            "export": posted(
                format=st.sampled_from(["hh-rlhf", "lab", "trl", "rankings", "datasets"]),
                campaign=st.sampled_from([campaign.slug, "", "nope"]),
                include_weakest=st.sampled_from(["on", ""]),
                include_checks=st.sampled_from(["on", ""]),
            ),
            "evaluate": posted(
                model_version=st.sampled_from([str(model.pk), "0"]),
                limit=st.integers(-2, 10**20).map(str),
            ),
            "distil": posted(
                model=st.text(min_size=1, max_size=30),
                sample=st.integers(-2, 10**20).map(str),
                epochs=st.integers(-2, 100).map(str),
            ),
            "train": posted(),
        }[which]
    )
    name = {
        "export": "export_start",
        "evaluate": "evaluation_start",
        "distil": "distillation_start",
        "train": "training_start",
    }
    client.force_login(researcher)
    with rolled_back():
        before = labeling_counts()
        response = send(client, reverse(f"panel:{name[which]}"), fields)
        if refused_or(response, before, {"Run": 1}, htmx=False):
            run = Run.objects.get()
            assert (
                run.kind
                == {
                    "export": "export",
                    "evaluate": "evaluation",
                    "distil": "distillation",
                    "train": "preference",
                }[which]
            )
        else:
            assert response.status_code == 400


@given(slug=st.one_of(st.just("helpful-chat"), ODD))
def test_the_leaderboards_campaign_filter_takes_any_value(client, researcher, campaign, slug):
    client.force_login(researcher)
    for name in ("panel:leaderboard", "panel:leaderboard_plot"):
        response = send(client, reverse(name), {"campaign": slug}, get=True)
        assert response.status_code in (200, 404)


# ---- The admin's forms: a gold item, a guidelines version


LETTERS = "ABCDEFGHI"


@pytest.fixture
def campaigns(campaign, tiny_assistant):
    """A pair campaign (K = 2) and a ranking campaign (K = 3)."""
    return {2: campaign, 3: factories.ranking_campaign(tiny_assistant, k=3)}


@given(data=st.data(), k=st.sampled_from([2, 3]))
def test_the_admins_gold_item_form_writes_one_gold_item_or_shows_why_not(
    client, researcher, campaigns, data, k
):
    target = campaigns[k]
    responses = {
        f"response_{x}": st.text(min_size=1, max_size=20) if i < k else st.just("")
        for i, x in enumerate(LETTERS)
    }
    fields = data.draw(
        posted(
            campaign=st.sampled_from([str(target.pk), "0"]),
            role=st.sampled_from(GoldItem.Role.values),
            context=st.one_of(TEXT, st.just("Human: hi\n\nAssistant: hello\n\nHuman: and?")),
            answer=st.sampled_from(["A", "B", "B > A", "A = B > C", "C > B > A", "a"]),
            explanation=TEXT,
            **responses,
        )
    )
    client.force_login(researcher)
    with rolled_back():
        before = labeling_counts()
        response = send(client, reverse("admin:labeling_golditem_add"), fields)
        grown = growth(before)
        if not grown:
            assert response.status_code == 200  # the form again, with what is wrong
            return
        assert response.status_code == 302
        assert grown == {"GoldItem": 1, "Conversation": 1, "Turn": 1, "CandidateResponse": k}
        gold = GoldItem.objects.get()
        assert gold.explanation == last(fields, "explanation").strip()


@given(data=st.data(), k=st.sampled_from([2, 3]))
def test_the_admins_guidelines_form_publishes_one_version_or_shows_why_not(
    client, researcher, campaigns, data, k
):
    target = campaigns[k]
    examples = {f"example_{level}": st.text(min_size=1, max_size=10) for level in scale.CHOICES}
    ranking_examples = st.one_of(
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3).map(json.dumps),
        st.sampled_from(['{"a": "\\u0000"}', '{"a": "\\ud800"}', '{"a": 1}', "[1]", "{"]),
    )
    fields = data.draw(
        posted(
            campaign=st.just(str(target.pk)),
            text=TEXT,
            consent=TEXT,
            content_warning=TEXT,
            other_examples=ranking_examples,
            **examples,
        )
    )
    client.force_login(researcher)
    with rolled_back():
        before = labeling_counts()
        response = send(client, reverse("admin:labeling_guidelines_add"), fields)
        grown = growth(before)
        if not grown:
            assert response.status_code == 200
            return
        assert response.status_code == 302 and grown == {"Guidelines": 1}
        assert Guidelines.objects.get().text == last(fields, "text").strip()


# ---- Anonymous: Prolific entry, log-in


IDS = st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,100}", fullmatch=True), ODD)


@given(data=posted(PROLIFIC_PID=IDS, STUDY_ID=IDS, SESSION_ID=IDS))
def test_a_prolific_link_signs_its_participant_in_or_says_what_is_wrong(campaign, data):
    visitor = Client()
    with rolled_back():
        before = labeling_counts()
        url = reverse("labeling:prolific_entry", args=[campaign.slug])
        response = send(visitor, url, data, get=True)
        grown = growth(before)
        if response.status_code == 302:
            assert grown == {"PlatformWorker": 1, "PlatformSession": 1}
            assert response.url == reverse("labeling:task_next", args=[campaign.slug])
        else:
            assert response.status_code == 400 and not grown


@given(
    data=posted(
        username=st.sampled_from(["owner", "other", "nobody", "OWNER"]),
        password=st.sampled_from(["owner-pass-123", "wrong"]),
    )
)
def test_the_login_form_signs_in_with_the_right_password_only(owner, data):
    visitor = Client()
    with rolled_back():
        response = send(visitor, reverse("login"), data)
        right = (last(data, "username"), last(data, "password")) == ("owner", "owner-pass-123")
        assert (response.status_code == 302) == right, response.status_code


@given(
    page=st.sampled_from(["guidelines", "pause", "golditem"]),
    params=posted(**{"from": st.just("1"), "campaign": st.just("1"), "worker": st.just("1")}),
)
def test_the_admins_add_pages_take_any_query(client, researcher, consent_asked, page, params):
    client.force_login(researcher)
    response = send(client, reverse(f"admin:labeling_{page}_add"), params, get=True)
    assert response.status_code == 200
