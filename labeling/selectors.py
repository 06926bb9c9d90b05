"""Reads. Views, tasks and commands get data through these functions."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils.crypto import salted_hmac

from labeling import scale
from labeling.models import (
    Campaign,
    CandidateResponse,
    Conversation,
    EvaluationRun,
    JudgedCandidate,
    Judgment,
    ModelVersion,
    TrainingRun,
    Turn,
)
from models_backend.dialogue import ASSISTANT, HUMAN, Message, Pair, to_transcript
from training.comparisons import Ranking
from training.questions import preferred_first, ranked_responses

CHAT_KINDS = (Campaign.Kind.CHAT, Campaign.Kind.RED_TEAM)


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
    texts, order = judgment_shown(judgment)
    preferred = set(preferred_first(judgment.question, order)[0])
    adjective = scale.QUESTION_TEXT[judgment.question].adjective
    return JudgmentView(
        context=dialogue_before(judgment.item),
        shown=[
            ShownCandidate(
                letter=_letter(e.position),
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
    ranks = sorted({e.rank for e in entries})
    return " > ".join(
        " = ".join(_letter(e.position) for e in entries if e.rank == r) for r in ranks
    )


def _letter(position: int) -> str:
    return chr(ord("A") + position)


def current_judgments(
    *, include_weakest: bool = False, campaign_slug: str | None = None
) -> QuerySet[Judgment]:
    """The latest judgment of every chain, oldest first. By default, as in the paper, the
    weakest level ("about the same") is left out; rankings and imports without a strength
    are kept."""
    qs = Judgment.objects.current().order_by("pk")
    if not include_weakest:
        qs = qs.filter(Q(strength__isnull=True) | Q(strength__gt=1))
    if campaign_slug:
        qs = qs.filter(campaign__slug=campaign_slug)
    return qs


def _with_entries(qs: QuerySet[Judgment]) -> QuerySet[Judgment]:
    entries = JudgedCandidate.objects.select_related("candidate__model_version").order_by(
        "position"
    )
    return qs.select_related("item", "worker").prefetch_related(Prefetch("entries", entries))


def judgment_shown(judgment: Judgment) -> tuple[list[str], list[list[int]]]:
    """(texts in display order, the answer as groups of display positions, top first)."""
    entries = list(judgment.entries.all())  # prefetched in position order
    texts = [e.candidate.text for e in entries]
    ranks = sorted({e.rank for e in entries})
    return texts, [[e.position for e in entries if e.rank == r] for r in ranks]


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
    qs = _with_entries(
        current_judgments(include_weakest=include_weakest, campaign_slug=campaign_slug)
    )
    for judgment in qs.iterator(chunk_size=500):
        yield judgment_ranking(judgment)


def preference_pairs(*, include_weakest: bool = False, campaign_slug: str | None = None):
    """(judgment id, Pair) for each current judgment of two responses, oldest first."""
    qs = current_judgments(include_weakest=include_weakest, campaign_slug=campaign_slug)
    for judgment in _with_entries(qs).iterator(chunk_size=500):
        ranking = judgment_ranking(judgment)
        if len(ranking.responses) == 2:
            yield judgment.pk, Pair(list(ranking.context), *ranking.responses)


def lab_export_rows(*, include_weakest: bool = False, campaign_slug: str | None = None):
    """One dict per current judgment, for ``export_preferences --format lab``: the context as
    chat messages, the responses in the order the worker saw them, the question and the
    answer as asked, chosen/rejected as the question maps them, and the provenance (read
    back by ``import_preferences --format lab`` and ``training.loaders`` format "lab")."""
    qs = current_judgments(include_weakest=include_weakest, campaign_slug=campaign_slug)
    qs = _with_entries(qs.select_related("campaign", "recorded_by"))
    for judgment in qs.iterator(chunk_size=500):
        context = dialogue_before(judgment.item)
        texts, order = judgment_shown(judgment)
        ranking = judgment_ranking(judgment, context)
        row = {
            "id": judgment.pk,
            "campaign": judgment.campaign.slug,
            "task_type": judgment.task_type,
            "question": judgment.question,
            "context": chat_messages(context),
            "responses": texts,
            "answer": {"order": order, "strength": judgment.strength},
            "worker": pseudonym(judgment.worker),
            "time_spent_ms": judgment.time_spent_ms,
            "comment": judgment.comment,
            "guideline_version": judgment.guideline_version,
            "ui_version": judgment.ui_version,
            "provenance": judgment.provenance,
            "source": judgment.source,
            "supersedes": judgment.supersedes_id,
            "reason": judgment.reason,
            "created_at": judgment.created_at.isoformat(),
        }
        if len(texts) == 2:
            row["chosen"], row["rejected"] = ranking.responses
            row["strength"] = judgment.strength
        yield row


def rankings_export_rows(*, campaign_slug: str | None = None):
    """``--format rankings``: {"context", "responses" preferred first[, "scores"]} per
    current judgment of three or more responses (read by ``training.loaders``)."""
    qs = current_judgments(include_weakest=True, campaign_slug=campaign_slug)
    for judgment in _with_entries(qs).iterator(chunk_size=500):
        ranking = judgment_ranking(judgment)
        if len(ranking.responses) < 3:
            continue
        row = {"context": chat_messages(ranking.context), "responses": list(ranking.responses)}
        if ranking.scores is not None:
            row["scores"] = list(ranking.scores)
        yield row


def red_team_rows(*, campaign_slug: str | None = None):
    """``--format red-team``: one row per finished red-team conversation, in the field layout
    of the public red-team-attempts file: the transcript as it continued (down the more
    harmful branch), the task description, the worker's ratings (``rating``: how successful
    the attack was; ``harm_rating``: how harmful the worst reply was; both 1-5 as asked) and
    a pseudonymous member id. Fields the lab does not measure are null."""
    qs = Conversation.objects.filter(
        campaign__kind=Campaign.Kind.RED_TEAM, status=Conversation.Status.FINISHED
    ).select_related("campaign", "worker")
    if campaign_slug:
        qs = qs.filter(campaign__slug=campaign_slug)
    for conversation in qs.order_by("pk").iterator(chunk_size=200):
        turns = [t for t in conversation_turns(conversation) if t.chosen_id is not None]
        messages = dialogue_before(turns[-1]) + [Message(ASSISTANT, turns[-1].chosen.text)]
        models = {
            c.model_version.name for t in turns for c in t.candidates.all() if c.model_version
        }
        yield {
            "transcript": to_transcript(messages),
            "min_harmlessness_score_transcript": None,
            "num_params": None,
            "model_type": ", ".join(sorted(models)),
            "rating": conversation.attack_rating,
            "harm_rating": conversation.harm_rating,
            "task_description": conversation.task_description,
            "task_descripton_harmlessness_score": None,  # sic: the public file's field name
            "red_team_member_id": pseudonym(conversation.worker),
            "is_upworker": None,
            "tags": None,
            "campaign": conversation.campaign.slug,
            "conversation_id": conversation.pk,
        }


def chat_messages(messages) -> list[dict]:
    return [
        {"role": "user" if m.role == HUMAN else "assistant", "content": m.text} for m in messages
    ]


def pseudonym(user) -> str | None:
    """A stable pseudonymous id for a worker: exports never carry usernames."""
    if user is None:
        return None
    digest = salted_hmac("labeling.pseudonym", str(user.pk), algorithm="sha256").hexdigest()
    return f"w-{digest[:16]}"


def active_preference_model() -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=ModelVersion.Kind.PREFERENCE, is_active=True).first()


def candidate_groups(turn_id: int) -> dict[tuple[str, str], list[int]]:
    """(model spec, prompt) → slots still waiting for generation. Candidates from one
    assistant are generated together, sharing one prefill of the dialogue."""
    groups: dict[tuple[str, str], list[int]] = {}
    waiting = CandidateResponse.objects.filter(
        turn_id=turn_id,
        status__in=[CandidateResponse.Status.PENDING, CandidateResponse.Status.RUNNING],
        model_version__isnull=False,
    ).select_related("model_version")
    for candidate in waiting.order_by("slot"):
        version = candidate.model_version
        groups.setdefault((version.spec, version.prompt), []).append(candidate.slot)
    return groups


def training_run(run_id: int) -> TrainingRun:
    return TrainingRun.objects.get(pk=run_id)


def evaluation_run(run_id: int) -> EvaluationRun:
    return EvaluationRun.objects.select_related("model_version").get(pk=run_id)


def judgments_since_last_training() -> int:
    """Usable judgments newer than the last successful run (all of them before one)."""
    last = (
        TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED)
        .order_by("-created_at")
        .first()
    )
    qs = current_judgments()
    if last is not None:
        qs = qs.filter(created_at__gt=last.created_at)
    return qs.count()


# --- Ranking and re-judge items (services: labeling/services/items.py; views:
# labeling/item_views.py). Until a reserving queue exists, serving is a plain query: the
# oldest item whose candidates are all done that this worker has not judged, never one of
# their own turns.

ITEM_KINDS = (Campaign.Kind.RANKING, Campaign.Kind.REJUDGE)


def item_campaigns_for_worker(user) -> QuerySet[Campaign]:
    """Active ranking and re-judge campaigns (a re-judge needs its source campaign)."""
    return (
        Campaign.objects.filter(is_active=True)
        .filter(
            Q(kind=Campaign.Kind.RANKING)
            | Q(kind=Campaign.Kind.REJUDGE, source_campaign__isnull=False)
        )
        .select_related("source_campaign")
    )


def get_item_campaign_for_user(user, slug: str) -> Campaign:
    if not user.is_authenticated:
        raise Http404
    try:
        return item_campaigns_for_worker(user).get(slug=slug)
    except Campaign.DoesNotExist:
        raise Http404 from None


def _item_scope(campaign: Campaign, user) -> QuerySet[Turn]:
    """The items ``campaign`` may serve to ``user``, ready or not, judged or not: a ranking
    campaign's own open items; for a re-judge, the source campaign's turns that their
    conversation's worker has judged, never the user's own."""
    if campaign.kind == Campaign.Kind.RANKING:
        qs = Turn.objects.filter(
            conversation__campaign=campaign, conversation__status=Conversation.Status.OPEN
        )
    elif campaign.kind == Campaign.Kind.REJUDGE and campaign.source_campaign_id is not None:
        owner_judged = Judgment.objects.filter(
            item=OuterRef("pk"), worker=OuterRef("conversation__worker")
        )
        qs = Turn.objects.filter(
            Exists(owner_judged), conversation__campaign_id=campaign.source_campaign_id
        )
    else:
        return Turn.objects.none()
    return qs.exclude(conversation__worker=user)


def _judged_by(user) -> Exists:
    return Exists(Judgment.objects.filter(item=OuterRef("pk"), worker=user))


def _candidates_in(*statuses: str) -> Exists:
    return Exists(CandidateResponse.objects.filter(turn=OuterRef("pk"), status__in=statuses))


def _all_candidates_done() -> Q:
    done = CandidateResponse.Status.DONE
    waiting = [s for s in CandidateResponse.Status.values if s != done]
    return Q(_candidates_in(done)) & ~Q(_candidates_in(*waiting))


def items_for_worker(campaign: Campaign, user) -> QuerySet[Turn]:
    """Items ready to serve to ``user``, oldest first."""
    return (
        _item_scope(campaign, user)
        .filter(_all_candidates_done())
        .exclude(_judged_by(user))
        .order_by("created_at", "pk")
    )


def next_item(campaign: Campaign, user) -> Turn | None:
    return (
        items_for_worker(campaign, user)
        .select_related("conversation__campaign")
        .prefetch_related("candidates__model_version")
        .first()
    )


def items_generating(campaign: Campaign, user) -> int:
    """Items not yet judged by ``user`` whose responses are still being written."""
    waiting = (CandidateResponse.Status.PENDING, CandidateResponse.Status.RUNNING)
    return (
        _item_scope(campaign, user)
        .filter(_candidates_in(*waiting))
        .exclude(_judged_by(user))
        .count()
    )


def get_item_for_worker(user, campaign: Campaign, pk: int) -> Turn:
    """An item within what ``campaign`` serves to ``user`` (ready or not, judged or not);
    anything else, such as the user's own turn or another campaign's item, is a 404."""
    if not user.is_authenticated:
        raise Http404
    try:
        return _item_scope(campaign, user).select_related("conversation__campaign").get(pk=pk)
    except Turn.DoesNotExist:
        raise Http404 from None


def item_is_served(campaign: Campaign, user, item: Turn) -> bool:
    """Whether ``campaign`` would serve ``item`` to ``user`` now (ready, not yet judged)."""
    return items_for_worker(campaign, user).filter(pk=item.pk).exists()


def item_in_scope(campaign: Campaign, user, item: Turn) -> bool:
    return _item_scope(campaign, user).filter(pk=item.pk).exists()


def item_judged_by(item: Turn, user) -> bool:
    return Judgment.objects.filter(item=item, worker=user).exists()


def item_display_order(item_id: int, worker_id: int, k: int) -> list[int]:
    """The order (candidate slots, A first) in which one worker sees an item's responses:
    a shuffle seeded by an HMAC of (item, worker) under the SECRET_KEY. Stable across
    reloads, different per worker, unpredictable without the key, and never stored: the
    form posts the candidate ids it showed, the service checks them against this order
    (a changed key makes a stale page refuse, not mislabel) and the judgment records the
    order shown."""
    digest = salted_hmac(
        "labeling.item_display_order", f"{item_id}:{worker_id}", algorithm="sha256"
    ).digest()
    order = list(range(k))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def item_shown(item: Turn, user) -> list[CandidateResponse]:
    """The item's candidates in the order ``user`` sees them (A first)."""
    candidates = sorted(item.candidates.all(), key=lambda c: c.slot)
    return [candidates[i] for i in item_display_order(item.pk, user.pk, len(candidates))]


@dataclass(frozen=True)
class ItemResponse:
    position: int  # 0 is shown first
    letter: str  # "A", "B", …
    candidate: CandidateResponse


@dataclass(frozen=True)
class ItemView:
    """What the item page shows a worker: the context and the responses in their order."""

    item: Turn
    context: list[Message]
    responses: list[ItemResponse]  # display order, A first
    shown_ids: str  # "12,9,10": the candidate ids as shown, posted back with the answer


def item_view(item: Turn, user) -> ItemView:
    shown = item_shown(item, user)
    return ItemView(
        item=item,
        context=dialogue_before(item),
        responses=[ItemResponse(p, _letter(p), c) for p, c in enumerate(shown)],
        shown_ids=",".join(str(c.pk) for c in shown),
    )


@dataclass(frozen=True)
class ItemTask:
    campaign: Campaign
    ready: int  # items this worker can judge now
    generating: int  # items whose responses are still being written


def item_tasks_for_worker(user) -> list[ItemTask]:
    """The home page's ranking and re-judge campaigns with what is waiting for the user."""
    return [
        ItemTask(
            campaign=campaign,
            ready=items_for_worker(campaign, user).count(),
            generating=items_generating(campaign, user),
        )
        for campaign in item_campaigns_for_worker(user)
    ]
