"""The lab's own export format (``manage.py export_preferences --format lab``), read back.

One JSON object per judgment: ``context`` (chat messages), ``responses`` (the texts in the
order the worker saw them), ``question`` ("better" or "more_harmful") and ``answer``
(``{"order": [[display positions], …] top first under the question, "strength": 1-4 or
null}``), plus provenance the lab keeps. Rows written before judgments recorded their
question (``context``, ``chosen``, ``rejected``, ``strength``) are read as the answer
"chosen is better".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models_backend.dialogue import Message
from training.comparisons import Ranking
from training.data import DataError, jsonl_rows
from training.questions import QUESTIONS, check_order, ranked_responses

KEPT = ("task_type", "comment", "time_spent_ms", "worker", "provenance", "guideline_version")
# What the lab's judgment columns hold (labeling.models.Judgment), checked as a line is read
# so that a value the import cannot store is refused with its line, like any other.
MAX_TIME_SPENT_MS = 2**31 - 1  # time_spent_ms: a PositiveIntegerField
MAX_GUIDELINE_VERSION = 64  # guideline_version: CharField(max_length=64)


@dataclass(frozen=True)
class LabRecord:
    context: tuple[Message, ...]  # the dialogue before the responses; ends with a human turn
    responses: tuple[str, ...]  # in display order (A first)
    question: str  # what the worker was asked
    order: list[list[int]]  # groups of display positions, top first under the question
    strength: int | None  # 1-4 for a pair on the 8-point scale; None otherwise
    source: str = ""  # "path:line"
    extra: dict = field(default_factory=dict)  # the provenance fields in ``KEPT`` found

    def ranking(self) -> Ranking:
        """Preferred first, as the question maps the answer (less harmful first for
        ``more_harmful``)."""
        responses, scores = ranked_responses(self.question, self.responses, self.order)
        return Ranking(self.context, responses, self.source, scores=scores)


def iter_lab_records(path, *, limit: int | None = None):
    """Yield a ``LabRecord`` per line; a bad line raises ``DataError`` naming it."""
    for row, where in jsonl_rows(path, limit):
        yield parse_lab_row(row, where)


def parse_lab_row(row: dict, where: str) -> LabRecord:
    from training.loaders import check_context, check_text, parse_messages

    if row.get("excluded"):  # written by export_preferences --include-checks
        raise DataError(
            f"{where}: a {row['excluded']} row (exported with --include-checks) is not "
            "training data: export without that flag"
        )
    if "context" not in row:
        raise DataError(f"{where}: missing field 'context'")
    context = check_context(parse_messages(row["context"], where, "context"), where)
    extra = _kept(row, where)
    if "responses" not in row:  # the older pair form: chosen is the better one
        for name in ("chosen", "rejected"):
            if name not in row:
                raise DataError(f"{where}: missing field {name!r} (or 'responses')")
        responses = (
            check_text(row["chosen"], where, "chosen", empty=True),
            check_text(row["rejected"], where, "rejected", empty=True),
        )
        return LabRecord(
            context,
            responses,
            "better",
            [[0], [1]],
            _strength(row.get("strength"), 2, where),
            where,
            extra,
        )
    raw = row["responses"]
    if not isinstance(raw, list) or len(raw) < 2:
        raise DataError(f"{where}: 'responses' must list at least two responses")
    responses = tuple(
        check_text(r, where, f"responses[{i}]", empty=True) for i, r in enumerate(raw)
    )
    question = row.get("question")
    if question not in QUESTIONS:
        raise DataError(f"{where}: 'question' must be one of {', '.join(QUESTIONS)}")
    answer = row.get("answer")
    if not isinstance(answer, dict) or "order" not in answer:
        raise DataError(f"{where}: 'answer' must be {{'order': [[positions], …], 'strength': …}}")
    try:
        order = check_order(answer["order"], len(responses))
    except ValueError as exc:
        raise DataError(f"{where}: answer: {exc}") from None
    strength = _strength(answer.get("strength"), len(responses), where)
    return LabRecord(context, responses, question, order, strength, where, extra)


def _kept(row: dict, where: str) -> dict:
    """The fields of ``KEPT`` the row has, each null or of the type the export writes."""
    from training.loaders import check_text

    extra = {key: row[key] for key in KEPT if key in row}
    ms = extra.get("time_spent_ms")
    if ms is not None and (
        isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= MAX_TIME_SPENT_MS
    ):
        raise DataError(f"{where}: 'time_spent_ms' must be a whole number from 0 to 2^31 - 1")
    for key in ("comment", "guideline_version"):
        if extra.get(key) is not None:
            check_text(extra[key], where, key, empty=True)
    if len(extra.get("guideline_version") or "") > MAX_GUIDELINE_VERSION:
        raise DataError(f"{where}: 'guideline_version' is longer than {MAX_GUIDELINE_VERSION}")
    provenance = extra.get("provenance")
    if provenance is not None and not isinstance(provenance, dict):
        raise DataError(f"{where}: 'provenance' must be an object")
    if _holds_nul(provenance):  # no JSON column (PostgreSQL's jsonb included) stores one
        raise DataError(f"{where}: 'provenance' contains a NUL character")
    return extra


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _strength(value, k: int, where: str) -> int | None:
    if value is None:
        return None
    if k != 2 or isinstance(value, bool) or value not in (1, 2, 3, 4):
        raise DataError(f"{where}: a strength is 1-4, and only for two responses")
    return value
