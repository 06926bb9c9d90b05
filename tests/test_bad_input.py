"""Inputs the fuzz tests (tests/test_fuzz_*.py) found mishandled, each pinned on its own:
refused with a clear message (a line number for files), nothing written, never a 500.

Actors: the researcher who runs the import commands.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Conversation, GoldItem, Judgment
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
