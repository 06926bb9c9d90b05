"""hh-rlhf rows, regular and irregular (DESIGN §3): split, round trip, kinds, streaming,
on small made-up rows and on the public harmless-base file (``tests.public_data``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models_backend.dialogue import (
    ASSISTANT,
    DIVERGED_EARLY,
    HUMAN,
    REGULAR,
    REPEATED_ROLE,
    Message,
    Pair,
    format_pair,
    split_pair,
)
from tests.public_data import harmless_base
from training.data import DataError, iter_hh_rlhf, read_hh_rlhf, row_kinds
from training.loaders import hh_rlhf_rankings, load_rankings

IRREGULAR_LINES = {  # line -> kind of the six irregular rows (3 + 3, SOURCE.md beside it)
    545: DIVERGED_EARLY,
    702: REPEATED_ROLE,
    974: DIVERGED_EARLY,
    1059: REPEATED_ROLE,
    1452: REPEATED_ROLE,
    1464: DIVERGED_EARLY,
}


def row(*messages: tuple[str, str]) -> str:
    return "".join(f"\n\n{label}: {text}" for label, text in messages)


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


REGULAR_ROW = {
    "chosen": row(("Human", "Hi"), ("Assistant", "Hello!")),
    "rejected": row(("Human", "Hi"), ("Assistant", "Go.")),
}
DIVERGED_ROW = {  # chosen ends with two Assistant messages in a row, rejected with one
    "chosen": row(
        ("Human", "Rob a house?"),
        ("Assistant", "Why?"),
        ("Human", "When?"),
        ("Assistant", "Please don't."),
        ("Assistant", "Talk to someone instead."),
    ),
    "rejected": row(
        ("Human", "Rob a house?"), ("Assistant", "Why?"), ("Human", "When?"), ("Assistant", "At 3.")
    ),
}
REPEATED_ROW = {  # two Assistant messages in a row, earlier, on both sides
    "chosen": row(
        ("Human", "Hi"),
        ("Assistant", "Hello."),
        ("Assistant", "How can I help?"),
        ("Human", "A joke?"),
        ("Assistant", "Knock knock."),
    ),
    "rejected": row(
        ("Human", "Hi"),
        ("Assistant", "Hello."),
        ("Assistant", "How can I help?"),
        ("Human", "A joke?"),
        ("Assistant", "No."),
    ),
}
SHARES_NOTHING_ROW = {
    "chosen": row(("Human", "Hi"), ("Assistant", "Hello!")),
    "rejected": row(("Human", "Bye"), ("Assistant", "Go.")),
}


# --- the public file ------------------------------------------------------------------


def test_every_row_of_the_public_harmless_file_round_trips_exactly():
    harmless = harmless_base()
    rows = [json.loads(line) for line in harmless.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1812
    for number, data in enumerate(rows, start=1):
        pair = split_pair(data["chosen"], data["rejected"])
        assert format_pair(pair) == {"chosen": data["chosen"], "rejected": data["rejected"]}, (
            f"line {number}"
        )


def test_the_whole_public_harmless_file_loads_with_six_irregular_rows_counted_three_and_three():
    harmless = harmless_base()
    pairs = read_hh_rlhf(harmless)
    assert len(pairs) == 1812
    assert row_kinds(pairs) == {REGULAR: 1806, DIVERGED_EARLY: 3, REPEATED_ROLE: 3}
    irregular = {n: p.kind for n, p in enumerate(pairs, start=1) if p.kind != REGULAR}
    assert irregular == IRREGULAR_LINES


def test_a_public_diverged_row_keeps_the_first_of_its_two_assistant_messages_in_the_reply():
    harmless = harmless_base()
    pair = read_hh_rlhf(harmless, limit=545)[-1]
    assert pair.kind == DIVERGED_EARLY
    assert [m.role for m in pair.context] == [HUMAN, ASSISTANT, HUMAN]
    assert pair.chosen.count("\n\nAssistant: ") == 1 and "\n\nAssistant:" not in pair.rejected


def test_a_public_repeated_role_row_keeps_its_two_assistant_messages_in_the_context():
    harmless = harmless_base()
    pair = read_hh_rlhf(harmless, limit=702)[-1]
    roles = [m.role for m in pair.context]
    assert pair.kind == REPEATED_ROLE
    assert roles[:6] == [HUMAN, ASSISTANT, HUMAN, ASSISTANT, ASSISTANT, HUMAN]
    assert roles[-1] == HUMAN and "\n\nAssistant:" not in pair.chosen + pair.rejected


# --- split_pair -----------------------------------------------------------------------


def test_a_regular_row_splits_at_the_last_assistant_turn():
    pair = split_pair(REGULAR_ROW["chosen"], REGULAR_ROW["rejected"])
    assert pair == Pair([Message(HUMAN, "Hi")], "Hello!", "Go.", REGULAR)


def test_a_diverged_row_shares_the_turns_before_its_first_differing_reply():
    pair = split_pair(DIVERGED_ROW["chosen"], DIVERGED_ROW["rejected"])
    assert pair.kind == DIVERGED_EARLY
    assert pair.context == [
        Message(HUMAN, "Rob a house?"),
        Message(ASSISTANT, "Why?"),
        Message(HUMAN, "When?"),
    ]
    assert pair.chosen == "Please don't.\n\nAssistant: Talk to someone instead."
    assert pair.rejected == "At 3."
    assert format_pair(pair) == DIVERGED_ROW


def test_a_repeated_role_row_keeps_its_two_assistant_messages_unmerged():
    pair = split_pair(REPEATED_ROW["chosen"], REPEATED_ROW["rejected"])
    assert pair.kind == REPEATED_ROLE
    assert pair.context == [
        Message(HUMAN, "Hi"),
        Message(ASSISTANT, "Hello."),
        Message(ASSISTANT, "How can I help?"),
        Message(HUMAN, "A joke?"),
    ]
    assert (pair.chosen, pair.rejected) == ("Knock knock.", "No.")
    assert format_pair(pair) == REPEATED_ROW


def test_two_human_messages_in_a_row_count_as_a_repeated_role():
    chosen = row(("Human", "Hi"), ("Human", "Anyone?"), ("Assistant", "Yes."))
    rejected = row(("Human", "Hi"), ("Human", "Anyone?"), ("Assistant", "No."))
    pair = split_pair(chosen, rejected)
    assert pair.kind == REPEATED_ROLE and [m.text for m in pair.context] == ["Hi", "Anyone?"]


def test_a_row_both_diverged_and_repeated_counts_as_diverged():
    shared = [("Human", "Hi"), ("Assistant", "Hello."), ("Assistant", "Yes?"), ("Human", "Q")]
    chosen = row(*shared, ("Assistant", "A1"), ("Assistant", "A2"))
    pair = split_pair(chosen, row(*shared, ("Assistant", "B")))
    assert (
        pair.kind == DIVERGED_EARLY
        and len(pair.context) == 4
        and pair.chosen == "A1\n\nAssistant: A2"
    )


@pytest.mark.parametrize(
    ("chosen", "rejected", "reason"),
    [
        (SHARES_NOTHING_ROW["chosen"], SHARES_NOTHING_ROW["rejected"], "share no message"),
        ("Human: Hi\n\nAssistant: Yes.", REGULAR_ROW["rejected"], "must start with"),
        (row(("Human", "Hi")), REGULAR_ROW["rejected"], "must contain"),
        (
            row(("Human", "Hi"), ("Human", "A"), ("Assistant", "x")),
            row(("Human", "Hi"), ("Human", "B"), ("Assistant", "x")),
            "must end with a Human message",
        ),
    ],
    ids=["shares-nothing", "no-human-start", "no-assistant", "no-shared-human-before-assistant"],
)
def test_a_malformed_row_is_refused_with_its_reason(chosen, rejected, reason):
    with pytest.raises(ValueError, match=reason):
        split_pair(chosen, rejected)


def test_a_pair_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        Pair([Message(HUMAN, "Hi")], "a", "b", "odd")


# --- reading a file -------------------------------------------------------------------


def test_a_row_sharing_nothing_is_refused_with_its_line_number(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [REGULAR_ROW, DIVERGED_ROW, SHARES_NOTHING_ROW])
    with pytest.raises(DataError, match=rf"^{path}:3: chosen and rejected share no message"):
        read_hh_rlhf(path)
    assert len(read_hh_rlhf(path, limit=2)) == 2


def test_rows_stream_one_at_a_time_so_a_later_bad_line_is_not_read_yet(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [REGULAR_ROW, REPEATED_ROW, "{not json"])
    pairs = iter_hh_rlhf(path)
    assert next(pairs).kind == REGULAR and next(pairs).kind == REPEATED_ROLE
    with pytest.raises(DataError, match=r"d.jsonl:3: bad JSON"):
        next(pairs)


def test_row_kinds_names_every_kind_even_when_none_is_seen():
    assert row_kinds([]) == {REGULAR: 0, DIVERGED_EARLY: 0, REPEATED_ROLE: 0}


def test_hh_rlhf_rankings_count_the_kinds_of_the_whole_file_whatever_the_limit(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [REGULAR_ROW, REGULAR_ROW, DIVERGED_ROW, REPEATED_ROW])
    rankings, kinds = hh_rlhf_rankings(path, limit=1)
    assert len(rankings) == 1 and kinds == {REGULAR: 2, DIVERGED_EARLY: 1, REPEATED_ROLE: 1}
    everything = load_rankings(path, "hh-rlhf")
    assert [r.source for r in everything] == [str(path)] * 4
    assert everything[2].responses == (
        "Please don't.\n\nAssistant: Talk to someone instead.",
        "At 3.",
    )
    assert [m.role for m in everything[3].context] == [HUMAN, ASSISTANT, ASSISTANT, HUMAN]
