"""Gold items: items with a known answer, for the qualification quiz and for checks mixed
into the queue (DESIGN §8). A gold item is the one turn of a conversation of its own
(no worker, finished, source "gold:…") whose K responses are written out by a researcher,
never generated. Researchers add them in the admin or import a JSONL file, all or nothing.

A worker is right about a gold item when the response(s) they put on top all lie in the
answer's first group (``gold_correct``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import Campaign, CandidateResponse, Conversation, GoldItem, Turn
from labeling.services.imports import import_source
from models_backend.dialogue import ASSISTANT, HUMAN, Message
from training.questions import check_order

# What an import line may hold: a prompt or a context, the responses, the answer, why.
LINE_FIELDS = ("prompt", "context", "responses", "answer", "explanation")
ROLES = {"human": HUMAN, "user": HUMAN, "assistant": ASSISTANT}
MAX_NAMED_ERRORS = 30  # a file wrong on every line names this many, then counts the rest

Answer = int | Sequence[Sequence[int]]  # the right response's slot, or groups of slots best first


@dataclass(frozen=True)
class GoldSpec:
    """A gold item as checked, before anything is written."""

    context: tuple[Message, ...]  # ends with the human message the responses answer
    responses: tuple[str, ...]  # by slot
    answer: list[list[int]]  # groups of slots, best first under the campaign's question
    explanation: str


def gold_correct(
    *, gold: GoldItem, shown_slots: Sequence[int], order: Sequence[Sequence[int]]
) -> bool:
    """Whether an answer to ``gold`` is right: every response in its top group (display
    positions, mapped to slots through ``shown_slots``, A first) lies in the gold answer's
    first group. A tie at the top is right only when every tied response is."""
    top = {shown_slots[position] for position in order[0]}
    return top <= set(gold.answer[0])


def answer_groups(answer: Answer, k: int) -> list[list[int]]:
    """The answer as groups of slots best first: a single slot ``i`` means "i is right, the
    others are tied below it". Raises ``ValueError`` with a sentence."""
    if isinstance(answer, int) and not isinstance(answer, bool):
        if not 0 <= answer < k:
            raise ValueError(f"the answer must be a response's index from 0 to {k - 1}")
        return [[answer], [slot for slot in range(k) if slot != answer]]
    return check_order(answer, k)


def gold_item_check(
    *,
    campaign: Campaign,
    context: Sequence[Message],
    responses: Sequence[str],
    answer: Answer,
    explanation: str,
) -> GoldSpec:
    """A gold item for ``campaign`` as it would be written; raises ``ValidationError`` with
    a sentence naming what is wrong. Forms and the importer call it before writing."""
    k = campaign.candidates_per_item
    if not context or context[-1].role != HUMAN:
        raise ValidationError("The context must end with a human message.")
    if any(not isinstance(m.text, str) or not m.text.strip() for m in context):
        raise ValidationError("Every message of the context needs some text.")
    if len(responses) != k:
        raise ValidationError(
            f"{campaign.slug} judges {k} responses per item, not {len(responses)}."
        )
    if any(not isinstance(text, str) or not text.strip() for text in responses):
        raise ValidationError("Every response needs some text.")
    try:
        groups = answer_groups(answer, k)
    except ValueError as exc:
        raise ValidationError(f"Bad answer: {exc}.") from None
    if not isinstance(explanation, str) or not explanation.strip():
        raise ValidationError("Write an explanation: workers read it after answering.")
    for text in [*(m.text for m in context), *responses, explanation]:
        if "\x00" in text:  # no text column (PostgreSQL's included) stores NUL
            raise ValidationError("The text holds a NUL character.")
        if not is_unicode(text):  # JSON's "\ud800": half a surrogate pair, stored nowhere
            raise ValidationError("The text holds a lone surrogate (\\ud800-\\udfff).")
    return GoldSpec(tuple(context), tuple(responses), groups, explanation.strip())


def is_unicode(text: str) -> bool:
    """False for a str holding half a surrogate pair (JSON's "\\ud800"): no encoding,
    and so no database, takes it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@transaction.atomic
def gold_item_create(
    *,
    campaign: Campaign,
    role: str,
    context: Sequence[Message],
    responses: Sequence[str],
    answer: Answer,
    explanation: str,
    source: str = "admin",
) -> GoldItem:
    """One gold item: its conversation, turn, written-out responses and known answer."""
    _check_role(role)
    spec = gold_item_check(
        campaign=campaign,
        context=context,
        responses=responses,
        answer=answer,
        explanation=explanation,
    )
    return _write(campaign, role, spec, source)


@transaction.atomic
def gold_items_import(
    *, campaign: Campaign, role: str, lines: Iterable[bytes | str], source: str
) -> list[GoldItem]:
    """Gold items from JSONL lines (the format: ``import_gold --help``), all or nothing:
    every line is checked first, and a file with bad lines raises one ``ValidationError``
    naming each of them ("line 3: …") with nothing written."""
    _check_role(role)
    specs: list[GoldSpec] = []
    errors: list[str] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            specs.append(_line_spec(campaign, raw))
        except ValidationError as exc:
            errors.append(f"line {number}: {' '.join(exc.messages)}")
    if errors:
        shown = errors[:MAX_NAMED_ERRORS]
        if len(errors) > len(shown):
            shown.append(f"… and {len(errors) - len(shown)} more bad lines.")
        raise ValidationError(shown)
    if not specs:
        raise ValidationError("The file holds no gold items.")
    return [_write(campaign, role, spec, source) for spec in specs]


def _check_role(role: str) -> None:
    if role not in GoldItem.Role.values:
        raise ValidationError(f"A gold item's role is {' or '.join(GoldItem.Role.values)}.")


def _line_spec(campaign: Campaign, raw: bytes | str) -> GoldSpec:
    try:
        row = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise ValidationError(f"not UTF-8 ({exc.reason}).") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"bad JSON ({exc.msg} at column {exc.colno}).") from None
    if not isinstance(row, dict):
        raise ValidationError(f"expected a JSON object, got {type(row).__name__}.")
    unknown = sorted(set(row) - set(LINE_FIELDS))
    if unknown:
        raise ValidationError(f"unknown field(s) {', '.join(map(repr, unknown))}.")
    if ("prompt" in row) == ("context" in row):
        raise ValidationError("give exactly one of 'prompt' and 'context'.")
    for field in ("responses", "answer", "explanation"):
        if field not in row:
            raise ValidationError(f"missing field {field!r}.")
    if not isinstance(row["responses"], list):
        raise ValidationError("'responses' must be a list of texts.")
    return gold_item_check(
        campaign=campaign,
        context=_line_context(row),
        responses=row["responses"],
        answer=row["answer"],
        explanation=row["explanation"],
    )


def _line_context(row: dict) -> list[Message]:
    if "prompt" in row:
        if not isinstance(row["prompt"], str):
            raise ValidationError("'prompt' must be a text.")
        return [Message(HUMAN, row["prompt"])]
    context = row["context"]
    if not isinstance(context, list) or not context:
        raise ValidationError("'context' must be a non-empty list of messages.")
    messages = []
    for i, message in enumerate(context):
        # "text" as in the lab's own records; "content" as in the chat formats.
        text = message.get("text", message.get("content")) if isinstance(message, dict) else None
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ValidationError(
                f"context[{i}] must be {{'role': 'human' | 'assistant', 'text': …}}."
            )
        messages.append(Message(ROLES[message["role"]], text))
    return messages


def _write(campaign: Campaign, role: str, spec: GoldSpec, source: str) -> GoldItem:
    # Finished and worker-less: never served as a task of its own, never counted as
    # collected data (the queue serves it on purpose, as a check).
    conversation = Conversation.objects.create(
        campaign=campaign,
        worker=None,
        status=Conversation.Status.FINISHED,
        source=import_source("gold:", source),
        finished_at=timezone.now(),
    )
    item = Turn.objects.create(
        conversation=conversation,
        index=0,
        prefix=[{"role": m.role, "text": m.text} for m in spec.context[:-1]],
        human_text=spec.context[-1].text,
        display_order=list(range(len(spec.responses))),  # slots; workers get their own
    )
    CandidateResponse.objects.bulk_create(
        CandidateResponse(
            turn=item,
            slot=slot,
            status=CandidateResponse.Status.DONE,
            text=text,
            finish_reason="stop",
            model_version=None,
        )
        for slot, text in enumerate(spec.responses)
    )
    return GoldItem.objects.create(
        item=item,
        campaign=campaign,
        role=role,
        answer=spec.answer,
        explanation=spec.explanation,
        source=import_source("", source),
    )
