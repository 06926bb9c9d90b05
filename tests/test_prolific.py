"""Prolific entry (a study link signs in a pseudonymous account) and the end-of-set page
(completion code and the way back to Prolific; another set for everyone else)."""

import json
import re
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from labeling.models import Assignment, PlatformSession, PlatformWorker
from labeling.services import conversations as svc
from tests.factories import finish_candidates
from tests.test_views import PageMarkup

pytestmark = pytest.mark.django_db

PID, STUDY, SESSION = (
    "5f0c2a9e8d7b6a5f4e3d2c1b",
    "study0123456789abcdef0123",
    "sessionABCDEF_0123-xyz",
)
LINK_IDS = {"PROLIFIC_PID": PID, "STUDY_ID": STUDY, "SESSION_ID": SESSION}
CODE = "C1A2B3C4"
COMPLETION_URL = f"https://app.prolific.com/submissions/complete?cc={CODE}"


def entry(slug, **ids):
    return reverse("labeling:prolific_entry", args=[slug]) + "?" + urlencode(ids)


def signed_in(client):
    return client.session.get("_auth_user_id")


def nothing_written():
    return not (
        get_user_model().objects.filter(username__startswith="p-").exists()
        or PlatformWorker.objects.exists()
        or PlatformSession.objects.exists()
    )


def tasks_done(campaign, worker, count):
    """``count`` tasks of the worker's first set done, as the queue records them."""
    now = timezone.now()
    Assignment.objects.bulk_create(
        Assignment(
            campaign=campaign,
            worker=worker,
            status=Assignment.Status.DONE,
            reserved_at=now,
            expires_at=now,
            finished_at=now,
        )
        for _ in range(count)
    )


def participant():
    return PlatformWorker.objects.get(participant_id=PID).user


@pytest.fixture
def study(campaign):
    campaign.completion_code = CODE
    campaign.completion_url = COMPLETION_URL
    campaign.set_size = 10
    campaign.save()
    return campaign


def test_a_study_link_signs_in_a_new_pseudonymous_account_with_no_password(client, study):
    response = client.get(entry(study.slug, **LINK_IDS))
    assert response.status_code == 302
    assert response.url == reverse("labeling:task_next", args=[study.slug])
    platform_worker = PlatformWorker.objects.get(participant_id=PID)
    user = platform_worker.user
    assert platform_worker.platform == "prolific"
    assert re.fullmatch(r"p-[a-z2-7]{10}", user.username)
    assert not user.has_usable_password()
    for field in (user.username, user.email, user.first_name, user.last_name):
        assert PID not in field
    assert signed_in(client) == str(user.pk)
    session = PlatformSession.objects.get()
    assert (session.campaign, session.study_id, session.session_id) == (study, STUDY, SESSION)
    assert session.completed_at is None


def test_the_same_participant_comes_back_to_the_same_account(client, study):
    client.get(entry(study.slug, **LINK_IDS))
    client.get(entry(study.slug, **LINK_IDS))  # a reload: the same session
    client.logout()
    client.get(entry(study.slug, **{**LINK_IDS, "SESSION_ID": "second-session"}))
    user = PlatformWorker.objects.get(participant_id=PID).user
    assert get_user_model().objects.filter(username__startswith="p-").count() == 1
    assert signed_in(client) == str(user.pk)
    assert sorted(PlatformSession.objects.values_list("session_id", flat=True)) == [
        "second-session",
        SESSION,
    ]


def test_two_participants_get_two_accounts(client, study):
    client.get(entry(study.slug, **LINK_IDS))
    client.get(entry(study.slug, **{**LINK_IDS, "PROLIFIC_PID": "another-participant"}))
    users = {w.user_id for w in PlatformWorker.objects.all()}
    assert len(users) == 2 and signed_in(client) in {str(pk) for pk in users}


@pytest.mark.parametrize(
    ("ids", "said"),
    [
        (
            {"STUDY_ID": STUDY, "SESSION_ID": SESSION},
            "PROLIFIC_PID (the participant id) is missing",
        ),
        ({**LINK_IDS, "SESSION_ID": ""}, "SESSION_ID (the session id) is missing"),
        ({**LINK_IDS, "STUDY_ID": "a b"}, "STUDY_ID (the study id) must be 1 to 100 letters"),
        ({**LINK_IDS, "PROLIFIC_PID": "x" * 101}, "PROLIFIC_PID (the participant id) must be"),
        ({**LINK_IDS, "PROLIFIC_PID": "{{%PROLIFIC_PID%}}"}, "PROLIFIC_PID (the participant id)"),
        ({}, "STUDY_ID (the study id) is missing"),
    ],
)
def test_a_link_with_missing_or_bad_ids_is_refused_clearly_and_nothing_is_written(
    client, study, ids, said
):
    response = client.get(entry(study.slug, **ids))
    assert response.status_code == 400
    page = response.content.decode()
    assert "This study link does not work" in page and said in page
    assert nothing_written() and signed_in(client) is None


def test_an_unknown_or_closed_study_says_so_and_writes_nothing(client, study):
    unknown = client.get(entry("no-such-study", **LINK_IDS))
    assert (
        unknown.status_code == 404
        and "There is no study at this address" in unknown.content.decode()
    )
    study.is_active = False
    study.save()
    closed = client.get(entry(study.slug, **LINK_IDS))
    assert closed.status_code == 410 and "This study is closed" in closed.content.decode()
    assert nothing_written() and signed_in(client) is None


def test_a_session_id_of_another_study_is_refused(client, study, red_team_campaign):
    client.get(entry(study.slug, **LINK_IDS))
    again = client.get(entry(red_team_campaign.slug, **LINK_IDS))
    assert again.status_code == 400
    assert "belongs to another study" in again.content.decode()
    assert PlatformSession.objects.count() == 1


def test_someone_else_signed_in_in_this_browser_is_signed_out_first(client, study, owner):
    client.force_login(owner)
    client.get(entry(study.slug, **LINK_IDS))
    assert signed_in(client) == str(PlatformWorker.objects.get().user_id) != str(owner.pk)


def test_a_participant_who_finished_their_set_gets_the_code_and_is_sent_back_to_prolific(
    client, study
):
    client.get(entry(study.slug, **LINK_IDS))
    tasks_done(study, participant(), 10)
    response = client.get(reverse("labeling:set_done", args=[study.slug]))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'<code class="completion-code">{CODE}</code>' in page
    assert f'<meta http-equiv="refresh" content="5;url={COMPLETION_URL}">' in page
    assert f'href="{COMPLETION_URL}"' in page and "Return to Prolific" in page
    assert "Start another set" not in page
    assert PageMarkup(page).problems == []
    # The crowd simulator reads the code off the page this way.
    found = re.search(r"completion code[^A-Z0-9]*<[^>]*>\s*([A-Z0-9-]+)", page, re.I)
    assert found and found.group(1) == CODE
    session = PlatformSession.objects.get()
    first = session.completed_at
    assert first is not None
    client.get(reverse("labeling:set_done", args=[study.slug]))
    session.refresh_from_db()
    assert session.completed_at == first  # the first visit's time stays


def test_a_participant_in_a_study_without_a_code_is_told_to_contact_the_researchers(client, study):
    study.completion_code = ""
    study.save()
    client.get(entry(study.slug, **LINK_IDS))
    tasks_done(study, participant(), 10)
    page = client.get(reverse("labeling:set_done", args=[study.slug])).content.decode()
    assert "no completion code set up" in page and "contact the researchers" in page
    assert "http-equiv" not in page
    assert PlatformSession.objects.get().completed_at is not None


def test_a_completion_url_that_is_not_a_web_address_is_never_followed(client, study):
    type(study).objects.filter(pk=study.pk).update(completion_url="javascript:alert(1)")
    client.get(entry(study.slug, **LINK_IDS))
    tasks_done(study, participant(), 10)
    page = client.get(reverse("labeling:set_done", args=[study.slug])).content.decode()
    assert CODE in page and "javascript:" not in page and "Enter this code on Prolific" in page


def test_an_unfinished_set_goes_back_to_the_next_task(client, study):
    client.get(entry(study.slug, **LINK_IDS))
    tasks_done(study, participant(), 9)
    response = client.get(reverse("labeling:set_done", args=[study.slug]))
    assert response.status_code == 302
    assert response.url == reverse("labeling:task_next", args=[study.slug])
    assert PlatformSession.objects.get().completed_at is None


def test_a_worker_from_no_platform_is_thanked_and_offered_another_set(client, study, owner):
    client.force_login(owner)
    tasks_done(study, owner, 10)
    page = client.get(reverse("labeling:set_done", args=[study.slug])).content.decode()
    assert "Set complete: 10 tasks. Thank you!" in page
    assert f'action="{reverse("labeling:set_start", args=[study.slug])}"' in page
    assert "Start another set" in page and CODE not in page and "http-equiv" not in page
    assert PageMarkup(page).problems == []


def test_the_end_page_asks_anonymous_visitors_to_log_in(client, study):
    response = client.get(reverse("labeling:set_done", args=[study.slug]))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_entry_error_page_carries_no_inline_script_or_style(client, study):
    assert PageMarkup(client.get(entry(study.slug)).content.decode()).problems == []


@pytest.mark.parametrize("fmt", ["lab", "hh-rlhf", "red-team"])
def test_exports_carry_the_pseudonym_never_the_platform_ids(
    client, study, red_team_campaign, tmp_path, fmt
):
    """A participant chats (or red-teams) through to a finished conversation; no export
    format names them by anything but the pseudonym."""
    chosen = red_team_campaign if fmt == "red-team" else study
    client.get(entry(chosen.slug, **LINK_IDS))
    worker = participant()
    conversation = svc.conversation_start(campaign=chosen, worker=worker)
    turn = svc.turn_create(conversation=conversation, worker=worker, text="Hi")
    finish_candidates(turn, texts=("Hello!", "Go away."))
    svc.comparison_submit(turn=turn, worker=worker, choice="A3")
    svc.conversation_finish(
        conversation=conversation,
        worker=worker,
        rating=None if fmt == "red-team" else 4,
        attack_rating=2 if fmt == "red-team" else None,
        harm_rating=1 if fmt == "red-team" else None,
        task_description="Asked for something rude." if fmt == "red-team" else "",
    )
    out = tmp_path / "out.jsonl"
    call_command("export_preferences", "--format", fmt, "-o", str(out))
    text = out.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 1
    for platform_id in (PID, STUDY, SESSION, worker.username):
        assert platform_id not in text
    if fmt == "lab":
        assert json.loads(text)["worker"].startswith("w-")
