"""Reads for the panel's Quality and Leaderboard pages: agreement between workers, position
and length bias, per-worker rows with flags, and model strengths from the judgments.

Every figure reads the current judgments that count as data (``selectors.current_judgments``
with "about the same" kept: it is an answer on the scale): gold checks and paused workers'
answers are left out, a correction replaces what it corrects. The per-worker rows are
``labeling.quality.worker_metrics``: they read every answer, so a paused worker's row still
says why.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations

from django.core.cache import cache
from django.db.models import F
from django.db.models.functions import Length
from scipy.stats import binomtest

from labeling import agreement, quality, ratings, selectors
from labeling.models import Campaign, JudgedCandidate, ModelVersion
from training.questions import preferred_first

TYPICAL_AGREEMENT = (0.63, 0.77)  # pairwise preferences between careful labelers (DESIGN §7)
AGREEMENT_FLOOR = 0.5  # a worker agreeing less than a coin would on a pair is flagged…
AGREEMENT_MIN_OVERLAP = 5  # …once they share this many items with others
AGREEMENT_RESAMPLES = 1000  # bootstrap resamples of items for agreement intervals
RATING_RESAMPLES = 100  # bootstrap resamples of battles for strength intervals (Chatbot Arena)
STATS_CACHE_SECONDS = 24 * 3600  # bootstraps are cached under a digest of their data


# --- What the figures read of a judgment.


@dataclass(frozen=True)
class Answer:
    """One current judgment, without its texts."""

    item: int  # the item (turn) id
    question: str
    strength: int | None  # 1-4 for a pair, None for a ranking or an import without one
    order: list[list[int]]  # groups of display positions, top first under the question
    slots: list[int]  # candidate slots in display order
    models: list[int | None]  # assistant model version ids in display order
    chars: list[int]  # text lengths in characters, in display order
    tokens: list[int | None]  # token counts in display order

    @property
    def preferred(self) -> list[list[int]]:
        """Groups of display positions, preferred first."""
        return preferred_first(self.question, self.order)


def answers(campaign: Campaign | None = None) -> list[Answer]:
    """Current counted judgments (of ``campaign``, or all), oldest first. Two queries."""
    qs = selectors.current_judgments(
        include_weakest=True, campaign_slug=campaign.slug if campaign else None
    )
    heads = {
        pk: (item, question, strength)
        for pk, item, question, strength in qs.values_list("pk", "item_id", "question", "strength")
    }
    entries = defaultdict(list)
    rows = (
        JudgedCandidate.objects.filter(judgment__in=qs)
        .annotate(
            slot=F("candidate__slot"),
            model=F("candidate__model_version_id"),
            kind=F("candidate__model_version__kind"),
            chars=Length("candidate__text"),
            tokens=F("candidate__token_count"),
        )
        .values_list("judgment_id", "position", "rank", "slot", "model", "kind", "chars", "tokens")
        .order_by("judgment_id", "position")
    )
    for judgment, *entry in rows:
        entries[judgment].append(entry)
    result = []
    assistant = ModelVersion.Kind.ASSISTANT
    for pk, (item, question, strength) in heads.items():
        shown = entries[pk]
        ranks = sorted({e[1] for e in shown})
        result.append(
            Answer(
                item=item,
                question=question,
                strength=strength,
                order=[[e[0] for e in shown if e[1] == r] for r in ranks],
                slots=[e[2] for e in shown],
                models=[e[3] if e[4] == assistant else None for e in shown],
                chars=[e[5] for e in shown],
                tokens=[e[6] for e in shown],
            )
        )
    return result


# --- Agreement.


@dataclass(frozen=True)
class AgreementReport:
    raw: float | None  # share of pairs of judgments of one unit agreeing on direction
    raw_interval: tuple[float, float] | None  # 95%, items resampled
    alpha: float | None  # Krippendorff's alpha, ordinal metric
    alpha_interval: tuple[float, float] | None
    scale: str  # what a unit is and what its values are, in words
    overlap_items: int  # items judged at least twice
    overlap_judgments: int  # judgments of those items
    judgments: int  # current counted judgments of the campaign
    reading: str  # one sentence that reads ``raw`` against typical human agreement


def campaign_agreement(
    campaign: Campaign, *, resamples: int = AGREEMENT_RESAMPLES
) -> AgreementReport:
    """Agreement on the campaign's items, with bootstrap intervals (``labeling.agreement``)."""
    found = answers(campaign)
    table, scale = agreement_table(found)
    per_item = Counter(a.item for a in found)

    def compute():
        return (
            agreement.raw_agreement(table),
            agreement.bootstrap(agreement.raw_agreement, table, resamples),
            agreement.alpha_ordinal(table),
            agreement.bootstrap(agreement.alpha_ordinal, table, resamples),
        )

    data = (table.counts.tobytes(), table.items.tobytes(), table.scale, resamples)
    raw, raw_interval, alpha, alpha_interval = _cached("agreement", data, compute)
    return AgreementReport(
        raw=raw,
        raw_interval=raw_interval,
        alpha=alpha,
        alpha_interval=alpha_interval,
        scale=scale,
        overlap_items=sum(1 for n in per_item.values() if n >= 2),
        overlap_judgments=sum(n for n in per_item.values() if n >= 2),
        judgments=len(found),
        reading=agreement_reading(raw),
    )


def agreement_table(found: list[Answer]) -> tuple[agreement.Table, str]:
    """The answers as an agreement table: on the 8-point scale when every answer is a pair
    with a strength, else on direction per candidate pair (rankings, imports without a
    strength: one scale for the whole table)."""
    if all(len(a.slots) == 2 and a.strength is not None for a in found):
        units: dict[int, list[int]] = defaultdict(list)
        for a in found:
            preferred_slot = a.slots[a.preferred[0][0]]
            units[a.item].append(
                agreement.pair_value(sorted(a.slots).index(preferred_slot), a.strength)
            )
        table = agreement.Table.of(list(units.values()), list(units), agreement.PAIR_SCALE)
        return table, "pairs on the 8-point scale, by candidate"
    units = defaultdict(list)
    for a in found:
        groups = [[a.slots[p] for p in group] for group in a.preferred]
        for pair, value in agreement.ranking_values(groups).items():
            units[(a.item, *pair)].append(value)
    items = [key[0] for key in units]
    table = agreement.Table.of(list(units.values()), items, agreement.DIRECTION_SCALE)
    return table, "direction for each pair of candidates"


def agreement_reading(raw: float | None) -> str:
    """One sentence that reads raw agreement against what careful labelers reach."""
    low, high = TYPICAL_AGREEMENT
    band = (
        f"the {low:.0%}–{high:.0%} that careful labelers reach on pairwise preferences "
        "(InstructGPT 72.6%, WebGPT 73%, MT-Bench about 63%)"
    )
    if raw is None:
        return f"No item has two judgments yet; expect {band}, not 100%."
    if raw < low:
        where, then = "below", "look at the items where workers disagree, and at the guidelines"
    elif raw > high:
        where, then = "above", "the items may be easy, or the answers not independent"
    else:
        where, then = "within", "some disagreement is normal; do not expect 100%"
    return f"At {raw:.0%}, agreement is {where} {band}: {then}."


# --- Position and length bias.


@dataclass(frozen=True)
class Rate:
    hits: int
    n: int
    rate: float | None  # hits / n
    interval: tuple[float, float] | None  # Wilson 95%
    chance: float  # the rate expected if workers ignored position or length
    p_value: float | None  # two-sided exact binomial test against ``chance``

    @property
    def against_chance(self) -> str:
        """ "above", "below" or "near": where the interval lies against ``chance``."""
        if self.interval is None:
            return "near"
        low, high = self.interval
        return "above" if low > self.chance else "below" if high < self.chance else "near"


@dataclass(frozen=True)
class BiasReport:
    first_position: Rate  # the answer's top (under the question) was the response shown first
    longer: Rate  # pairs of unequal length whose preferred response is the longer


def campaign_bias(campaign: Campaign) -> BiasReport:
    found = answers(campaign)
    first = [0 in a.order[0] for a in found]
    # A ranking's first place falls on the first shown 1 in K times (|top| in K with ties).
    chance = sum(len(a.order[0]) / len(a.slots) for a in found) / len(found) if found else 0.5
    longer = [flag for a in found if (flag := _preferred_longer(a)) is not None]
    return BiasReport(first_position=_rate(first, chance), longer=_rate(longer, 0.5))


def _preferred_longer(a: Answer) -> bool | None:
    """A pair of unequal length: whether the preferred response is the longer (characters,
    as ``quality`` counts them)."""
    if len(a.chars) != 2 or a.chars[0] == a.chars[1]:
        return None
    preferred = a.preferred[0][0]
    return a.chars[preferred] > a.chars[1 - preferred]


def _rate(flags: list[bool], chance: float) -> Rate:
    hits, n = sum(flags), len(flags)
    if not n:
        return Rate(0, 0, None, None, chance, None)
    test = binomtest(hits, n, chance)
    ci = test.proportion_ci(method="wilson")
    return Rate(hits, n, hits / n, (float(ci.low), float(ci.high)), chance, float(test.pvalue))


# --- Workers.


@dataclass(frozen=True)
class WorkerRow:
    metrics: quality.WorkerMetrics
    flags: list[str]  # what to look at, in a few words each


def worker_rows(campaign: Campaign, *, worker=None) -> list[WorkerRow]:
    """``quality.worker_metrics`` with flags. Its agreement is pairwise with each other
    worker on shared items (top pick equal), the definition of the campaign's raw agreement,
    so a worker's figure reads against the campaign's and the typical band."""
    return [
        WorkerRow(m, worker_flags(campaign, m))
        for m in quality.worker_metrics(campaign, worker=worker)
    ]


def worker_flags(campaign: Campaign, m: quality.WorkerMetrics) -> list[str]:
    """The campaign's own rule thresholds (``services.quality``), read on every answer rather
    than since the last lift, and agreement below chance on enough shared items."""
    flags = []
    gold, lowest = m.gold_accuracy, campaign.min_gold_accuracy
    if gold is not None and m.gold_seen >= max(campaign.min_gold_seen, 1) and gold < lowest:
        flags.append(f"gold {gold:.0%} < {lowest:.0%}")
    enough = m.judgments >= campaign.rule_min_judgments
    fastest = campaign.min_judgment_seconds
    if enough and fastest > 0 and m.median_seconds is not None and m.median_seconds < fastest:
        flags.append(f"fast: {m.median_seconds:.1f} s < {fastest:g} s")
    highest = campaign.max_first_position_rate
    if enough and m.first_position_rate is not None and m.first_position_rate > highest:
        flags.append(f"first shown {m.first_position_rate:.0%} > {highest:.0%}")
    if (
        m.agreement is not None
        and m.overlap_items >= AGREEMENT_MIN_OVERLAP
        and m.agreement < AGREEMENT_FLOOR
    ):
        flags.append(f"agrees {m.agreement:.0%} < {AGREEMENT_FLOOR:.0%}")
    return flags


# --- The leaderboard.


@dataclass(frozen=True)
class LeaderboardRow:
    model: ModelVersion
    strength: float  # log-odds, mean 0 over the models fitted
    interval: tuple[float, float] | None  # 95%, battles resampled
    controlled: float  # the same, length-controlled
    controlled_interval: tuple[float, float] | None
    battles: int
    wins: int
    ties: int

    @property
    def points(self) -> float:
        return ratings.elo(self.strength)

    @property
    def points_interval(self) -> tuple[float, float] | None:
        return _points(self.interval)

    @property
    def controlled_points(self) -> float:
        return ratings.elo(self.controlled)

    @property
    def controlled_points_interval(self) -> tuple[float, float] | None:
        return _points(self.controlled_interval)


@dataclass(frozen=True)
class Leaderboard:
    rows: list[LeaderboardRow]  # strongest first
    battles: int
    judgments: int  # judgments that gave at least one battle
    length_coefficient: float | None  # log-odds per unit of the normalised length difference


def leaderboard(
    campaign: Campaign | None = None, *, resamples: int = RATING_RESAMPLES
) -> Leaderboard:
    """Bradley–Terry strengths of the assistants, from every counted judgment (of
    ``campaign``, or all) whose candidates come from two or more assistant model versions."""
    found, features, judgments = battles(answers(campaign))
    if not found:
        return Leaderboard([], 0, 0, None)

    def compute():
        return (
            ratings.bradley_terry(found),
            ratings.bradley_terry(found, covariates=features),
            ratings.bootstrap_intervals(found, resamples),
            ratings.bootstrap_intervals(found, resamples, covariates=features),
        )

    data = (found, features, resamples)
    plain, controlled, plain_ci, controlled_ci = _cached("leaderboard", data, compute)
    count, wins, ties = Counter(), Counter(), Counter()
    for i, j, outcome in found:
        count.update((i, j))
        if outcome == 0.5:
            ties.update((i, j))
        else:
            wins[i if outcome == 1 else j] += 1
    models = ModelVersion.objects.in_bulk(list(plain.strengths))
    rows = [
        LeaderboardRow(
            model=models[pk],
            strength=strength,
            interval=plain_ci.get(pk),
            controlled=controlled.strengths[pk],
            controlled_interval=controlled_ci.get(pk),
            battles=count[pk],
            wins=wins[pk],
            ties=ties[pk],
        )
        for pk, strength in plain.strengths.items()
    ]
    return Leaderboard(rows, len(found), judgments, controlled.coefficients[0])


def battles(found: list[Answer]) -> tuple[list[ratings.Battle], list[list[float]], int]:
    """(battles, their length covariate, judgments that gave one): every pair of candidates
    of a judgment from two different assistants. The preferred wins; tied in a ranking, or
    "about the same" on the 8-point scale, is a tie. Lengths in tokens where both
    candidates have a count, else in characters (the covariate is a ratio)."""
    result, features, judgments = [], [], 0
    for a in found:
        place = {p: g for g, group in enumerate(a.preferred) for p in group}
        gave = False
        for p, q in combinations(range(len(a.slots)), 2):
            mp, mq = a.models[p], a.models[q]
            if mp is None or mq is None or mp == mq:
                continue
            if place[p] == place[q] or a.strength == 1:
                outcome = 0.5
            else:
                outcome = 1.0 if place[p] < place[q] else 0.0
            lengths = a.tokens if None not in (a.tokens[p], a.tokens[q]) else a.chars
            result.append(ratings.Battle(mp, mq, outcome))
            features.append([ratings.length_feature(lengths[p], lengths[q])])
            gave = True
        judgments += gave
    return result, features, judgments


def _points(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if interval is None else (ratings.elo(interval[0]), ratings.elo(interval[1]))


def _cached(kind: str, data, compute):
    """``compute()`` once per distinct ``data``: a bootstrap takes seconds on a large campaign,
    and a page and its plot ask for the same figures. New judgments (or a pause, a
    correction) change the data, hence the key: nothing stale is served."""
    key = f"panel-stats:{kind}:{hashlib.sha256(repr(data).encode()).hexdigest()}"
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, STATS_CACHE_SECONDS)
    return value
