"""Dialogue format: ``Human:`` / ``Assistant:`` transcripts as in the paper and hh-rlhf.

A transcript is ``"\\n\\nHuman: …\\n\\nAssistant: …"``, starting with ``"\\n\\nHuman: "``.
An hh-rlhf row holds two such transcripts, ``chosen`` and ``rejected``, that share
everything up to their last ``"\\n\\nAssistant:"``.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Pair:
    context: list[Message]  # the shared dialogue, ending with the person's message
    chosen: str  # the better assistant reply
    rejected: str  # the worse assistant reply


def split_pair(chosen: str, rejected: str) -> Pair:
    """Split an hh-rlhf ``chosen``/``rejected`` row into shared context and two replies."""
    cut_c = chosen.rfind(ASSISTANT_MARKER)
    cut_r = rejected.rfind(ASSISTANT_MARKER)
    if cut_c < 0 or cut_r < 0:
        raise ValueError('both sides must contain "\\n\\nAssistant:"')
    if chosen[:cut_c] != rejected[:cut_r]:
        raise ValueError('chosen and rejected differ before their last "\\n\\nAssistant:"')
    context = parse_transcript(chosen[:cut_c])
    if not context or context[-1].role != HUMAN:
        raise ValueError("the shared context must end with a Human message")
    for i, message in enumerate(context):
        if message.role != (HUMAN if i % 2 == 0 else ASSISTANT):
            raise ValueError("the context must alternate Human and Assistant messages")
    return Pair(context, _reply(chosen[cut_c:]), _reply(rejected[cut_r:]))


def format_pair(pair: Pair) -> dict[str, str]:
    """The hh-rlhf row for a pair: the inverse of ``split_pair``."""
    context = prompt_transcript(pair.context)
    return {"chosen": f"{context} {pair.chosen}", "rejected": f"{context} {pair.rejected}"}


def _reply(tail: str) -> str:
    body = tail[len(ASSISTANT_MARKER) :]
    return body[1:] if body.startswith(" ") else body
