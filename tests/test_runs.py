"""One run model: every kind is claimed once, reports progress only while running, ends
failed with the reason on any error; the panel's Runs page starts runs and serves exports."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from labeling.models import Run
from labeling.services import runs as run_services
from labeling.tasks import _run, export_data
from tests.test_export_import import ROWS, write_jsonl

pytestmark = pytest.mark.django_db


def queued(kind=Run.Kind.EXPORT, **config) -> Run:
    return Run.objects.create(kind=kind, config=config)


def test_a_run_is_claimed_once_and_a_finished_run_takes_no_more_progress():
    run = queued()
    assert run_services.run_claim(run_id=run.pk)
    assert not run_services.run_claim(run_id=run.pk)  # a redelivered message
    run_services.run_progress(run_id=run.pk, progress=0.4, metrics={"rows": 4})
    run_services.run_succeed(run_id=run.pk, metrics={"rows": 10}, output="")
    run_services.run_progress(run_id=run.pk, progress=0.5, metrics={"rows": 5})  # late
    run.refresh_from_db()
    assert (run.status, run.progress, run.metrics) == (Run.Status.SUCCEEDED, 1.0, {"rows": 10})


def test_work_that_raises_ends_the_run_failed_with_the_reason():
    run = queued()
    seen = []

    def work(claimed, progress):
        seen.append(claimed.pk)
        progress(0.5, {"step": 1})
        raise RuntimeError("disk full")

    _run(run.pk, work)
    run.refresh_from_db()
    assert seen == [run.pk]
    assert run.status == Run.Status.FAILED and run.error == "RuntimeError: disk full"
    assert run.progress == 0.5 and run.finished_at is not None


def test_progress_is_throttled_but_the_final_write_always_lands(monkeypatch):
    run = queued()
    writes = []
    monkeypatch.setattr(
        run_services, "run_progress", lambda **kwargs: writes.append(kwargs["progress"])
    )

    def work(claimed, progress):
        for step in range(1, 101):
            progress(step / 100, {})

    _run(run.pk, work)
    assert writes[0] == 0.01 and writes[-1] == 1.0 and len(writes) < 10


@pytest.fixture
def collected(tmp_path):
    call_command("import_preferences", str(write_jsonl(tmp_path / "in.jsonl", ROWS)))


def test_a_researcher_exports_from_the_panel_and_downloads_the_file(
    client, researcher, collected, django_capture_on_commit_callbacks
):
    client.force_login(researcher)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("panel:export_start"), {"format": "trl"})
    assert response.status_code == 302 and len(callbacks) == 1
    run = Run.objects.get(kind=Run.Kind.EXPORT)
    assert run.config == {
        "format": "trl",
        "campaign": None,
        "include_weakest": False,
        "include_checks": False,
    }
    assert run.requested_by == researcher

    export_data(run.pk)  # what the worker does with the message

    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.metrics["rows"] == 2 and run.progress == 1.0
    page = client.get(reverse("panel:runs")).content.decode()
    assert reverse("panel:export_download", args=[run.pk]) in page
    download = client.get(reverse("panel:export_download", args=[run.pk]))
    assert download["Content-Disposition"].startswith("attachment")
    rows = [json.loads(line) for line in b"".join(download.streaming_content).splitlines()]
    assert [row["chosen"][0]["role"] for row in rows] == ["assistant", "assistant"]


def test_a_datasets_export_is_offered_as_one_zip(researcher, collected):
    import zipfile

    run = run_services.run_request(kind=Run.Kind.EXPORT, config={"format": "datasets"})
    export_data(run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.output.endswith(".zip")
    names = zipfile.ZipFile(run.output).namelist()
    assert "dataset_info.json" in names or any(n.endswith(".arrow") for n in names)


def test_only_researchers_download_and_only_files_of_the_export_folder(
    client, owner, researcher, tmp_path
):
    outside = tmp_path / "secret.txt"
    outside.write_text("not an export")
    run = Run.objects.create(kind=Run.Kind.EXPORT, status=Run.Status.SUCCEEDED, output=str(outside))
    url = reverse("panel:export_download", args=[run.pk])
    client.force_login(owner)
    assert client.get(url).status_code == 403
    client.force_login(researcher)
    assert client.get(url).status_code == 404


def test_an_evaluation_that_cannot_run_says_why_and_queues_nothing(
    client, researcher, tiny_assistant, settings
):
    settings.LAB_HHH_TASKS = ""
    client.force_login(researcher)
    response = client.post(reverse("panel:evaluation_start"), {"model_version": tiny_assistant.pk})
    assert response.status_code == 400
    assert "Set LAB_HHH_TASKS" in response.content.decode()
    assert not Run.objects.exists()


def test_the_runs_table_polls_only_while_a_run_is_live(client, researcher):
    client.force_login(researcher)
    run = queued()
    fragment = client.get(reverse("panel:runs") + "?poll=1", headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert 'hx-trigger="every 2s"' in body and "<h1>" not in body  # the fragment alone
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED, error="gone")
    body = client.get(reverse("panel:runs")).content.decode()
    assert 'hx-trigger="every 2s"' not in body and "gone" in body


def test_a_distillation_from_the_panel_is_queued_with_its_settings(
    client, researcher, django_capture_on_commit_callbacks
):
    client.force_login(researcher)
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(
            reverse("panel:distillation_start"),
            {"model": "tiny-random", "sample": 4, "epochs": 1},
        )
    run = Run.objects.get()
    assert run.kind == Run.Kind.DISTILLATION and len(callbacks) == 1
    assert run.config == {"model": "tiny-random", "sample": 4, "epochs": 1}


def test_a_distillation_run_registers_the_distilled_assistant(tmp_path):
    from labeling.models import ModelVersion
    from labeling.tasks import distill_assistant

    (tmp_path / "prompt.txt").write_text("Human: Be kind.\n\nAssistant: I will.")
    config = {
        "model": "tiny-random",
        "sample": 2,
        "sample_tokens": 4,
        "max_length": 16,
        "prompt_file": str(tmp_path / "prompt.txt"),
        "device": "cpu",
    }
    run = run_services.run_request(kind=Run.Kind.DISTILLATION, config=config)
    distill_assistant(run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(training_run=run)
    assert version.kind == ModelVersion.Kind.ASSISTANT and version.spec == run.output
    assert run.metrics  # the distillation's own results
