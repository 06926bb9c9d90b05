"""Reads. Views, tasks and commands get data through these functions: access, the
dialogue of an item, judgments as training reads them, runs. Ranking and re-judge items
have ``labeling.item_selectors``; export rows ``labeling.export_rows``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from labeling import scale
from labeling.crowd_selectors import counted_judgments, worker_paused
from labeling.models import (
    CHAT_KINDS,
    Campaign,
    CandidateResponse,
    Conversation,
    GoldItem,
    JudgedCandidate,
    Judgment,
    ModelVersion,
    QuizAnswer,
    Run,
    Turn,
)
from labeling.streams import LiveCandidate
from models_backend.dialogue import ASSISTANT, HUMAN, Message, Pair
from training.comparisons import Ranking
from training.questions import preferred_first, ranked_responses


def campaigns_for_worker(user) -> QuerySet[Campaign]:
    """Campaigns a worker can start a conversation in."""
    return Campaign.objects.filter(
        is_active=True, kind__in=CHAT_KINDS, model_a__isnull=False, model_b__isnull=False
    )


def conversations_for_worker(user) -> QuerySet[Conversation]:
    return Conversation.objects.filter(worker=user).select_related("campaign")


def get_conversation_for_user(user, pk: int) -> Conversation:
    """The worker who owns it sees it; staff see every conversation; anyone else gets 404
    (not 403: we do not confirm that someone else's conversation exists)."""
    qs = Conversation.objects.select_related("campaign", "worker")
    return _get_visible(user, qs, owner_field="worker", pk=pk)


def get_turn_for_user(user, pk: int) -> Turn:
    """Same rule as ``get_conversation_for_user``, for a turn of the conversation."""
    qs = Turn.objects.select_related("conversation__campaign", "conversation__worker")
    return _get_visible(user, qs, owner_field="conversation__worker", pk=pk)


def _get_visible(user, qs: QuerySet, *, owner_field: str, pk: int):
    if not user.is_authenticated:
        raise Http404
    if not user.is_staff:
        qs = qs.filter(**{owner_field: user})
    try:
        return qs.get(pk=pk)
    except qs.model.DoesNotExist:
        raise Http404 from None


def conversation_turns(conversation: Conversation) -> list[Turn]:
    return list(
        conversation.turns.select_related("chosen").prefetch_related(
            Prefetch("candidates", queryset=CandidateResponse.objects.order_by("slot"))
        )
    )


def turn_live(turn_id: int, *, stale_after_s: float) -> list[LiveCandidate]:
    """A turn's candidates for the live stream. Stalled: running without a heartbeat for
    ``stale_after_s``, or still waiting for a worker that long after being asked (a retry
    sets the heartbeat: asked again)."""
    stale = timezone.now() - timedelta(seconds=stale_after_s)
    rows = CandidateResponse.objects.filter(turn_id=turn_id).order_by("slot")
    return [
        LiveCandidate(
            id=c.pk,
            status=c.status,
            text=c.text,
            stalled=c.status in (c.Status.PENDING, c.Status.RUNNING)
            and (c.heartbeat_at or c.created_at) < stale,
        )
        for c in rows.only("status", "text", "heartbeat_at", "created_at")
    ]


@dataclass(frozen=True)
class TurnView:
    """What the page shows of a turn: candidates in display order, A first."""

    turn: Turn
    shown: list[CandidateResponse]  # [A, B, …] as the conversation's worker sees them
    ready: bool  # every candidate done
    failed: bool  # at least one failed


def turn_view(turn: Turn) -> TurnView:
    by_slot = {c.slot: c for c in turn.candidates.all()}
    shown = [by_slot[s] for s in turn.display_order if s in by_slot]
    done = CandidateResponse.Status.DONE
    return TurnView(
        turn=turn,
        shown=shown,
        ready=len(shown) == len(by_slot) >= 2 and all(c.status == done for c in shown),
        failed=any(c.status == CandidateResponse.Status.FAILED for c in shown),
    )


def dialogue_before(turn: Turn) -> list[Message]:
    """The dialogue a reply to ``turn`` continues: the item's prefix (imported history, a
    ranking context), earlier turns with their picked replies, then this turn's message."""
    messages = [Message(m["role"], m["text"]) for m in turn.prefix]
    earlier = (
        Turn.objects.filter(conversation_id=turn.conversation_id, index__lt=turn.index)
        .select_related("chosen")
        .order_by("index")
    )
    for prior in earlier:
        messages += [Message(m["role"], m["text"]) for m in prior.prefix]
        messages.append(Message(HUMAN, prior.human_text))
        if prior.chosen is not None:
            messages.append(Message(ASSISTANT, prior.chosen.text))
    messages.append(Message(HUMAN, turn.human_text))
    return messages


@dataclass(frozen=True)
class ShownCandidate:
    letter: str  # "A", "B", … in display order
    rank: int  # 0: the answer's top under the question
    note: str  # "picked as more harmful · dispreferred", "rank 2 of 4 · …"
    model: str | None
    text: str


@dataclass(frozen=True)
class JudgmentView:
    context: list[Message]
    shown: list[ShownCandidate]
    question_prompt: str
    answer: str


def judgment_view(judgment: Judgment) -> JudgmentView:
    """A judgment side by side with its full context, for researchers."""
    entries = list(judgment.entries.select_related("candidate__model_version").order_by("position"))
    preferred = set(preferred_first(judgment.question, answer_order(entries))[0])
    adjective = scale.QUESTION_TEXT[judgment.question].adjective
    return JudgmentView(
        context=dialogue_before(judgment.item),
        shown=[
            ShownCandidate(
                letter=position_letter(e.position),
                rank=e.rank,
                note=(
                    (f"picked as {adjective}" if e.rank == 0 else "not picked")
                    if len(entries) == 2
                    else f"rank {e.rank + 1}"
                )
                + (" · preferred" if e.position in preferred else ""),
                model=e.candidate.model_version.name if e.candidate.model_version else None,
                text=e.candidate.text,
            )
            for e in entries
        ],
        question_prompt=scale.QUESTION_TEXT[judgment.question].prompt,
        answer=answer_text(judgment),
    )


def answer_text(judgment: Judgment) -> str:
    """ "B is better (B3)" for a pair; "C > A = B" for a ranking."""
    entries = sorted(judgment.entries.all(), key=lambda e: e.position)
    if len(entries) == 2 and judgment.strength is not None:
        top = next(e.position for e in entries if e.rank == 0)
        choice = scale.choice_of(top, judgment.strength)
        return f"{scale.label(judgment.question, choice[0], judgment.strength)} ({choice})"
    return " > ".join(" = ".join(map(position_letter, group)) for group in answer_order(entries))


def position_letter(position: int) -> str:
    return chr(ord("A") + position)


def current_judgments(
    *, include_weakest: bool = False, campaign_slug: str | None = None, include_checks: bool = False
) -> QuerySet[Judgment]:
    """The latest judgment of every chain that counts as data, oldest first. By default, as
    in the paper, the weakest level ("about the same") is left out; rankings and imports
    without a strength are kept. Answers to gold checks and judgments of workers paused in
    their campaign never count (``crowd_selectors.counted_judgments``); ``include_checks``
    (an export's choice, never training's) keeps them, marked by ``with_check_marks``."""
    qs = Judgment.objects.current().order_by("pk")
    if not include_checks:
        qs = counted_judgments(qs)
    if not include_weakest:
        qs = qs.filter(Q(strength__isnull=True) | Q(strength__gt=1))
    if campaign_slug:
        qs = qs.filter(campaign__slug=campaign_slug)
    return qs


def with_check_marks(qs: QuerySet[Judgment]) -> QuerySet[Judgment]:
    """Annotates ``is_gold`` (an answer to a gold check) and ``is_paused`` (its worker is
    paused in its campaign now): what ``check_mark`` reads."""
    return qs.annotate(
        is_gold=Exists(GoldItem.objects.filter(item=OuterRef("item"))), is_paused=worker_paused()
    )


def check_mark(judgment: Judgment) -> str | None:
    """Why a judgment (from ``with_check_marks``) is not data: "gold", "paused" or None."""
    if judgment.is_gold:
        return "gold"
    return "paused" if judgment.is_paused else None


def quiz_answers(*, campaign_slug: str | None = None) -> QuerySet[QuizAnswer]:
    """Answers given in qualification quizzes, oldest first: never data, exported only on
    request (``export_preferences --include-checks``)."""
    qs = QuizAnswer.objects.select_related(
        "attempt__campaign", "attempt__worker", "gold__item"
    ).prefetch_related("gold__item__candidates__model_version")
    if campaign_slug:
        qs = qs.filter(attempt__campaign__slug=campaign_slug)
    return qs.order_by("pk")


def quiz_answer_candidates(answer: QuizAnswer) -> list[CandidateResponse]:
    """The gold item's candidates in the order the quiz showed them."""
    by_slot = {c.slot: c for c in answer.gold.item.candidates.all()}
    return [by_slot[slot] for slot in answer.shown]


def quiz_answer_shown(answer: QuizAnswer) -> tuple[list[str], list[list[int]]]:
    """(texts in the order shown, the answer as groups of display positions, top first):
    ``judgment_shown`` for a quiz answer."""
    texts = [c.text for c in quiz_answer_candidates(answer)]
    return texts, [list(g) for g in answer.order]


def with_entries(qs: QuerySet[Judgment]) -> QuerySet[Judgment]:
    entries = JudgedCandidate.objects.select_related("candidate__model_version").order_by(
        "position"
    )
    return qs.select_related("item", "worker").prefetch_related(Prefetch("entries", entries))


def judgment_shown(judgment: Judgment) -> tuple[list[str], list[list[int]]]:
    """(texts in display order, the answer as groups of display positions, top first)."""
    entries = list(judgment.entries.all())  # prefetched in position order
    return [e.candidate.text for e in entries], answer_order(entries)


def answer_order(entries) -> list[list[int]]:
    """A judgment's entries (in position order) as groups of display positions, top first."""
    ranks = sorted({e.rank for e in entries})
    return [[e.position for e in entries if e.rank == r] for r in ranks]


def judgment_ranking(judgment: Judgment, context=None) -> Ranking:
    """The judgment as the training code reads it: responses preferred first (for a
    red-team question the less harmful first), tied ones with equal scores."""
    texts, order = judgment_shown(judgment)
    responses, scores = ranked_responses(judgment.question, texts, order)
    context = dialogue_before(judgment.item) if context is None else context
    return Ranking(tuple(context), responses, f"judgment:{judgment.pk}", scores=scores)


def preference_rankings(*, include_weakest: bool = False, campaign_slug: str | None = None):
    """A ``training.comparisons.Ranking`` per current judgment (pairs are rankings of two;
    the objectives weight each ranking's pairs 1/C(K,2))."""
    qs = with_entries(
        current_judgments(include_weakest=include_weakest, campaign_slug=campaign_slug)
    )
    for judgment in qs.iterator(chunk_size=500):
        yield judgment_ranking(judgment)


def preference_pairs(*, include_weakest: bool = False, campaign_slug: str | None = None):
    """(judgment id, Pair) for each current judgment of two responses, oldest first."""
    qs = current_judgments(include_weakest=include_weakest, campaign_slug=campaign_slug)
    for judgment in with_entries(qs).iterator(chunk_size=500):
        ranking = judgment_ranking(judgment)
        if len(ranking.responses) == 2:
            yield judgment.pk, Pair(list(ranking.context), *ranking.responses)


def active_preference_model() -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=ModelVersion.Kind.PREFERENCE, is_active=True).first()


def candidates_held_elsewhere(*, turn_id: int, holder: str, stale_after_s: float) -> bool:
    """Whether another worker holds some of the turn's candidates and beat for them within
    ``stale_after_s``: it may be alive, or may just have died."""
    fresh = timezone.now() - timedelta(seconds=stale_after_s)
    return (
        CandidateResponse.objects.filter(
            turn_id=turn_id, status=CandidateResponse.Status.RUNNING, heartbeat_at__gte=fresh
        )
        .exclude(holder=holder)
        .exists()
    )


def run(run_id: int) -> Run:
    return Run.objects.select_related("model_version").get(pk=run_id)


def judgments_since_last_training() -> int:
    """Usable judgments newer than the last successful run (all of them before one)."""
    last = (
        Run.objects.filter(kind=Run.Kind.PREFERENCE, status=Run.Status.SUCCEEDED)
        .order_by("-created_at")
        .first()
    )
    qs = current_judgments()
    if last is not None:
        qs = qs.filter(created_at__gt=last.created_at)
    return qs.count()
