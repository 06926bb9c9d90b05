"""Where a worker stands in a campaign (the onboarding gate) and small reads every crowd
module shares. The queue's reads are in ``labeling.queue_selectors``, the quality figures
in ``labeling.quality``."""

from __future__ import annotations

from enum import StrEnum

from django.db.models import Exists, OuterRef, QuerySet

from labeling.models import Campaign, Enrollment, GoldItem, Judgment, Pause


class Stage(StrEnum):
    """What a worker must do next in a campaign, in the order they meet it."""

    WITHDRAWN = "withdrawn"  # they left the campaign: nothing is served
    CONSENT = "consent"  # read and accept the (current version of the) consent page
    QUIZ = "quiz"  # pass the qualification quiz (attempts left)
    NOT_QUALIFIED = "not_qualified"  # failed every allowed attempt
    PAUSED = "paused"  # a rule or a researcher paused them: the page says why
    WORK = "work"  # the queue serves them tasks (sets, "done" pages: labeling.queue)


def enrollment(campaign: Campaign, worker) -> Enrollment | None:
    return Enrollment.objects.filter(campaign=campaign, worker=worker).first()


def quiz_required(campaign: Campaign) -> bool:
    return campaign.quiz_size > 0 and campaign.gold_items.filter(role=GoldItem.Role.QUIZ).exists()


def open_pause(campaign: Campaign, worker) -> Pause | None:
    return Pause.objects.filter(campaign=campaign, worker=worker, lifted_at__isnull=True).first()


def worker_stage(campaign: Campaign, worker) -> Stage:
    """The first step the worker has not done. Staff are workers here too."""
    enrolled = enrollment(campaign, worker)
    if enrolled is not None and enrolled.withdrawn_at is not None:
        return Stage.WITHDRAWN
    guidelines = campaign.current_guidelines()
    needs_consent = guidelines is not None and guidelines.consent.strip()
    if needs_consent and (enrolled is None or enrolled.consent_version != guidelines.version):
        return Stage.CONSENT
    if quiz_required(campaign) and (enrolled is None or enrolled.qualified_at is None):
        used = campaign.quiz_attempts.filter(worker=worker, passed__isnull=False).count()
        return Stage.QUIZ if used < campaign.quiz_max_attempts else Stage.NOT_QUALIFIED
    if open_pause(campaign, worker) is not None:
        return Stage.PAUSED
    return Stage.WORK


def counted_judgments(qs: QuerySet[Judgment] | None = None) -> QuerySet[Judgment]:
    """Judgments that count as data: not answers to gold checks, not by a worker paused in
    the judgment's campaign. Training, targets and the default exports read only these."""
    qs = Judgment.objects.all() if qs is None else qs
    return qs.exclude(Exists(GoldItem.objects.filter(item=OuterRef("item")))).exclude(
        worker_paused()
    )


def worker_paused() -> Exists:
    """For a row with ``campaign`` and ``worker`` (a judgment, a conversation): its worker
    is paused in its campaign now."""
    return Exists(
        Pause.objects.filter(
            campaign=OuterRef("campaign"), worker=OuterRef("worker"), lifted_at__isnull=True
        )
    )
