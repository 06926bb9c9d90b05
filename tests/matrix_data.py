"""The permission matrix's world (tests/test_permission_matrix.py): one of everything a URL
of the lab names, made through the services as the UI and the workers make them, and the
seven actors who visit every URL.

Three campaigns, each asking its qualification quiz (one question): a chat campaign, a
ranking campaign and a re-judge campaign over the chat one, whose guidelines also ask for
consent. The owner, the other worker and the paused worker passed every quiz; the paused
worker is paused in all three; the unqualified worker consented but never took a quiz;
the researcher (staff) and the superuser did neither (staff are workers too, at the gate).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from labeling import scale
from labeling.item_selectors import item_display_order
from labeling.models import Campaign, Conversation, ModelVersion, Pause, Report, Run, Turn
from labeling.services import conversations as chat
from labeling.services import generation, items, onboarding, queue
from labeling.services.gold import gold_item_create
from labeling.services.quality import pause_create, report_submit
from models_backend.dialogue import HUMAN, Message
from tests.factories import finish_candidates, ranking_campaign, rejudge_campaign

# The columns of the matrix, in order.
ACTORS = ("anonymous", "owner", "other", "unqualified", "paused", "researcher", "superuser")
# Who took every campaign's quiz (and passed it).
QUALIFIED = ("owner", "other", "paused")
EXPORT_NAME = "permission-matrix.jsonl"


@dataclass
class World:
    users: dict  # actor -> User (anonymous: None)
    chat: Campaign
    ranking: Campaign
    rejudge: Campaign
    conversation: Conversation  # the owner's open chat: a picked turn, then a pair to pick
    picked_turn: Turn
    pending_turn: Turn
    others_turn: Turn  # the other worker's finished chat's turn: the re-judge item
    item: Turn  # a ranking item the owner holds (the campaign's overlap is 1)
    pause: Pause  # the paused worker's pause in the chat campaign
    preference_model: ModelVersion
    export_run: Run
    export_file: Path
    report: Report  # the other worker's, of their own turn: the admin's reports have one
    group: Group

    def owner(self):
        return self.users["owner"]


def _user(name: str, **flags):
    return get_user_model().objects.create_user(name, password=f"{name}-pass-123", **flags)


def _quiz(campaign: Campaign) -> None:
    """One quiz question, the first response right; one attempt of one question to pass."""
    campaign.quiz_size, campaign.quiz_pass_mark, campaign.quiz_max_attempts = 1, 1.0, 2
    campaign.save()
    k = campaign.candidates_per_item
    gold_item_create(
        campaign=campaign,
        role="quiz",
        context=[Message(HUMAN, f"A quiz question of {campaign.slug}?")],
        responses=["right", *(f"wrong {j}" for j in range(1, k))],
        answer=0,
        explanation="The first answers the question.",
    )


def _pass_quiz(campaign: Campaign, worker) -> None:
    attempt = onboarding.quiz_start(campaign=campaign, worker=worker)
    gold = campaign.gold_items.get(pk=attempt.questions[0])
    shown = item_display_order(gold.item_id, worker.pk, campaign.candidates_per_item)
    right = shown.index(0)
    order = [[right], *([p] for p in range(len(shown)) if p != right)]
    onboarding.quiz_answer(
        attempt=attempt,
        worker=worker,
        gold=gold,
        order=order,
        strength=3 if len(shown) == 2 else None,
    )


def _judged_chat(campaign: Campaign, worker, *, finish: bool):
    """The worker's conversation from the queue, with one turn picked (and finished)."""
    conversation = queue.task_next(campaign=campaign, worker=worker).conversation
    turn = chat.turn_create(conversation=conversation, worker=worker, text="Hello?")
    finish_candidates(turn, ("A kind reply.", "A curt reply."))
    chat.comparison_submit(turn=turn, worker=worker, choice="A3")
    if finish:
        chat.conversation_finish(conversation=conversation, worker=worker, rating=4, comment="")
    return conversation, turn


def build_world() -> World:
    users = {"anonymous": None}
    for actor in ACTORS[1:5]:
        users[actor] = _user(actor)
    users["researcher"] = _user("researcher", is_staff=True)
    users["superuser"] = get_user_model().objects.create_superuser(
        "superuser", password="superuser-pass-123"
    )
    researcher = users["researcher"]

    assistant = ModelVersion.objects.create(
        name="tiny-random", kind=ModelVersion.Kind.ASSISTANT, spec="tiny-random"
    )
    preference_model = ModelVersion.objects.create(
        name="pm-matrix", kind=ModelVersion.Kind.PREFERENCE, spec="pm-matrix"
    )
    chat_campaign = Campaign.objects.create(
        name="Matrix chat",
        slug="matrix-chat",
        instructions="Pick the better one.",
        model_a=assistant,
        model_b=assistant,
        max_new_tokens=8,
        max_turns=3,
    )
    ranking = ranking_campaign(assistant, k=3, slug="matrix-rank")
    rejudge = rejudge_campaign(chat_campaign, slug="matrix-rejudge")
    onboarding.guidelines_publish(
        campaign=rejudge,
        by=researcher,
        text="Judge on your own.",
        examples={level: f"An example of {level}." for level in scale.CHOICES},
        consent="You agree to judge.",
    )
    for campaign in (chat_campaign, ranking, rejudge):
        _quiz(campaign)
    for actor in ("owner", "other", "unqualified", "paused"):
        onboarding.consent_give(campaign=rejudge, worker=users[actor], version=1)
    for campaign in (chat_campaign, ranking, rejudge):
        for actor in QUALIFIED:
            _pass_quiz(campaign, users[actor])

    # The other worker's finished chat: what the re-judge campaign serves the owner.
    _, others_turn = _judged_chat(chat_campaign, users["other"], finish=True)
    report = report_submit(
        campaign=chat_campaign,
        worker=users["other"],
        item=others_turn,
        reason=Report.Reason.values[0],
        draft={},
    )
    # The owner's open chat: one turn picked, the next one's pair waiting for a pick.
    conversation, picked_turn = _judged_chat(chat_campaign, users["owner"], finish=False)
    pending_turn = chat.turn_create(
        conversation=conversation, worker=users["owner"], text="And then?"
    )
    finish_candidates(pending_turn, ("Then this.", "Then that."))

    made = items.ranking_items_create(
        campaign=ranking,
        contexts=[("matrix", [Message(HUMAN, f"Question {i}?")]) for i in range(2)],
    )
    for item in made:
        finish_candidates(item, ("Paris.", "Lyon.", "I don't know."))
    held = queue.task_next(campaign=ranking, worker=users["owner"]).item
    rejudged = queue.task_next(campaign=rejudge, worker=users["owner"]).item
    assert rejudged == others_turn, "the re-judge campaign serves the owner the other's turn"

    pauses = [
        pause_create(campaign=campaign, worker=users["paused"], reason="Checking.", by=researcher)
        for campaign in (chat_campaign, ranking, rejudge)
    ]

    export_dir = Path(settings.LAB_EXPORT_DIR)
    export_dir.mkdir(parents=True, exist_ok=True)
    export_file = export_dir / EXPORT_NAME
    export_file.write_text('{"chosen": [], "rejected": []}\n')
    export_run = Run.objects.create(
        kind=Run.Kind.EXPORT,
        status=Run.Status.SUCCEEDED,
        config={"format": "trl"},
        output=str(export_file),
        requested_by=researcher,
    )
    _axes_rows()
    return World(
        users=users,
        chat=chat_campaign,
        ranking=ranking,
        rejudge=rejudge,
        conversation=conversation,
        picked_turn=picked_turn,
        pending_turn=pending_turn,
        others_turn=others_turn,
        item=held,
        pause=pauses[0],
        preference_model=preference_model,
        export_run=export_run,
        export_file=export_file,
        report=report,
        group=Group.objects.create(name="matrix readers"),
    )


def _axes_rows() -> None:
    """A row of each of django-axes' models, so their admin pages have an object to show."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    where = {"user_agent": "matrix", "ip_address": "127.0.0.1", "username": "other"}
    where |= {"http_accept": "*/*", "path_info": "/accounts/login/"}
    AccessAttempt.objects.create(**where, get_data="", post_data="", failures_since_start=1)
    AccessLog.objects.create(**where)
    AccessFailureLog.objects.create(**where)


def fail_pending(world: World) -> None:
    """The pending pair's generation failed: what "Try again" is for."""
    ids = list(world.pending_turn.candidates.values_list("pk", flat=True))
    generation.candidates_fail(candidate_ids=ids, error="matrix: the model fell over")


def pick_pending(world: World) -> None:
    """The owner picks the pending pair: a message may be sent, the chat finished."""
    chat.comparison_submit(turn=world.pending_turn, worker=world.owner(), choice="B2")
