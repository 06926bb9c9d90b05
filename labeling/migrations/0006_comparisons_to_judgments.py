"""Every comparison becomes a judgment of what was asked.

Red-team campaigns asked "which response is more harmful?" and stored the pick as
``chosen``: their judgments get the question ``more_harmful`` with that pick as the answer's
top, so exports now give the *other* (less harmful) response as ``chosen``. Everything else
asked "which response is better?". The display order comes from ``left_slot`` (A was the
left one); campaigns' ``mode`` becomes ``kind``.
"""

import hashlib

from django.db import migrations

BATCH = 1000


def forward(apps, schema_editor):
    Campaign = apps.get_model("labeling", "Campaign")
    Turn = apps.get_model("labeling", "Turn")
    Comparison = apps.get_model("labeling", "Comparison")
    Judgment = apps.get_model("labeling", "Judgment")
    JudgedCandidate = apps.get_model("labeling", "JudgedCandidate")

    Campaign.objects.filter(mode="red_team").update(kind="red_team")
    Campaign.objects.exclude(mode="red_team").update(kind="chat")
    for left in (0, 1):
        Turn.objects.filter(left_slot=left).update(display_order=[left, 1 - left])

    comparisons = Comparison.objects.select_related(
        "turn__conversation__campaign", "left", "chosen", "rejected"
    ).order_by("pk")
    batch = []
    for comparison in comparisons.iterator(chunk_size=BATCH):
        batch.append(comparison)
        if len(batch) == BATCH:
            _convert(batch, Judgment, JudgedCandidate)
            batch = []
    if batch:
        _convert(batch, Judgment, JudgedCandidate)


def _convert(comparisons, Judgment, JudgedCandidate):
    judgments = []
    for c in comparisons:
        campaign = c.turn.conversation.campaign
        red_team = campaign.mode == "red_team"
        if c.source != "ui":
            task_type = "imported"
        else:
            task_type = "red_team" if red_team else "chat"
        right = c.rejected if c.left_id == c.chosen_id else c.chosen
        judgments.append(
            Judgment(
                item_id=c.turn_id,
                campaign_id=campaign.pk,
                worker_id=c.worker_id,
                recorded_by_id=c.worker_id,
                task_type=task_type,
                question="more_harmful" if red_team else "better",
                strength=c.strength,
                time_spent_ms=c.time_spent_ms,
                comment=c.comment,
                guideline_version=hashlib.sha256(campaign.instructions.encode()).hexdigest()[:12],
                ui_version=c.ui_version,
                provenance={
                    "candidates": [_provenance(c.left), _provenance(right)],
                    "migrated_from_comparison": c.pk,
                },
                source=c.source,
                created_at=c.created_at,
            )
        )
    judgments = Judgment.objects.bulk_create(judgments)
    entries = []
    for judgment, c in zip(judgments, comparisons, strict=True):
        right = c.rejected if c.left_id == c.chosen_id else c.chosen
        for position, candidate in enumerate((c.left, right)):
            rank = 0 if candidate.pk == c.chosen_id else 1  # the stored pick is the answer's top
            entries.append(
                JudgedCandidate(
                    judgment=judgment, candidate=candidate, position=position, rank=rank
                )
            )
    JudgedCandidate.objects.bulk_create(entries)


def _provenance(candidate):
    return {
        "id": candidate.pk,
        "slot": candidate.slot,
        "model_version_id": candidate.model_version_id,
        "sampling": candidate.sampling,
        "seed": candidate.seed,
        "finish_reason": candidate.finish_reason,
        "reward": candidate.reward,
    }


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0005_judgments"),
    ]

    operations = [
        migrations.RunPython(forward, migrations.RunPython.noop, elidable=False),
    ]
