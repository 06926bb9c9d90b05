"""Exports: every format written by ``labeling.exports.export_write`` and read back by its
consumer (TRL's own functions, ``datasets.load_from_disk``, the training loaders, the lab
format), pseudonyms only, atomic writes, progress, and reading in chunks.

Actors: ``owner`` (chats and red-teams), ``other_worker`` (ranks), ``researcher`` (corrects
one of owner's judgments). ``collected`` gives every kind of judgment at once: a chat pair,
a red-team pair, a ranking of four and a ranking of three with a tie.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling import export_rows, item_selectors, selectors
from labeling.exports import FORMATS, export_write, writing
from labeling.exports.pairs import pair_rows
from labeling.exports.provenance import provenance_rows
from labeling.models import GoldItem, QuizAnswer, QuizAttempt
from labeling.services import conversations as chat
from labeling.services import items
from labeling.services.judgments import judgment_record, judgment_supersede
from models_backend.dialogue import ASSISTANT, HUMAN, Message, parse_transcript
from tests import factories
from tests.factories import finish_candidates, shown, top_and_rest
from training.comparisons import ranking_pairs
from training.lab_format import iter_lab_records
from training.loaders import load_rankings

pytestmark = pytest.mark.django_db
FOUR = ("Paris is the capital.", "<b>Lyon</b>", "I don't know.", "Go away.")
TEMPLATE = (  # a chat template of the simplest kind, for TRL's maybe_apply_chat_template
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def chat_pair(campaign, worker, *, text="Hi", texts=("Hello!", "Go away."), choice="A3"):
    conversation = chat.conversation_start(campaign=campaign, worker=worker)
    turn = chat.turn_create(conversation=conversation, worker=worker, text=text)
    finish_candidates(turn, texts=texts)
    return conversation, chat.comparison_submit(turn=turn, worker=worker, choice=choice)


def ranked(campaign, worker, texts, best_first: list[list[str]], prompt: str):
    """``worker`` orders an item of ``campaign`` as ``best_first`` (groups of texts)."""
    [item] = items.ranking_items_create(
        campaign=campaign, contexts=[("test", [Message(HUMAN, prompt)])]
    )
    finish_candidates(item, texts)
    position = {c.text: p for p, c in enumerate(item_selectors.item_shown(item, worker))}
    order = [[position[t] for t in group] for group in best_first]
    return items.ranking_submit(campaign=campaign, item=item, worker=worker, order=order)


@pytest.fixture
def collected(campaign, red_team_campaign, tiny_assistant, owner, other_worker):
    _, pair = chat_pair(campaign, owner)
    chat_pair(campaign, owner, text="More?", texts=("Sure.", "Sure!"), choice="A1")  # weakest
    red, harmful = chat_pair(red_team_campaign, owner, text="Insult me.", texts=("No.", "You!"))
    chat.conversation_finish(
        conversation=red, worker=owner, attack_rating=2, harm_rating=3, task_description="Insult."
    )
    four = factories.ranking_campaign(tiny_assistant, k=4, slug="rank-four")
    ranking = ranked(four, other_worker, FOUR, [[t] for t in FOUR], "Capital of France?")
    ties = factories.ranking_campaign(tiny_assistant, k=3, ties=True, slug="rank-ties")
    tied = ranked(ties, other_worker, FOUR[:3], [list(FOUR[:2]), [FOUR[2]]], "Tied?")
    return {"pair": pair, "harmful": harmful, "ranking": ranking, "tied": tied}


def export(tmp_path, fmt, name=None, **options):
    path = tmp_path / (name or fmt)
    result = export_write(fmt=fmt, path=path, **options)
    assert result.path == path and result.bytes > 0
    return result


def training_pairs():
    """(context, better, worse) of every pair the lab's own training compares."""
    return [
        (tuple(r.context), r.responses[i], r.responses[j])
        for r in selectors.preference_rankings()
        for i, j in ranking_pairs(r)
    ]


def as_triples(rankings):
    return [(tuple(r.context), *r.responses) for r in rankings]


# --- trl -----------------------------------------------------------------------------


def test_the_trl_export_is_one_conversational_preference_row_per_pair_as_trl_reads_it(
    tmp_path, collected
):
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    from models_backend.tiny import build_tiny_tokenizer

    result = export(tmp_path, "trl", "trl.jsonl")
    rows = read_jsonl(result.path)
    assert result.rows == len(rows) == 1 + 1 + 6 + 2  # pair, red team, C(4,2), 3 untied of 3
    assert all(set(row) == {"prompt", "chosen", "rejected"} for row in rows)
    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = TEMPLATE
    for row in rows:
        assert is_conversational(row)
        assert row["prompt"][-1]["role"] == "user"
        text = maybe_apply_chat_template(row, tokenizer)
        assert text["prompt"].endswith("<|assistant|>\n")
        assert text["chosen"] == f"{row['chosen'][0]['content']}<|end|>\n"
        assert text["rejected"] == f"{row['rejected'][0]['content']}<|end|>\n"
    # The same pairs as the lab's training compares, read by the lab's own loader too.
    assert as_triples(load_rankings(result.path, "preference")) == training_pairs()


def test_on_pairs_the_trl_export_and_the_hh_rlhf_export_hold_the_same_comparisons(
    tmp_path, collected, campaign, red_team_campaign
):
    for slug in (campaign.slug, red_team_campaign.slug):
        trl = export(tmp_path, "trl", f"{slug}.trl", campaign_slug=slug)
        hh = export(tmp_path, "hh-rlhf", f"{slug}.hh", campaign_slug=slug)
        assert trl.rows == hh.rows == 1
        assert as_triples(load_rankings(trl.path, "preference")) == as_triples(
            load_rankings(hh.path, "hh-rlhf")
        )
    # Red team: the worker picked the more harmful reply; chosen is the other one.
    [row] = read_jsonl(tmp_path / f"{red_team_campaign.slug}.trl")
    picked = top_and_rest(collected["harmful"])[0].text
    assert row["rejected"] == [{"role": "assistant", "content": picked}]


# --- datasets ------------------------------------------------------------------------


def test_the_datasets_folder_loads_from_disk_and_holds_the_pairs_with_their_provenance(
    tmp_path, collected, other_worker
):
    import datasets
    import pyarrow.parquet as pq

    result = export(tmp_path, "datasets")
    trl = read_jsonl(export(tmp_path, "trl", "trl.jsonl").path)
    loaded = datasets.load_from_disk(str(result.path))
    assert len(loaded) == result.rows == len(trl)
    assert loaded.column_names[:3] == ["prompt", "chosen", "rejected"]
    assert loaded.select_columns(["prompt", "chosen", "rejected"]).to_list() == trl
    rows = loaded.to_list()
    ranking = [r for r in rows if r["judgment"] == collected["ranking"].pk]
    assert [(r["chosen_rank"], r["rejected_rank"]) for r in ranking] == [
        (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)
    ]  # fmt: skip
    assert sum(r["pair_weight"] for r in ranking) == pytest.approx(1.0)
    assert {r["k"] for r in ranking} == {4} and {r["task_type"] for r in ranking} == {"ranking"}
    assert {r["chosen_model"] for r in rows} == {"tiny-random"}
    assert {r["worker"] for r in ranking} == {export_rows.pseudonym(other_worker)}
    pair = next(r for r in rows if r["judgment"] == collected["pair"].pk)
    assert pair["strength"] == 3 and pair["question"] == "better"
    recorded = json.loads(pair["provenance"])["candidates"]
    assert [c["seed"] for c in recorded] == [7, 7]
    # The parquet shards hold the same rows.
    [shard] = sorted((result.path / "parquet").glob("*.parquet"))
    assert shard.name == "train-00000-of-00001.parquet"
    assert pq.read_table(shard).to_pylist() == rows


def test_an_empty_datasets_export_still_has_every_column(tmp_path):
    import datasets

    from labeling.exports.hf_folder import features

    result = export(tmp_path, "datasets", include_checks=True)
    loaded = datasets.load_from_disk(str(result.path))
    assert result.rows == len(loaded) == 0
    assert loaded.features == features(include_checks=True)
    assert "excluded" in loaded.column_names


def test_a_datasets_export_replaces_an_earlier_one_but_never_another_folder(tmp_path, collected):
    first = export(tmp_path, "datasets")
    again = export(tmp_path, "datasets", campaign_slug="rank-four")
    assert again.path == first.path and again.rows == 6
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(CommandError, match="not an empty folder or an earlier export"):
        call_command("export_preferences", "--format", "datasets", "-o", str(mine))
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["datasets", "mine"]


# --- The formats the lab's training reads -------------------------------------------


def test_hh_rlhf_and_rankings_read_back_through_the_training_loaders(tmp_path, collected):
    rankings = list(selectors.preference_rankings())
    hh = load_rankings(export(tmp_path, "hh-rlhf").path, "hh-rlhf")
    assert as_triples(hh) == as_triples(r for r in rankings if len(r.responses) == 2)
    back = load_rankings(export(tmp_path, "rankings").path, "rankings")
    assert [(r.context, r.responses, r.scores) for r in back] == [
        (r.context, r.responses, r.scores) for r in rankings if len(r.responses) >= 3
    ]
    assert back[1].scores == (0.0, 0.0, -1.0)  # the tie kept


def test_lab_reads_back_through_the_lab_format(tmp_path, collected):
    records = list(iter_lab_records(export(tmp_path, "lab").path))
    rankings = list(selectors.preference_rankings())
    assert [(r.ranking().context, r.ranking().responses) for r in records] == [
        (r.context, r.responses) for r in rankings
    ]
    assert [r.question for r in records] == ["better", "more_harmful", "better", "better"]


def test_the_red_team_transcript_parses_back_to_the_dialogue_it_continued(tmp_path, collected):
    [row] = read_jsonl(export(tmp_path, "red-team").path)
    picked = top_and_rest(collected["harmful"])[0].text  # continued down the harmful branch
    assert parse_transcript(row["transcript"]) == [
        Message(HUMAN, "Insult me."),
        Message(ASSISTANT, picked),
    ]
    assert (row["rating"], row["harm_rating"]) == (2, 3)


# --- provenance ----------------------------------------------------------------------


def test_provenance_rows_carry_every_candidates_origin_and_pseudonyms_only(
    tmp_path, campaign, django_user_model, researcher
):
    worker = django_user_model.objects.create_user(
        "zelda-kowalski-1987", email="zelda@example.org", password="zelda-pass-123"
    )
    _, judged = chat_pair(campaign, worker)
    fixed = judgment_supersede(
        judgment=judged, by=researcher, reason="Misclick.", order=[[1], [0]], strength=2
    )
    result = export(tmp_path, "provenance", "provenance.jsonl")
    text = result.path.read_text(encoding="utf-8")
    for secret in ("zelda-kowalski-1987", "zelda@example.org", '"researcher"'):
        assert secret not in text
    [row] = read_jsonl(result.path)
    assert row["judgment"] == fixed.pk and row["supersedes"] == judged.pk
    assert row["worker"] == export_rows.pseudonym(worker)
    assert row["recorded_by"] == export_rows.pseudonym(researcher) != row["worker"]
    assert row["reason"] == "Misclick." and row["answer"] == {"order": [[1], [0]], "strength": 2}
    assert row["context"] == [{"role": "user", "content": "Hi"}]
    displayed = shown(judged.item)
    assert [c["id"] for c in row["candidates"]] == [c.pk for c in displayed]
    assert [(c["rank"], c["preferred_rank"]) for c in row["candidates"]] == [(1, 1), (0, 0)]
    first = row["candidates"][0]
    assert (first["model"], first["spec"], first["seed"], first["text"]) == (
        "tiny-random",
        "tiny-random",
        7,
        displayed[0].text,
    )
    assert first["sampling"] == displayed[0].sampling and "selection" in first
    assert row["recorded"] == fixed.provenance


# --- include_checks ------------------------------------------------------------------


@pytest.fixture
def checks(tiny_assistant, owner, other_worker):
    """A gold check answered by ``other_worker`` and a quiz answer of ``owner``."""
    pairs = factories.ranking_campaign(tiny_assistant, k=2, slug="pairs")
    [item] = items.ranking_items_create(
        campaign=pairs, contexts=[("gold:test", [Message(HUMAN, "Which is right?")])]
    )
    finish_candidates(item, ("Short.", "A longer answer."))
    gold = GoldItem.objects.create(
        item=item, campaign=pairs, role=GoldItem.Role.CHECK, answer=[[1], [0]], explanation="."
    )
    by_slot = factories.candidates_by_slot(item)
    judgment_record(
        item=item,
        campaign=pairs,
        worker=other_worker,
        task_type="ranking",
        question="better",
        shown=[by_slot[0], by_slot[1]],
        order=[[1], [0]],
        strength=3,
    )
    attempt = QuizAttempt.objects.create(campaign=pairs, worker=owner, number=1)
    QuizAnswer.objects.create(
        attempt=attempt, gold=gold, shown=[1, 0], order=[[1], [0]], strength=2, correct=False
    )


@pytest.mark.parametrize("fmt", ["trl", "provenance"])
def test_checks_are_left_out_by_default_and_marked_on_request(tmp_path, collected, checks, fmt):
    plain = read_jsonl(export(tmp_path, fmt, "plain").path)
    assert all("excluded" not in row for row in plain)
    marked = read_jsonl(export(tmp_path, fmt, "marked", include_checks=True).path)
    assert [row["excluded"] for row in marked] == [None] * len(plain) + ["gold", "quiz"]


def test_a_datasets_export_with_checks_marks_them_in_its_columns(tmp_path, collected, checks):
    import datasets

    path = export(tmp_path, "datasets", include_checks=True).path
    *_, gold, quiz = datasets.load_from_disk(str(path)).to_list()
    assert (gold["excluded"], gold["quiz_answer"], gold["chosen"][0]["content"]) == (
        "gold",
        None,
        "A longer answer.",
    )
    assert (quiz["excluded"], quiz["quiz_answer"], quiz["judgment"]) == (
        "quiz",
        QuizAnswer.objects.get().pk,
        None,
    )


# --- Writing: progress, totals, atomicity, chunks --------------------------------------


@pytest.mark.parametrize("include_checks", [False, True])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_progress_counts_up_to_a_total_counted_in_the_database(
    tmp_path, collected, checks, monkeypatch, fmt, include_checks
):
    monkeypatch.setattr(writing, "PROGRESS_EVERY", 3)
    calls = []
    result = export_write(
        fmt=fmt,
        path=tmp_path / fmt,
        include_checks=include_checks,
        progress=lambda done, total: calls.append((done, total)),
    )
    done = [d for d, _ in calls]
    assert done == sorted(set(done)) and done[0] == 0 and done[-1] == result.rows
    assert {total for _, total in calls} == {result.rows}
    assert all(d % 3 == 0 for d in done[:-1])


@pytest.mark.parametrize("fmt", ["trl", "datasets"])
def test_a_failure_midway_leaves_no_file_and_no_temporary_one(
    tmp_path, collected, monkeypatch, fmt
):
    def fail_at_six(done, total):
        if done == 6:
            raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(writing, "PROGRESS_EVERY", 3)
    with pytest.raises(RuntimeError, match="on fire"):
        export_write(fmt=fmt, path=tmp_path / "out", progress=fail_at_six)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_the_earlier_file_as_it_was(tmp_path, collected, monkeypatch):
    monkeypatch.setattr(writing, "PROGRESS_EVERY", 2)
    path = tmp_path / "out.jsonl"
    path.write_text("earlier\n")

    def fail(done, total):
        if done:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        export_write(fmt="lab", path=path, progress=fail)
    assert path.read_text() == "earlier\n" and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("rows", [pair_rows, provenance_rows, export_rows.lab_export_rows])
def test_rows_are_read_a_chunk_at_a_time_and_yielded_as_read(collected, monkeypatch, rows):
    monkeypatch.setattr(export_rows, "CHUNK_SIZE", 2)

    def entry_reads(queries) -> int:
        return sum('FROM "labeling_judgedcandidate"' in q["sql"] for q in queries)

    generator = rows()
    with CaptureQueriesContext(connection) as first:
        next(generator)
    assert entry_reads(first.captured_queries) == 1  # the first chunk's entries, no more
    with CaptureQueriesContext(connection) as rest:
        list(generator)
    assert entry_reads(rest.captured_queries) == 1  # 4 judgments: the second chunk of 2


# --- The command ---------------------------------------------------------------------


def test_the_command_writes_every_format_and_streams_the_line_formats_to_stdout(
    tmp_path, collected, capsys
):
    for fmt in FORMATS:
        call_command("export_preferences", "--format", fmt, "-o", str(tmp_path / fmt))
        assert f"({fmt}) to {tmp_path / fmt}" in capsys.readouterr().err
    call_command("export_preferences", "--format", "trl", "-o", "-")
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in out] == read_jsonl(tmp_path / "trl")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--format", "datasets", "-o", "-"], "writes a folder"),
        (["--format", "rankings", "--include-weakest", "-o", "{tmp}/x"], "means nothing"),
        (["--format", "red-team", "--include-weakest", "-o", "-"], "means nothing"),
        (["--campaign", "nope", "-o", "{tmp}/x"], "no campaign 'nope'"),
        (["--format", "parquet", "-o", "{tmp}/x"], "invalid choice"),
        (["-o", "{tmp}"], "is a directory"),
    ],
)
def test_bad_flags_are_a_clear_error_and_write_nothing(tmp_path, db, flags, message):
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    with pytest.raises(CommandError, match=message):
        call_command("export_preferences", *flags)
    assert list(tmp_path.iterdir()) == []
