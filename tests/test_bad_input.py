"""Inputs the fuzz tests (tests/test_fuzz_*.py) found mishandled, each pinned on its own:
refused with a clear message (a line number for files), nothing written, never a 500.

Actors: the researcher who runs the import commands and uses the panel and the admin,
``owner`` (logs in), ``other_worker`` (ranks, skips, reports, takes the quiz).
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling import item_selectors
from labeling.models import (
    Assignment,
    Conversation,
    GoldItem,
    Guidelines,
    Judgment,
    QuizAnswer,
    Report,
)
from labeling.services.gold import gold_item_create
from labeling.services.items import ranking_items_create
from models_backend.dialogue import HUMAN, Message
from tests import factories
from training import lab_format

pytestmark = pytest.mark.django_db

CONTEXT = [{"role": "user", "content": "Capital of France?"}]
PAIR = {
    "chosen": "\n\nHuman: Capital of France?\n\nAssistant: Paris.",
    "rejected": "\n\nHuman: Capital of France?\n\nAssistant: Lyon.",
}
LAB = {
    "context": CONTEXT,
    "responses": ["Paris.", "Lyon."],
    "question": "better",
    "answer": {"order": [[0], [1]], "strength": 3},
}


def write_lines(path, *lines: str):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def import_preferences(path, *args):
    call_command("import_preferences", str(path), *args, stdout=StringIO())


# ---- Imports


def test_a_lone_surrogate_escape_is_refused_with_its_line_and_nothing_is_imported(tmp_path):
    # json.loads turns "\ud800" into half a surrogate pair, which no database stores: the
    # import used to fail in the middle of writing (UnicodeEncodeError), or name a later line.
    spoiled = json.dumps({**PAIR, "rejected": PAIR["rejected"] + "\ud800"})
    path = write_lines(tmp_path / "pairs.jsonl", json.dumps(PAIR), spoiled, json.dumps(PAIR))
    with pytest.raises(CommandError, match=r"pairs\.jsonl:2: a lone surrogate"):
        import_preferences(path)
    assert not Conversation.objects.exists()


def test_a_surrogate_pair_escape_is_text_and_imports(tmp_path):
    emoji = json.dumps({**PAIR, "rejected": PAIR["rejected"] + " 😀"})  # "\ud83d\ude00"
    assert "\\ud83d\\ude00" in emoji
    import_preferences(write_lines(tmp_path / "pairs.jsonl", emoji))
    assert Judgment.objects.get().item.candidates.get(slot=1).text == "Lyon. 😀"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("time_spent_ms", "slow", "'time_spent_ms' must be a whole number"),
        ("time_spent_ms", -1, "'time_spent_ms' must be a whole number"),
        ("time_spent_ms", 2**31, "'time_spent_ms' must be a whole number"),
        ("time_spent_ms", True, "'time_spent_ms' must be a whole number"),
        ("comment", ["nice"], "'comment' must be a string"),
        ("comment", "a\x00b", "'comment' contains a NUL character"),
        ("guideline_version", "v" * 65, "'guideline_version' is longer than 64"),
        ("guideline_version", 2, "'guideline_version' must be a string"),
        ("provenance", ["model"], "'provenance' must be an object"),
        ("provenance", {"seeds": ["\x00"]}, "'provenance' contains a NUL character"),
    ],
)
def test_a_lab_rows_kept_field_the_lab_cannot_store_is_refused_with_its_line(
    tmp_path, field, value, words
):
    # Before, these reached the database: a ValueError (time "slow"), PostgreSQL errors
    # (2^31, 65 characters, NUL), or were stored changed (a list comment became "['nice']").
    bad = json.dumps({**LAB, field: value})
    path = write_lines(tmp_path / "lab.jsonl", json.dumps(LAB), bad)
    with pytest.raises(CommandError, match=rf"lab\.jsonl:2: {words}"):
        import_preferences(path, "--format", "lab")
    assert not Judgment.objects.exists()


def test_a_lab_rows_kept_fields_are_imported_as_the_export_writes_them(tmp_path):
    kept = {
        "time_spent_ms": 2**31 - 1,
        "comment": None,
        "guideline_version": "v" * 64,
        "provenance": {"candidates": [{"model": "tiny"}]},
    }
    import_preferences(
        write_lines(tmp_path / "lab.jsonl", json.dumps({**LAB, **kept})), "--format", "lab"
    )
    judgment = Judgment.objects.get()
    assert (judgment.time_spent_ms, judgment.comment) == (2**31 - 1, "")
    assert (judgment.guideline_version, judgment.provenance) == ("v" * 64, kept["provenance"])


def test_the_lab_formats_limits_are_the_judgment_columns():
    column = Judgment._meta.get_field("guideline_version")
    assert column.max_length == lab_format.MAX_GUIDELINE_VERSION
    assert lab_format.MAX_TIME_SPENT_MS == 2**31 - 1  # PositiveIntegerField's top everywhere


def test_a_file_name_longer_than_the_source_column_is_cut_to_fit(tmp_path):
    # A file system takes names of 255 bytes; PostgreSQL refused "import:" + such a name
    # in the 200-character source columns (DataError, a traceback).
    path = write_lines(tmp_path / ("n" * 240 + ".jsonl"), json.dumps(PAIR))
    import_preferences(path)
    judgment = Judgment.objects.get()
    assert judgment.source == ("import:" + path.name)[:200]
    assert judgment.item.conversation.source == judgment.source


@pytest.mark.parametrize("slug", ["my data", "", "x" * 51, "données"])
def test_a_campaign_that_is_not_a_slug_is_refused_before_anything_is_read(tmp_path, slug):
    # Before, "my data" made a campaign whose address the panel cannot build (a 500 on
    # every page that links it), and a 51-character slug failed on PostgreSQL.
    path = write_lines(tmp_path / "pairs.jsonl", json.dumps(PAIR))
    with pytest.raises(CommandError, match="--campaign"):
        import_preferences(path, "--campaign", slug)
    assert not Conversation.objects.exists()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"explanation": "Paris is\x00 right."}, "NUL character"),
        ({"responses": ["Paris.", "Lyon.\ud800"]}, "lone surrogate"),
        ({"prompt": "Capital\udfff?"}, "lone surrogate"),
    ],
)
def test_a_gold_line_with_text_no_column_stores_is_refused_with_its_line(
    tmp_path, campaign, change, words
):
    good = {
        "prompt": "Capital of France?",
        "responses": ["Paris.", "Lyon."],
        "answer": 0,
        "explanation": "Paris is.",
    }
    path = write_lines(tmp_path / "gold.jsonl", json.dumps(good), json.dumps({**good, **change}))
    with pytest.raises(CommandError, match=f"line 2: .*{words}"):
        call_command(
            "import_gold",
            str(path),
            "--campaign",
            campaign.slug,
            "--role",
            "quiz",
            stdout=StringIO(),
        )
    assert not GoldItem.objects.exists()


# ---- Forms and query parameters


@pytest.fixture
def ranking_item(tiny_assistant):
    campaign = factories.ranking_campaign(tiny_assistant, k=3, slug="rank-three")
    [item] = ranking_items_create(campaign=campaign, contexts=[("test", [Message(HUMAN, "Hi?")])])
    factories.finish_candidates(item, ("one", "two", "three"))
    return item


def test_a_ranking_with_a_superscript_place_is_shown_again_not_a_500(
    client, other_worker, ranking_item
):
    # "²".isdigit() is true but int("²") fails: the refused answer's page, which shows the
    # posted places again, raised ValueError.
    client.force_login(other_worker)
    url = reverse("labeling:ranking_submit", args=["rank-three", ranking_item.pk])
    shown = ",".join(str(c.pk) for c in item_selectors.item_shown(ranking_item, other_worker))
    response = client.post(url, {"shown": shown, "place_0": "²", "place_1": "1", "place_2": "2"})
    assert response.status_code == 400 and "Give every response a place" in response.text
    assert not Judgment.objects.exists()


@pytest.fixture
def quiz_campaign(campaign):
    campaign.quiz_size = 1
    campaign.save()
    gold_item_create(
        campaign=campaign,
        role="quiz",
        context=[Message(HUMAN, "Question?")],
        responses=["right", "wrong"],
        answer=0,
        explanation="The first is right.",
    )
    return campaign


@pytest.mark.parametrize("answer", ["[]", "²", "x", "-1"])
def test_the_quiz_page_with_an_answer_that_is_not_a_number_is_the_quiz(
    client, other_worker, quiz_campaign, answer
):
    # Any answer parameter other than digits raised ValueError (a 500) at the quiz step.
    client.force_login(other_worker)
    response = client.get(reverse("labeling:quiz", args=[quiz_campaign.slug]), {"answer": answer})
    assert response.status_code == 200 and "Start the quiz" in response.text


def test_a_quiz_answer_naming_a_superscript_attempt_is_404(client, other_worker, quiz_campaign):
    client.force_login(other_worker)
    url = reverse("labeling:quiz", args=[quiz_campaign.slug])
    response = client.post(url, {"action": "answer", "attempt": "²", "gold": "1"})
    assert response.status_code == 404 and not QuizAnswer.objects.exists()


@pytest.mark.parametrize("params", [{"from": "²"}, {"campaign": "³"}])
def test_the_guidelines_admin_takes_a_superscript_in_its_prefill_query(
    client, researcher, campaign, params
):
    client.force_login(researcher)
    response = client.get(reverse("admin:labeling_guidelines_add"), params)
    assert response.status_code == 200


@pytest.mark.parametrize("name", ["panel:leaderboard", "panel:leaderboard_plot"])
def test_the_leaderboard_filtered_by_a_campaign_with_a_nul_is_404(client, researcher, name):
    # PostgreSQL refuses NUL in a query (DataError, a 500).
    client.force_login(researcher)
    assert client.get(reverse(name), {"campaign": "a\x00b"}).status_code == 404


def test_a_skip_keeps_a_draft_with_nul_characters_without_them(client, other_worker, ranking_item):
    # PostgreSQL's jsonb stores no NUL: the skip failed there with a 500.
    client.force_login(other_worker)
    client.get(reverse("labeling:task_next", args=["rank-three"]))
    response = client.post(
        reverse("labeling:task_skip", args=["rank-three"]),
        {"comment": "half\x00typed", "place_\x000": "1"},
    )
    assert response.status_code == 302
    assert Assignment.objects.get(worker=other_worker).draft == {
        "comment": "halftyped",
        "place_0": "1",
    }


def test_a_report_keeps_a_draft_with_nul_characters_without_them(
    client, other_worker, ranking_item
):
    client.force_login(other_worker)
    client.get(reverse("labeling:task_next", args=["rank-three"]))
    url = reverse("labeling:item_report", args=["rank-three", ranking_item.pk])
    client.post(url, {"reason": Report.Reason.values[0], "comment": "a\x00b"})
    assert Report.objects.get(worker=other_worker).item == ranking_item
    assert Assignment.objects.get(worker=other_worker).draft == {"comment": "ab"}


def test_a_username_longer_than_the_column_is_refused_by_the_login_form(client, owner):
    # Django sets the field's max_length without its validator: the name reached
    # django-axes, whose failure record (255 characters) PostgreSQL refused with a 500.
    response = client.post(reverse("login"), {"username": "x" * 300, "password": "owner-pass"})
    assert response.status_code == 200 and "Please enter a correct username" in response.text
    response = client.post(reverse("login"), {"username": "owner", "password": "owner-pass-123"})
    assert response.status_code == 302


@pytest.mark.parametrize("examples", ['{"Clear best": "a\\u0000b"}', '{"Half \\ud800": "x"}'])
def test_ranking_examples_with_an_escaped_nul_or_surrogate_are_refused_by_the_admin_form(
    client, researcher, tiny_assistant, examples
):
    # The textarea holds no NUL, but its JSON's escapes made one: PostgreSQL's jsonb
    # refused the example (a 500), and half a surrogate pair no database takes.
    ranking = factories.ranking_campaign(tiny_assistant, k=3)
    client.force_login(researcher)
    data = {"campaign": ranking.pk, "text": "Rank them.", "other_examples": examples}
    response = client.post(reverse("admin:labeling_guidelines_add"), data)
    assert response.status_code == 200 and "NUL character or a lone surrogate" in response.text
    assert not Guidelines.objects.exists()
