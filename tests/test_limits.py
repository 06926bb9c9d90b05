"""Abuse limits: per-worker messages and judgments per minute (labeling.limits), and the
log-in lockout (django-axes) with its page."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessAttemptExpiration
from django.core.cache import cache
from django.db.models import F
from django.test import RequestFactory
from django.urls import reverse

from labeling.limits import over_limit
from tests.conftest import REPO
from tests.test_views import PageMarkup

pytestmark = pytest.mark.django_db

MESSAGES_SENTENCE = (
    "You are sending messages faster than 20 a minute. "
    "Please wait a moment and send again: your text is kept."
)


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch):
    """Empty counters and one fixed minute: a test must not straddle a minute's end."""
    cache.clear()  # the suite's cache is this process's memory (hhh.test_settings)
    monkeypatch.setattr("django_ratelimit.core.time.time", lambda: 1_800_000_000.0)
    yield
    cache.clear()


def request_by(user):
    request = RequestFactory().post("/")
    request.user = user
    return request


def test_the_twenty_first_message_in_a_minute_is_refused_with_a_clear_sentence(owner):
    answers = [over_limit(request_by(owner), "message") for _ in range(21)]
    assert answers[:20] == [None] * 20
    assert answers[20] == MESSAGES_SENTENCE


def test_judgments_have_their_own_limit_and_sentence(owner, settings):
    settings.LAB_JUDGMENTS_PER_MINUTE = 2
    answers = [over_limit(request_by(owner), "judgment") for _ in range(3)]
    assert answers[:2] == [None, None]
    assert answers[2] == (
        "You are sending judgments faster than 2 a minute. "
        "Please wait a moment and send again: your answer is kept."
    )


def test_each_worker_and_each_action_is_counted_apart(owner, other_worker, settings):
    settings.LAB_MESSAGES_PER_MINUTE = 1
    settings.LAB_JUDGMENTS_PER_MINUTE = 1
    assert over_limit(request_by(owner), "message") is None
    assert over_limit(request_by(owner), "message") is not None
    assert over_limit(request_by(other_worker), "message") is None
    assert over_limit(request_by(owner), "judgment") is None


def test_the_next_minute_starts_a_fresh_count(owner, settings, monkeypatch):
    settings.LAB_MESSAGES_PER_MINUTE = 1
    over_limit(request_by(owner), "message")
    assert over_limit(request_by(owner), "message") is not None
    monkeypatch.setattr("django_ratelimit.core.time.time", lambda: 1_800_000_000.0 + 60)
    assert over_limit(request_by(owner), "message") is None


def test_a_limit_of_zero_turns_it_off(owner, settings):
    settings.LAB_MESSAGES_PER_MINUTE = 0
    assert all(over_limit(request_by(owner), "message") is None for _ in range(100))


def test_an_unknown_action_is_a_programming_error(owner):
    with pytest.raises(ValueError, match="no limit for 'messages'"):
        over_limit(request_by(owner), "messages")


def test_an_unreachable_cache_lets_the_work_through(owner, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    settings.LAB_MESSAGES_PER_MINUTE = 1
    assert over_limit(request_by(owner), "message") is None
    assert over_limit(request_by(owner), "message") is None


# --- Log-in lockout -----------------------------------------------------------------------


def log_in(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(client, owner):
    for _ in range(4):
        assert log_in(client, "owner", "wrong").status_code == 200  # the form again
    fifth = log_in(client, "owner", "wrong")
    assert fifth.status_code == 429
    right = log_in(client, "owner", "owner-pass-123")
    assert right.status_code == 429
    page = right.content.decode()
    assert "After 5 failed log-in attempts for owner, logging in is locked for 15 minutes." in (
        " ".join(page.split())
    )
    assert PageMarkup(page).problems == []
    assert "_auth_user_id" not in client.session


def test_a_right_password_clears_the_count(client, owner):
    for _ in range(4):
        log_in(client, "owner", "wrong")
    assert log_in(client, "owner", "owner-pass-123").status_code == 302
    client.logout()
    for _ in range(4):
        log_in(client, "owner", "wrong")
    assert log_in(client, "owner", "owner-pass-123").status_code == 302


def test_after_thirty_wrong_passwords_the_right_one_is_refused_until_the_cool_off_ends(
    client, owner, settings
):
    statuses = [log_in(client, "owner", f"guess-{n}").status_code for n in range(30)]
    assert statuses == [200] * 4 + [429] * 26  # the form four times, then the lockout page
    assert log_in(client, "owner", "owner-pass-123").status_code == 429
    assert "_auth_user_id" not in client.session
    # The cool-off passes: every stored attempt moves that far into the past.
    past = settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    assert AccessAttempt.objects.update(attempt_time=F("attempt_time") - past) == 1
    AccessAttemptExpiration.objects.update(expires_at=F("expires_at") - past)
    assert log_in(client, "owner", "owner-pass-123").status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_a_locked_account_does_not_lock_out_others_at_the_same_address(client, owner, other_worker):
    for _ in range(5):
        log_in(client, "owner", "wrong")
    assert log_in(client, "other", "other-pass-123").status_code == 302


# --- Settings -------------------------------------------------------------------------------


def settings_in_a_new_process(**env) -> subprocess.CompletedProcess:
    code = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    full = {k: v for k, v in os.environ.items() if k != "LAB_CACHE_URL"} | env
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_several_web_processes_share_counts_in_redis_when_the_broker_is_redis():
    shown = settings_in_a_new_process(CELERY_BROKER_URL="redis://127.0.0.1:6379/5")
    assert shown.stdout.strip() == "django.core.cache.backends.redis.RedisCache", shown.stderr
    alone = settings_in_a_new_process(CELERY_BROKER_URL="filesystem://", LAB_CACHE_URL="")
    assert alone.stdout.strip() == "django.core.cache.backends.locmem.LocMemCache", alone.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LAB_CACHE_URL", "memcached://127.0.0.1", "LAB_CACHE_URL must be a redis:// URL"),
        ("LAB_LOGIN_FAILURE_LIMIT", "0", "LAB_LOGIN_FAILURE_LIMIT=0 must be at least 1"),
        ("LAB_JUDGMENTS_PER_MINUTE", "fast", "not an integer"),
    ],
)
def test_a_bad_limit_setting_stops_the_lab_from_starting(name, value, message):
    shown = settings_in_a_new_process(**{name: value})
    assert shown.returncode != 0 and message in shown.stderr


def test_over_the_limit_the_pages_refuse_with_the_sentence_and_keep_the_typed_text(
    client, owner, campaign, red_team_campaign, settings
):
    from labeling.models import Turn
    from labeling.services import conversations as chat

    settings.LAB_MESSAGES_PER_MINUTE = 1
    first = chat.conversation_start(campaign=campaign, worker=owner)
    second = chat.conversation_start(campaign=red_team_campaign, worker=owner)
    client.force_login(owner)
    url = reverse("labeling:message_send", args=[first.pk])
    assert client.post(url, {"text": "One"}, HTTP_HX_REQUEST="true").status_code == 200
    url = reverse("labeling:message_send", args=[second.pk])
    answer = client.post(url, {"text": "Two, typed with care"}, HTTP_HX_REQUEST="true")
    page = answer.content.decode()
    assert "faster than 1 a minute" in page and "Two, typed with care" in page
    assert list(Turn.objects.values_list("human_text", flat=True)) == ["One"]
