"""Comparison data for the preference model: read hh-rlhf JSONL, encode pairs, collate batches.

hh-rlhf rows are read one at a time (``iter_hh_rlhf``; ``read_hh_rlhf`` is its list), so a
160,000-row file can be imported in bounded memory. Irregular public rows (DESIGN §3) are pairs
like any other, their kind in ``Pair.kind`` (``row_kinds`` counts them); a malformed line
fails with ``path:line`` and the reason.

Encoding is ``models_backend.reward.encode_responses`` (shared with best-of-n scoring, so
a PM is served the way it was trained): context and ``" " + reply`` tokenised separately
and concatenated, the end-of-context id last, over-long contexts cut from the left and
counted, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from models_backend.dialogue import ROW_KINDS, Pair, split_pair
from models_backend.reward import encode_responses, pad_right

FIELDS = ("chosen", "rejected")


class DataError(ValueError):
    """A data file that cannot be used; the message names ``path:line`` and the reason."""


def jsonl_rows(path, limit: int | None = None):
    """Yield ``(row, "path:line")`` for each JSON object line of ``path``, blank lines skipped.

    Stops after ``limit`` rows (lines after that are not read). Any bad line raises
    ``DataError`` naming it rather than being skipped: a silently shrunken data set skews
    results.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    count = 0
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if limit is not None and count >= limit:
                    return
                if not raw.strip():
                    continue
                where = f"{path}:{number}"
                yield _json_object(raw, where), where
                count += 1
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _json_object(raw: bytes, where: str) -> dict:
    try:
        text = raw.decode("utf-8")
        row = json.loads(text)
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not UTF-8 ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: bad JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    # JSON may escape half a surrogate pair ("\ud800"): a str no database or tokenizer
    # takes. Only an escape makes one (the bytes were strict UTF-8), so look only then.
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(row):
        raise DataError(f"{where}: a lone surrogate escape (\\ud800-\\udfff) is not text")
    return row


def _has_lone_surrogate(value) -> bool:
    """Whether a parsed JSON value holds a lone surrogate anywhere (keys included)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def iter_hh_rlhf(path, *, limit: int | None = None) -> Iterator[Pair]:
    """Yield the pair of each hh-rlhf row (``{"chosen": str, "rejected": str}`` per line), one
    at a time, at most ``limit``; blank lines skipped, a bad line raises ``DataError``."""
    for row, where in jsonl_rows(path, limit):
        yield _pair(row, where)


def read_hh_rlhf(path, *, limit: int | None = None) -> list[Pair]:
    """All pairs of an hh-rlhf file (at most ``limit``): ``iter_hh_rlhf`` as a list."""
    return list(iter_hh_rlhf(path, limit=limit))


def row_kinds(pairs: Iterable[Pair]) -> dict[str, int]:
    """How many pairs of each kind (``models_backend.dialogue.ROW_KINDS``, all keys present)."""
    counts = dict.fromkeys(ROW_KINDS, 0)
    for pair in pairs:
        counts[pair.kind] += 1
    return counts


def _pair(row: dict, where: str) -> Pair:
    for field in FIELDS:
        if field not in row:
            raise DataError(f"{where}: missing field {field!r}")
        if not isinstance(row[field], str):
            raise DataError(f"{where}: field {field!r} must be a string")
        if "\x00" in row[field]:  # no text column (PostgreSQL's included) stores NUL
            raise DataError(f"{where}: field {field!r} contains a NUL character")
    try:
        return split_pair(row["chosen"], row["rejected"])
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from exc


@dataclass(frozen=True)
class EncodedPair:
    chosen: list[int]  # context ids + chosen reply ids + [EOC id]
    rejected: list[int]  # the same context ids + rejected reply ids + [EOC id]
    context_length: int  # ids of shared context at the start of both
    truncated: bool  # whether anything was cut to fit max_length


def encode_pair(tokenizer, pair: Pair, *, max_length: int) -> EncodedPair:
    group = encode_responses(
        tokenizer, pair.context, [pair.chosen, pair.rejected], max_length=max_length
    )
    chosen, rejected = group.sequences
    return EncodedPair(chosen, rejected, group.context_length, group.truncated)


def encode_pairs(tokenizer, pairs: list[Pair], *, max_length: int) -> tuple[list[EncodedPair], int]:
    """Encode every pair; also return how many were truncated (none is dropped)."""
    encoded = [encode_pair(tokenizer, pair, max_length=max_length) for pair in pairs]
    return encoded, sum(e.truncated for e in encoded)


class PairCollator:
    """Batch of B encoded pairs -> ``input_ids``, ``attention_mask`` [2B, T], right-padded.

    Rows 0..B-1 are the chosen sequences, rows B..2B-1 the rejected ones, so a model's
    rewards [2B] split as ``rewards[:B]`` (good) and ``rewards[B:]`` (bad).
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[EncodedPair]) -> dict[str, torch.Tensor]:
        sequences = [p.chosen for p in batch] + [p.rejected for p in batch]
        return pad_right(sequences, pad_id=self.pad_id)  # each [2B, T] long
