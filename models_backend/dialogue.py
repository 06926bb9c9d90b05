"""Dialogue format: ``Human:`` / ``Assistant:`` transcripts as in the paper and hh-rlhf.

A transcript is ``"\\n\\nHuman: …\\n\\nAssistant: …"``, starting with ``"\\n\\nHuman: "``.
An hh-rlhf row holds two such transcripts, ``chosen`` and ``rejected``. In almost all rows
they share everything up to their last ``"\\n\\nAssistant:"`` and alternate Human and
Assistant; a few public rows do not (DESIGN §3), and ``split_pair`` takes those too, telling
their kind in ``Pair.kind``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Literal

HUMAN = "human"
ASSISTANT = "assistant"
_LABELS = {HUMAN: "Human", ASSISTANT: "Assistant"}
_MARKER = re.compile(r"\n\n(Human|Assistant):")
ASSISTANT_MARKER = "\n\nAssistant:"
STOP_STRING = "Human:"  # sampling stops here: the model has started the person's next turn


@dataclass(frozen=True)
class Message:
    role: Literal["human", "assistant"]
    text: str


def to_transcript(messages: list[Message]) -> str:
    return "".join(f"\n\n{_LABELS[m.role]}: {m.text}" for m in messages)


def prompt_transcript(messages: list[Message]) -> str:
    """The context an assistant reply is generated or scored after."""
    return to_transcript(messages) + ASSISTANT_MARKER


def parse_transcript(text: str) -> list[Message]:
    """Split a transcript into messages; raises ValueError on a malformed one."""
    if not text.startswith("\n\nHuman:"):
        raise ValueError('a transcript must start with "\\n\\nHuman:"')
    parts = _MARKER.split(text)  # ["", "Human", " hi", "Assistant", " hello", ...]
    messages = []
    for label, body in zip(parts[1::2], parts[2::2], strict=True):
        role = HUMAN if label == "Human" else ASSISTANT
        messages.append(Message(role, body[1:] if body.startswith(" ") else body))
    return messages


# Pair.kind: how an hh-rlhf row is built (``split_pair``).
REGULAR = "regular"  # shared context up to both last "\n\nAssistant:", alternating roles
DIVERGED_EARLY = "diverged_early"  # the sides differ before a last "\n\nAssistant:"
REPEATED_ROLE = "repeated_role"  # the shared context has two same-role messages in a row
ROW_KINDS = (REGULAR, DIVERGED_EARLY, REPEATED_ROLE)


@dataclass(frozen=True)
class Pair:
    context: list[Message]  # the shared dialogue, ending with the person's message
    chosen: str  # the better assistant reply (a diverged row's holds further turns verbatim)
    rejected: str  # the worse assistant reply
    kind: str = REGULAR  # one of ROW_KINDS; only split_pair finds irregular rows

    def __post_init__(self):
        if self.kind not in ROW_KINDS:
            raise ValueError(f"kind must be one of {', '.join(ROW_KINDS)}, not {self.kind!r}")


def split_pair(chosen: str, rejected: str) -> Pair:
    """Split an hh-rlhf ``chosen``/``rejected`` row into shared context and two replies.

    The context is the longest common prefix of whole messages, cut back to its last Human
    message that an Assistant message follows on both sides; each reply is the rest of its
    transcript after that ``"\\n\\nAssistant: "``, further markers kept verbatim, so
    ``format_pair(split_pair(c, r)) == {"chosen": c, "rejected": r}``. Runs of same-role
    messages are kept as they are, never merged. The kind: ``DIVERGED_EARLY`` when a reply
    holds a further Assistant message (the sides differ before a last ``"\\n\\nAssistant:"``;
    this wins when the context also repeats a role, since it decides where replies start),
    else ``REPEATED_ROLE`` when the context has two same-role messages in a row, else
    ``REGULAR``. Raises ValueError on a malformed row: a side not starting with
    ``"\\n\\nHuman:"`` or without ``"\\n\\nAssistant:"``, sides that share not even their
    first message, or no shared Human message followed by an Assistant one on both sides.
    """
    if ASSISTANT_MARKER not in chosen or ASSISTANT_MARKER not in rejected:
        raise ValueError('both sides must contain "\\n\\nAssistant:"')
    sides = _segments(chosen), _segments(rejected)
    cut = _context_length(*sides)
    start = sum(len(raw) for _, raw in sides[0][:cut])  # where the replies' marker starts
    context = parse_transcript(chosen[:start])
    if any(sum(role == ASSISTANT for role, _ in side[cut:]) > 1 for side in sides):
        kind = DIVERGED_EARLY
    elif any(a.role == b.role for a, b in itertools.pairwise(context)):
        kind = REPEATED_ROLE
    else:
        kind = REGULAR
    return Pair(context, _reply(chosen[start:]), _reply(rejected[start:]), kind)


def format_pair(pair: Pair) -> dict[str, str]:
    """The hh-rlhf row for a pair: the inverse of ``split_pair``."""
    context = prompt_transcript(pair.context)
    return {"chosen": f"{context} {pair.chosen}", "rejected": f"{context} {pair.rejected}"}


def _segments(text: str) -> list[tuple[str, str]]:
    """``(role, raw text from its marker up to the next)`` per message of a transcript."""
    parse_transcript(text)  # the same refusals as a transcript
    starts = [m.start() for m in _MARKER.finditer(text)]
    ends = starts[1:] + [len(text)]
    return [
        (HUMAN if text.startswith("\n\nHuman:", a) else ASSISTANT, text[a:b])
        for a, b in zip(starts, ends, strict=True)
    ]


def _context_length(chosen: list[tuple[str, str]], rejected: list[tuple[str, str]]) -> int:
    """How many messages the shared context has: the longest common prefix of whole
    messages, cut back to its last Human message that an Assistant one follows on both sides."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise ValueError("chosen and rejected share no message: their first Human messages differ")
    for k in range(shared, 0, -1):
        if chosen[k - 1][0] == HUMAN and all(
            k < len(side) and side[k][0] == ASSISTANT for side in (chosen, rejected)
        ):
            return k
    raise ValueError(
        "the shared context must end with a Human message that an Assistant message follows "
        "on both sides"
    )


def _reply(tail: str) -> str:
    body = tail[len(ASSISTANT_MARKER) :]
    return body[1:] if body.startswith(" ") else body
