"""benchmarks.import_scale on 200 rows and SQLite: the file it writes reads back with the
kinds it says, the real import command holds every row, and a wrong count is told."""

from __future__ import annotations

from dataclasses import replace

from benchmarks.import_scale import import_file, problems, write_rows
from models_backend.dialogue import DIVERGED_EARLY, REGULAR, REPEATED_ROLE
from training.data import iter_hh_rlhf, row_kinds


def test_the_synthetic_file_is_deterministic_and_holds_both_irregular_kinds(tmp_path):
    first = write_rows(tmp_path / "a.jsonl", 200, seed=3)
    second = write_rows(tmp_path / "b.jsonl", 200, seed=3)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.kinds == {REGULAR: 198, DIVERGED_EARLY: 1, REPEATED_ROLE: 1}
    assert row_kinds(iter_hh_rlhf(first.path)) == first.kinds


def test_a_sqlite_import_holds_every_row_and_a_wrong_count_is_told(tmp_path):
    written = write_rows(tmp_path / "rows.jsonl", 200, seed=0)
    measured = import_file("sqlite", written, postgres_url="", workdir=tmp_path)
    assert measured.counts == {"judgments": 200, "conversations": 200, "candidates": 400}
    assert measured.peak_mib > 0 and measured.seconds > 0
    assert problems(measured, written) == []

    wrong = problems(measured, replace(written, rows=201))
    assert wrong[:3] == [
        "sqlite: 200 judgments in the database, 201 expected",
        "sqlite: 200 conversations in the database, 201 expected",
        "sqlite: 400 candidates in the database, 402 expected",
    ]
    assert len(wrong) == 4 and "imported 201 comparisons" in wrong[3]
    other_kinds = replace(written, kinds={REGULAR: 199, DIVERGED_EARLY: 1, REPEATED_ROLE: 0})
    [told] = problems(measured, other_kinds)
    assert "regular 199" in told
