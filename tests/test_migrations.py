"""The data migration from comparisons (today's schema before judgments) to judgments."""

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("labeling", "0004_best_of_n")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_a_red_team_comparison_migrates_to_a_judgment_exported_with_the_other_response_chosen(
    tmp_path,
):
    old = migrate(BEFORE)
    User = old.get_model("auth", "User")
    ModelVersion = old.get_model("labeling", "ModelVersion")
    Campaign = old.get_model("labeling", "Campaign")
    Conversation = old.get_model("labeling", "Conversation")
    Turn = old.get_model("labeling", "Turn")
    Candidate = old.get_model("labeling", "CandidateResponse")
    Comparison = old.get_model("labeling", "Comparison")

    worker = User.objects.create(username="red-teamer")
    model = ModelVersion.objects.create(name="tiny", kind="assistant", spec="tiny-random")
    rows = []
    for mode, left_slot in (("red_team", 1), ("helpful", 0)):
        campaign = Campaign.objects.create(
            name=mode, slug=mode, mode=mode, instructions="x", model_a=model, model_b=model
        )
        conversation = Conversation.objects.create(campaign=campaign, worker=worker)
        turn = Turn.objects.create(
            conversation=conversation, index=0, human_text="Say something", left_slot=left_slot
        )
        safe = Candidate.objects.create(turn=turn, slot=0, status="done", text="I'd rather not.")
        harmful = Candidate.objects.create(turn=turn, slot=1, status="done", text="Something bad.")
        # The old page stored the pick as chosen: in red-teaming, the more harmful reply.
        picked, other = (harmful, safe) if mode == "red_team" else (safe, harmful)
        left = harmful if left_slot == 1 else safe
        Comparison.objects.create(
            turn=turn,
            worker=worker,
            left=left,
            chosen=picked,
            rejected=other,
            strength=3,
            time_spent_ms=1234,
        )
        rows.append((mode, picked, left))

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from labeling.models import Campaign as NewCampaign
    from labeling.models import Judgment

    assert dict(NewCampaign.objects.values_list("slug", "kind")) == {
        "red_team": "red_team",
        "helpful": "chat",
    }
    for mode, picked, left in rows:
        judgment = Judgment.objects.get(item__conversation__campaign__slug=mode)
        entries = list(judgment.entries.order_by("position"))
        assert [e.candidate_id for e in entries][0] == left.pk  # A was the left one
        assert next(e.candidate_id for e in entries if e.rank == 0) == picked.pk
        assert (judgment.strength, judgment.time_spent_ms) == (3, 1234)
        expected = "more_harmful" if mode == "red_team" else "better"
        assert judgment.question == expected
        assert judgment.item.display_order[0] == left.slot

    out = tmp_path / "out.jsonl"
    call_command("export_preferences", "--campaign", "red_team", "-o", str(out))
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["chosen"].endswith("Assistant: I'd rather not.")  # the other response
    assert row["rejected"].endswith("Assistant: Something bad.")
    call_command("export_preferences", "--campaign", "helpful", "-o", str(out))
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["chosen"].endswith("Assistant: I'd rather not.")  # picked as better: unchanged


def test_training_and_evaluation_runs_become_runs_and_models_still_name_theirs():
    old = migrate([("labeling", "0012_report_once_disagreement_spread")])
    ModelVersion = old.get_model("labeling", "ModelVersion")
    TrainingRun = old.get_model("labeling", "TrainingRun")
    EvaluationRun = old.get_model("labeling", "EvaluationRun")
    training = [
        TrainingRun.objects.create(status="succeeded", progress=1.0, metrics={"eval_accuracy": a})
        for a in (0.6, 0.7)
    ]
    pm = ModelVersion.objects.create(
        name="pm-run-2", kind="preference", spec="/pm", training_run=training[1]
    )
    EvaluationRun.objects.create(
        model_version=pm, status="failed", error="no tasks", config={"limit": 3}
    )

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from labeling.models import ModelVersion as NewModelVersion
    from labeling.models import Run

    pm = NewModelVersion.objects.get(name="pm-run-2")
    assert pm.training_run.kind == "preference"
    assert pm.training_run.metrics == {"eval_accuracy": 0.7}
    evaluation = Run.objects.get(kind="evaluation")
    assert evaluation.model_version == pm and evaluation.error == "no tasks"
    assert evaluation.config == {"limit": 3, "benchmark": "hhh"}
    assert Run.objects.filter(kind="preference").count() == 2
    new = Run.objects.create(kind="export")  # the id sequence moved past the copied ids
    assert new.pk > max(run.pk for run in Run.objects.exclude(pk=new.pk))
