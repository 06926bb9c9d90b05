import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import TrainingRun
from labeling.services import conversations as svc
from tests.factories import finish_candidates

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_comparisons(campaign, owner):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    for i in range(2):
        turn = svc.turn_create(conversation=conversation, worker=owner, text=f"q{i}")
        finish_candidates(turn)
        svc.comparison_submit(turn=turn, worker=owner, choice="A4")


def test_request_training_needs_two_usable_comparisons(campaign):
    with pytest.raises(CommandError, match="at least 2 usable judgments"):
        call_command("request_training")
    assert not TrainingRun.objects.exists()


def test_request_training_queues_a_run_with_the_given_overrides(
    two_comparisons, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("request_training", "--model", "tiny-random", "--epochs", "2")
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.QUEUED
    assert run.config["model"] == "tiny-random" and run.config["epochs"] == 2
    assert len(callbacks) == 1


def test_a_researcher_queues_training_from_the_admin(
    client, researcher, tiny_assistant, django_capture_on_commit_callbacks
):
    client.force_login(researcher)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("admin:labeling_modelversion_changelist"),
            {"action": "train_preference_model", "_selected_action": [tiny_assistant.pk]},
        )
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert run.config["model"] == "tiny-random" and run.requested_by == researcher


def test_seed_demo_creates_logins_and_a_helpful_campaign_twice_without_error(db, capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "worker1" in out and "researcher" in out
    from django.contrib.auth import get_user_model

    from labeling.models import Campaign

    assert get_user_model().objects.get(username="researcher").is_staff
    assert Campaign.objects.get(slug="helpful-chat").kind == "chat"


def test_the_admin_shows_training_progress_as_a_bar(client, researcher):
    TrainingRun.objects.create(
        status=TrainingRun.Status.RUNNING, progress=0.42, metrics={"eval_accuracy": 0.61}
    )
    client.force_login(researcher)
    page = client.get(reverse("admin:labeling_trainingrun_changelist")).content.decode()
    assert '<progress max="100" value="42"></progress> 42%' in page
    assert "0.610" in page
