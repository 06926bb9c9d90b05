"""Comparison data loaders: every format becomes ``Ranking`` objects, every bad line is named.

Formats (``FORMATS``):

- ``hh-rlhf``: ``{"chosen": str, "rejected": str}`` transcripts (``training.data``), read
  one row at a time; irregular public rows are comparisons too, and ``hh_rlhf_rankings``
  also counts the rows of each kind (a ``Ranking`` does not carry it);
- ``preference``: ``{"prompt", "chosen", "rejected"}``, each a string or a list of chat
  messages ``{"role": "user" | "assistant", "content": str}``; without ``prompt`` the
  messages that ``chosen`` and ``rejected`` share are the prompt (the "implicit prompt"
  form); a response given as messages is its final assistant message;
- ``rankings``: ``{"context": str | messages, "responses": [str, …]}``, best first, K ≥ 2,
  with optional ``"scores"`` (non-increasing; equal scores are tied, never compared);
- ``bigbench``: a BIG-bench JSON task file or folder (``examples[*].input`` and
  ``target_scores``): the choices ordered by score, best first; equal scores are tied
  (a multiple-choice item is "correct > each wrong one"; graded scores give a real order);
  ``hhh_alignment`` is refused, it is evaluation data;
- ``lab``: the lab's own export (``manage.py export_preferences --format lab``): each
  judgment's answer mapped to preferred-first by its question (``training.lab_format``).

A string context is one human message. A context is non-empty, starts and ends with a
user message, and keeps runs of same-role messages as they are (public data has them).
Lines are validated as they are read; any bad line raises ``DataError`` naming
``path:line`` (or the task file and example), so a data set never shrinks silently.
"""

from __future__ import annotations

from pathlib import Path

from models_backend.dialogue import ASSISTANT, HUMAN, Message, Pair
from training.comparisons import Ranking
from training.data import DataError, iter_hh_rlhf, jsonl_rows, row_kinds

FORMATS = ("hh-rlhf", "preference", "rankings", "bigbench", "lab")
EVALUATION_ONLY = "hhh_alignment"  # BIG-bench folder never used for training
_ROLES = {"user": HUMAN, "human": HUMAN, "assistant": ASSISTANT}


def load_rankings(path, fmt: str, *, limit: int | None = None) -> list[Ranking]:
    """The rankings in ``path`` (at most ``limit``), read as format ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "hh-rlhf":
        return [_hh_ranking(pair, path) for pair in iter_hh_rlhf(path, limit=limit)]
    if fmt == "bigbench":
        return _bigbench(path, limit)
    parse = {"preference": _preference, "rankings": _rankings, "lab": _lab}[fmt]
    return [parse(row, where) for row, where in jsonl_rows(path, limit)]


def hh_rlhf_rankings(path, *, limit: int | None = None) -> tuple[list[Ranking], dict[str, int]]:
    """The first ``limit`` rankings of an hh-rlhf file and its ``row_kinds`` over ALL rows:
    the file is read to its end, one row at a time, every line validated."""
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    rankings: list[Ranking] = []
    kinds = row_kinds(())  # every kind, at 0
    for pair in iter_hh_rlhf(path):
        kinds[pair.kind] += 1
        if limit is None or len(rankings) < limit:
            rankings.append(_hh_ranking(pair, path))
    return rankings, kinds


def _hh_ranking(pair: Pair, path) -> Ranking:
    return Ranking(tuple(pair.context), (pair.chosen, pair.rejected), f"{path}")


def check_text(value, where: str, field: str, *, empty: bool = False) -> str:
    """A text field: a string without NUL; blank only where ``empty`` (a response may be
    blank: the public hh-rlhf data holds assistants that said nothing)."""
    if not isinstance(value, str) or not (empty or value.strip()):
        raise DataError(f"{where}: {field!r} must be a {'' if empty else 'non-empty '}string")
    if "\x00" in value:
        raise DataError(f"{where}: {field!r} contains a NUL character")
    return value


def parse_messages(value, where: str, field: str) -> list[Message]:
    if isinstance(value, str):
        return [Message(HUMAN, check_text(value, where, field))]
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: {field!r} must be a string or a non-empty list of messages")
    messages = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or item.get("role") not in _ROLES:
            raise DataError(
                f"{where}: {field}[{i}] must be {{'role': 'user' | 'assistant', 'content': …}}"
            )
        messages.append(
            Message(_ROLES[item["role"]], check_text(item.get("content"), where, field))
        )
    return messages


def check_context(messages: list[Message], where: str) -> tuple[Message, ...]:
    """Runs of same-role messages are kept: public data has them (DESIGN §3)."""
    if not messages or messages[0].role != HUMAN:
        raise DataError(f"{where}: the context must be non-empty, user first")
    if messages[-1].role != HUMAN:
        raise DataError(f"{where}: the context must end with a user message")
    return tuple(messages)


def _reply(value, where: str, field: str) -> str:
    if isinstance(value, str):
        return check_text(value, where, field)
    messages = parse_messages(value, where, field)
    if messages[-1].role != ASSISTANT:
        raise DataError(f"{where}: {field!r} must end with an assistant message")
    return messages[-1].text


def _preference(row: dict, where: str) -> Ranking:
    for field in ("chosen", "rejected"):
        if field not in row:
            raise DataError(f"{where}: missing field {field!r}")
    if "prompt" in row:
        context = parse_messages(row["prompt"], where, "prompt")
        return Ranking(
            check_context(context, where),
            (_reply(row["chosen"], where, "chosen"), _reply(row["rejected"], where, "rejected")),
            where,
        )
    chosen, rejected = (parse_messages(row[f], where, f) for f in ("chosen", "rejected"))
    if chosen[:-1] != rejected[:-1]:
        raise DataError(
            f"{where}: without 'prompt', chosen and rejected must differ only at the end"
        )
    for field, messages in (("chosen", chosen), ("rejected", rejected)):
        if messages[-1].role != ASSISTANT or len(messages) < 2:
            raise DataError(f"{where}: {field!r} must end with an assistant reply to a prompt")
    return Ranking(check_context(chosen[:-1], where), (chosen[-1].text, rejected[-1].text), where)


def _rankings(row: dict, where: str) -> Ranking:
    if "context" not in row:
        raise DataError(f"{where}: missing field 'context'")
    responses = row.get("responses")
    if not isinstance(responses, list) or len(responses) < 2:
        raise DataError(f"{where}: 'responses' must list at least two responses, best first")
    texts = tuple(
        check_text(r, where, f"responses[{i}]", empty=True) for i, r in enumerate(responses)
    )
    context = check_context(parse_messages(row["context"], where, "context"), where)
    scores = row.get("scores")
    if scores is not None:
        if not isinstance(scores, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in scores
        ):
            raise DataError(f"{where}: 'scores' must be a list of numbers, one per response")
        scores = tuple(float(x) for x in scores)
    try:
        return Ranking(context, texts, where, scores=scores)
    except ValueError as exc:
        raise DataError(str(exc)) from None


def _lab(row: dict, where: str) -> Ranking:
    from training.lab_format import parse_lab_row

    return parse_lab_row(row, where).ranking()


def _bigbench(path, limit: int | None) -> list[Ranking]:
    from training.hhh_eval import load_tasks

    root = Path(path)
    if EVALUATION_ONLY in root.resolve().parts:
        raise DataError(f"{path}: {EVALUATION_ONLY} is evaluation data; never train on it")
    rankings: list[Ranking] = []
    for task in load_tasks(root):
        for index, example in enumerate(task.examples):
            if limit is not None and len(rankings) >= limit:
                return rankings
            where = f"{task.path}: examples[{index}]"
            if len(example.correct) == len(example.choices):
                raise DataError(f"{where}: every choice has the top score; nothing to rank")
            order = sorted(range(len(example.choices)), key=lambda i: -example.target_scores[i])
            context = (Message(HUMAN, check_text(example.input, where, "input")),)
            responses = tuple(example.choices[i] for i in order)
            scores = tuple(float(example.target_scores[i]) for i in order)
            rankings.append(Ranking(context, responses, where, scores=scores))
    return rankings
