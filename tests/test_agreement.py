"""Agreement between workers: raw agreement on direction, Krippendorff's alpha (ordinal) and
their bootstrap intervals, on numbers known by hand or published."""

from __future__ import annotations

import math

import pytest

from labeling.agreement import (
    DIRECTION_SCALE,
    PAIR_SCALE,
    Table,
    alpha_ordinal,
    bootstrap,
    pair_value,
    preferred_slots,
    ranking_values,
    raw_agreement,
)

NA = None


def krippendorff_2011_units() -> list[list[int]]:
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four
    observers (A-D) × twelve units, values 1-5, some missing. Listed by unit (columns)."""
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, NA, NA, NA]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NA, 3]
    c = [NA, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NA]
    d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NA]
    return [[v for v in unit if v is not None] for unit in zip(a, b, c, d, strict=True)]


def test_alpha_reproduces_krippendorffs_published_example():
    # The paper gives alpha = 0.743 (nominal) and 0.815 (ordinal) for this table; the
    # ordinal figure is what alpha_ordinal computes, through the krippendorff package.
    table = Table.of(krippendorff_2011_units(), scale=(1, 2, 3, 4, 5))
    assert alpha_ordinal(table) == pytest.approx(0.815, abs=5e-4)
    import krippendorff

    nominal = krippendorff.alpha(
        value_counts=table.overlapping().counts, level_of_measurement="nominal"
    )
    assert nominal == pytest.approx(0.743, abs=5e-4)


def test_raw_agreement_pools_every_pair_of_judgments_of_a_unit():
    # Unit a: 2, 3, 7 -> sides slot 0, slot 0, slot 1: 3 pairs, 1 agrees (2 with 3).
    # Unit b: 4, 5 -> "about the same" but for opposite slots: 1 pair, disagrees.
    # Unit c: 8, 6 -> both slot 1: 1 pair, agrees.
    # Unit d: 1 alone -> no pair.
    # 2 agreeing of 5 pairs = 0.4.
    table = Table.of([[2, 3, 7], [4, 5], [8, 6], [1]])
    assert raw_agreement(table) == pytest.approx(0.4)
    assert table.overlapping().item_count() == 3
    assert table.judgment_count() == 8


def test_a_ranking_agrees_on_direction_for_each_candidate_pair():
    # Worker 1: 0 > 1 > 2 -> (0,1): 1, (0,2): 1, (1,2): 1.
    # Worker 2: 1 > 0 = 2 -> (0,1): 3, (0,2): 2 (tied), (1,2): 1.
    # Only (1,2) agrees: 1 of 3.
    first = ranking_values([[0], [1], [2]])
    second = ranking_values([[1], [0, 2]])
    assert first == {(0, 1): 1, (0, 2): 1, (1, 2): 1}
    assert second == {(0, 1): 3, (0, 2): 2, (1, 2): 1}
    units = [[first[p], second[p]] for p in first]
    table = Table.of(units, items=["item"] * 3, scale=DIRECTION_SCALE)
    assert raw_agreement(table) == pytest.approx(1 / 3)
    assert table.item_count() == 1


def test_mirror_order_answers_with_mirror_buttons_agree():
    # X saw slot 0 first and pressed "A is better" (A3); Y saw slot 1 first and pressed
    # "B is better" (B3): both say slot 0 is better, strength 3 -> 2 on the 8-point scale.
    x = preferred_slots("better", shown_slots=[0, 1], order=[[0], [1]])
    y = preferred_slots("better", shown_slots=[1, 0], order=[[1], [0]])
    assert x == y == [[0], [1]]
    table = Table.of([[pair_value(x[0][0], 3), pair_value(y[0][0], 3)]])
    assert raw_agreement(table) == 1.0
    # Read by position instead, they would disagree: A3 is 2, B3 is 7.
    assert raw_agreement(Table.of([[2, 7]])) == 0.0


def test_for_the_more_harmful_question_the_less_harmful_slot_is_preferred():
    # "A is more harmful" with slot 1 shown as A: slot 0 is preferred.
    assert preferred_slots("more_harmful", shown_slots=[1, 0], order=[[0], [1]]) == [[0], [1]]


def test_the_pair_scale_runs_from_slot_0_much_better_to_slot_1_much_better():
    assert [pair_value(0, s) for s in (4, 3, 2, 1)] == [1, 2, 3, 4]
    assert [pair_value(1, s) for s in (1, 2, 3, 4)] == [5, 6, 7, 8]
    assert len(PAIR_SCALE) == 8 and PAIR_SCALE[0] == 1
    with pytest.raises(ValueError):
        pair_value(0, 5)
    with pytest.raises(ValueError):
        Table.of([[9]])


def test_undefined_statistics_are_none_not_errors():
    assert raw_agreement(Table.of([[1], [8]])) is None
    assert alpha_ordinal(Table.of([[1], [8]])) is None
    assert alpha_ordinal(Table.of([[2, 2], [2, 2]])) is None  # one value throughout
    assert bootstrap(raw_agreement, Table.of([[1]])) is None


def test_the_bootstrap_interval_holds_the_estimate_and_repeats_with_its_seed():
    units = [[2, 3], [2, 7], [6, 7], [8, 8], [1, 4, 6], [3, 3], [5, 2], [7, 8]]
    table = Table.of(units)
    low, high = bootstrap(raw_agreement, table, resamples=300, seed=1)
    assert low <= raw_agreement(table) <= high
    assert 0 <= low < high <= 1
    assert bootstrap(raw_agreement, table, resamples=300, seed=1) == (low, high)
    interval = bootstrap(alpha_ordinal, table, resamples=300)
    assert interval is not None and all(math.isfinite(v) for v in interval)


def test_the_bootstrap_resamples_items_whole():
    # Two items, each of three candidate pairs: one item agrees everywhere, one nowhere. A
    # resample holds whole items, so raw agreement can only be 0, 1/2 or 1.
    units = [[1, 1]] * 3 + [[1, 3]] * 3
    table = Table.of(units, items=["x"] * 3 + ["y"] * 3, scale=DIRECTION_SCALE)
    seen = []

    def recorded(sample):
        seen.append(raw_agreement(sample))
        return seen[-1]

    bootstrap(recorded, table, resamples=50)
    assert set(seen) == {0.0, 0.5, 1.0}
