"""Agreement between workers (DESIGN §8): raw agreement on direction and Krippendorff's alpha
with the ordinal metric, with bootstrap intervals. Pure: numpy and the ``krippendorff``
package; the panel's selectors build the table from the database.

Answers are oriented to the item's *candidates* (their slots), never to the positions a worker
saw: two workers who saw a pair in opposite orders and pressed mirror-image buttons gave the
same answer. And to the *preference*: for "which is more harmful?" the less harmful response is
the preferred one (``training.questions.preferred_first``), so one scale serves both questions.

Two scales:

- a pair with a strength: 1..8, slot 0 against slot 1 (``pair_value``): 1 = slot 0 much
  better, 2 better, 3 slightly better, 4 about the same (slot 0); 5 about the same (slot 1),
  6 slightly, 7 better, 8 = slot 1 much better. The scale's middle (4.5) is never a value:
  every answer has a direction.
- a ranking (or a pair without a strength): one unit per *candidate pair* of the item, valued
  1 (the lower slot preferred), 2 (tied), 3 (the higher slot preferred) (``ranking_values``).
  A tie is the scale's middle.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import combinations

import krippendorff
import numpy as np

from training.questions import Order, preferred_first

PAIR_SCALE = tuple(range(1, 9))  # slot 0 much better … slot 1 much better
DIRECTION_SCALE = (1, 2, 3)  # lower slot preferred, tied, higher slot preferred


@dataclass(frozen=True, eq=False)
class Table:
    """Answers by unit, as counts: ``counts[u, v]`` judgments gave unit u the scale's v-th
    value (which worker gave it matters to neither statistic). A unit is an item (pairs) or a
    candidate pair of an item (rankings); ``items[u]`` numbers its item, which the bootstrap
    resamples whole. Build one with ``Table.of``."""

    counts: np.ndarray  # (units, len(scale)) integers
    items: np.ndarray  # (units,) an integer per item
    scale: tuple[int, ...]  # the ordered values a unit can take (PAIR_SCALE, DIRECTION_SCALE)

    @classmethod
    def of(
        cls,
        units: Sequence[Sequence[int]],
        items: Sequence[Hashable] | None = None,
        scale: tuple[int, ...] = PAIR_SCALE,
    ) -> Table:
        """``units[u]``: the values the judgments of unit u gave; ``items[u]``: its item
        (default: every unit an item of its own)."""
        items = range(len(units)) if items is None else items
        if len(items) != len(units):
            raise ValueError("one item per unit")
        index = {v: i for i, v in enumerate(scale)}
        counts = np.zeros((len(units), len(scale)), dtype=np.int64)
        for u, unit in enumerate(units):
            for value in unit:
                if value not in index:
                    raise ValueError(f"{value!r} is not on the scale {scale}")
                counts[u, index[value]] += 1
        codes = {item: i for i, item in enumerate(dict.fromkeys(items))}
        return cls(counts, np.array([codes[i] for i in items], dtype=np.int64), tuple(scale))

    def overlapping(self) -> Table:
        """Only units judged at least twice: the others hold no pair to compare."""
        keep = self.counts.sum(axis=1) >= 2
        return Table(self.counts[keep], self.items[keep], self.scale)

    def item_count(self) -> int:
        return len(np.unique(self.items))

    def judgment_count(self) -> int:
        return int(self.counts.sum())


def preferred_slots(question: str, shown_slots: Sequence[int], order: Order) -> list[list[int]]:
    """An answer as the item's slots, preferred first: ``shown_slots`` are the slots in the
    order the worker saw them, ``order`` the answer's groups of display positions, top first
    under ``question``."""
    return [[shown_slots[p] for p in group] for group in preferred_first(question, order)]


def pair_value(preferred_slot: int, strength: int) -> int:
    """A pair's answer on 1..8 oriented to the item's slots: ``preferred_slot`` (0 or 1) is
    the candidate the answer prefers, ``strength`` 1 (about the same) to 4 (much)."""
    if preferred_slot not in (0, 1) or strength not in (1, 2, 3, 4):
        raise ValueError("a pair's answer is a preferred slot (0, 1) and a strength (1-4)")
    return 5 - strength if preferred_slot == 0 else 4 + strength


def ranking_values(groups: Sequence[Sequence[int]]) -> dict[tuple[int, int], int]:
    """A ranking as ``{(lower slot, higher slot): 1, 2 or 3}`` for every candidate pair:
    ``groups`` are the item's slots, preferred first, a group being a tie."""
    place = {slot: g for g, group in enumerate(groups) for slot in group}
    return {
        (a, b): 1 if place[a] < place[b] else 2 if place[a] == place[b] else 3
        for a, b in combinations(sorted(place), 2)
    }


def raw_agreement(table: Table) -> float | None:
    """The share of pairs of judgments of one unit that agree on direction: both on the same
    side of the scale's middle (for a ranking's candidate pair: both prefer the same slot, or
    both tie them). Pooled: every pair of judgments of every unit weighs one, so a unit judged
    n times gives n(n-1)/2 pairs, and a ranking of K gives C(K, 2) units. The strength of a
    pair's answer does not matter here (alpha weighs it). None: no unit was judged twice."""
    scale = np.asarray(table.scale, dtype=float)
    middle = (scale[0] + scale[-1]) / 2
    n = table.counts.sum(axis=1)
    pairs = (n * (n - 1) // 2).sum()
    agreeing = 0
    for side in (scale < middle, scale == middle, scale > middle):
        c = table.counts[:, side].sum(axis=1)
        agreeing += (c * (c - 1) // 2).sum()
    return float(agreeing / pairs) if pairs else None


def alpha_ordinal(table: Table) -> float | None:
    """Krippendorff's alpha with the ordinal metric (``krippendorff.alpha`` on value counts:
    units × the scale's values). None where alpha is undefined: no unit judged twice, or a
    single value used throughout (no disagreement to expect)."""
    counts = table.overlapping().counts
    if not len(counts) or np.count_nonzero(counts.sum(axis=0)) < 2:
        return None
    return float(
        krippendorff.alpha(
            value_counts=counts, value_domain=list(table.scale), level_of_measurement="ordinal"
        )
    )


def bootstrap(
    stat: Callable[[Table], float | None], table: Table, resamples: int = 1000, seed: int = 0
) -> tuple[float, float] | None:
    """The 95% percentile interval of ``stat`` over ``resamples`` tables of items drawn with
    replacement from the items judged at least twice (all of an item's units go together:
    a ranking's candidate pairs are not independent). Resamples where ``stat`` is undefined
    are dropped; None when none is defined."""
    overlap = table.overlapping()
    items, inverse = np.unique(overlap.items, return_inverse=True)
    if not len(items):
        return None
    by_item = np.argsort(inverse, kind="stable")  # units grouped by item
    sizes = np.bincount(inverse)
    starts = np.cumsum(sizes) - sizes
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        drawn = rng.integers(len(items), size=len(items))
        # The units of the drawn items, in one vectorised gather.
        n = sizes[drawn]
        offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        index = by_item[np.repeat(starts[drawn], n) + offsets]
        sample = Table(overlap.counts[index], overlap.items[index], table.scale)
        if (value := stat(sample)) is not None and np.isfinite(value):
            values.append(value)
    if not values:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
