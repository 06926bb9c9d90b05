"""The export formats, in one registry: what each writes and how many rows it will write."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db.models import Count, F

from labeling import export_rows
from labeling.exports.pairs import pair_rows, trl_rows
from labeling.exports.provenance import provenance_rows
from labeling.models import JudgedCandidate
from labeling.selectors import current_judgments, quiz_answers


@dataclass(frozen=True)
class Format:
    name: str  # what --format takes
    help: str  # one line for the command's help
    # (include_weakest=, campaign_slug=, include_checks=) -> the rows, one dict each
    rows: Callable[..., Iterator[dict]]
    # the same options -> how many rows ``rows`` will yield, counted in the database
    total: Callable[..., int]
    weakest: bool = True  # whether --include-weakest means anything here (a strength 1 exists)
    folder: bool = False  # written as a folder (a datasets one), not JSON lines: no stdout


def _judgments(o: dict):
    return current_judgments(**o)


def _quiz_sizes(o: dict) -> Iterator[list[int]]:
    """The group sizes of each quiz answer's order, when ``include_checks`` exports them."""
    if not o["include_checks"]:
        return
    qs = quiz_answers(campaign_slug=o["campaign_slug"]).prefetch_related(None)
    if not o["include_weakest"]:
        qs = qs.exclude(strength=1)
    for order in qs.values_list("order", flat=True).iterator(chunk_size=export_rows.CHUNK_SIZE):
        yield [len(group) for group in order]


def _with_k(o: dict, test: Callable[[int], bool], **lookup) -> int:
    judged = _judgments(o).annotate(k=Count("entries")).filter(**lookup).count()
    return judged + sum(1 for sizes in _quiz_sizes(o) if test(sum(sizes)))


def _all(o: dict) -> int:
    return _judgments(o).count() + sum(1 for _ in _quiz_sizes(o))


def _pairs(o: dict) -> int:
    """Pairs of entries of one judgment where one ranks strictly above the other."""
    judged = JudgedCandidate.objects.filter(
        judgment__in=_judgments(o).values("pk"), judgment__entries__rank__gt=F("rank")
    ).count()
    quizzed = sum(
        a * b for sizes in _quiz_sizes(o) for i, a in enumerate(sizes) for b in sizes[i + 1 :]
    )
    return judged + quizzed


def options(include_weakest: bool, campaign_slug: str | None, include_checks: bool) -> dict:
    """The keyword options every format's ``rows`` and ``total`` take."""
    return {
        "include_weakest": include_weakest,
        "campaign_slug": campaign_slug,
        "include_checks": include_checks,
    }


def _counter(count: Callable[[dict], int], *, weakest: bool = True):
    def total(*, include_weakest, campaign_slug, include_checks) -> int:
        return count(options(include_weakest or not weakest, campaign_slug, include_checks))

    return total


def _no_weakest(rows):
    def without(*, include_weakest, **options):
        return rows(**options)

    return without


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "hh-rlhf",
            "{chosen, rejected} transcripts per judgment of two (chosen: preferred under the "
            "question asked, in red-team data the less harmful reply)",
            export_rows.hh_rlhf_rows,
            _counter(lambda o: _with_k(o, lambda k: k == 2, k=2)),
        ),
        Format(
            "trl",
            "TRL's conversational preference rows {prompt, chosen, rejected}, one per "
            "preferred/dispreferred pair (rankings of K give their pairs)",
            trl_rows,
            _counter(_pairs),
        ),
        Format(
            "rankings",
            "{context, responses best first[, scores]} per judgment of three or more",
            _no_weakest(export_rows.rankings_export_rows),
            _counter(lambda o: _with_k(o, lambda k: k >= 3, k__gte=3), weakest=False),
            weakest=False,
        ),
        Format(
            "red-team",
            "one row per finished red-team conversation, in the public red-team-attempts layout",
            _no_weakest(export_rows.red_team_rows),
            lambda *, include_weakest, campaign_slug, include_checks: (
                export_rows.red_team_conversations(
                    campaign_slug=campaign_slug, include_checks=include_checks
                ).count()
            ),
            weakest=False,
        ),
        Format(
            "datasets",
            "a Hugging Face datasets folder (datasets.load_from_disk) with parquet shards: the "
            "trl pairs and their provenance columns",
            pair_rows,
            _counter(_pairs),
            folder=True,
        ),
        Format(
            "provenance",
            "one row per judgment with everything known about it (audits, never training)",
            provenance_rows,
            _counter(_all),
        ),
        Format(
            "lab",
            "the lab's own JSONL (question, display order, answer, provenance), read back by "
            "import_preferences and the training loaders",
            export_rows.lab_export_rows,
            _counter(_all),
        ),
    )
}
