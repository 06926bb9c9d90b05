"""A dropped database connection costs no 500: retried once when nothing was committed,
back to the page when something was, else a "try again" page (labeling.db_blips)."""

import pytest
from django.db import OperationalError, connection
from django.urls import reverse

from labeling import views
from labeling.models import Turn
from labeling.services import conversations as svc

pytestmark = pytest.mark.django_db(transaction=True)  # the middleware watches real commits


class Blips:
    """Wraps a function so that its first `times` calls fail as a dropped connection does."""

    def __init__(self, func, times: int):
        self.func, self.left, self.calls = func, times, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.left:
            self.left -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return self.func(*args, **kwargs)


def test_a_page_that_meets_a_dropped_connection_is_served_by_one_retry(
    owner_client, conversation, monkeypatch
):
    blip = Blips(views.selectors.get_conversation_for_user, times=1)
    monkeypatch.setattr(views.selectors, "get_conversation_for_user", blip)
    response = owner_client.get(reverse("labeling:conversation", args=[conversation.pk]))
    assert response.status_code == 200 and blip.calls == 2


def test_a_send_that_failed_before_its_commit_is_retried_and_saves_one_turn(
    owner_client, conversation, monkeypatch
):
    blip = Blips(svc.turn_create, times=1)
    monkeypatch.setattr(views.services, "turn_create", blip)
    url = reverse("labeling:message_send", args=[conversation.pk])
    response = owner_client.post(url, {"text": "Hello there"})
    assert response.status_code == 302 and blip.calls == 2  # to the page, as any send
    assert list(Turn.objects.values_list("human_text", flat=True)) == ["Hello there"]


def test_a_send_whose_turn_was_saved_is_never_reported_as_failed(
    owner_client, conversation, monkeypatch
):
    """The turn is committed, then the page fails to render: the worker is sent back to
    the conversation, which shows the message waiting for its responses."""
    monkeypatch.setattr(views, "_respond", Blips(views._respond, times=5))
    page = reverse("labeling:conversation", args=[conversation.pk])
    url = reverse("labeling:message_send", args=[conversation.pk])
    response = owner_client.post(
        url, {"text": "Hello there"}, HTTP_REFERER="http://testserver" + page
    )
    assert response.status_code == 303 and response.url == "http://testserver" + page
    assert Turn.objects.filter(conversation=conversation).count() == 1


def test_an_htmx_send_whose_turn_was_saved_refreshes_the_page(
    owner_client, conversation, monkeypatch
):
    monkeypatch.setattr(views, "_respond", Blips(views._respond, times=1))
    url = reverse("labeling:message_send", args=[conversation.pk])
    response = owner_client.post(url, {"text": "Hello there"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    assert Turn.objects.filter(conversation=conversation).count() == 1


def test_a_blip_that_outlasts_the_retry_gets_a_try_again_page_not_a_500(
    owner_client, conversation, monkeypatch
):
    blip = Blips(views.selectors.get_conversation_for_user, times=2)
    monkeypatch.setattr(views.selectors, "get_conversation_for_user", blip)
    response = owner_client.get(reverse("labeling:conversation", args=[conversation.pk]))
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "Try again in a moment" in response.content.decode()


def test_other_database_errors_are_not_hidden(owner_client, conversation, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug, not a blip")

    monkeypatch.setattr(views.selectors, "get_conversation_for_user", broken)
    with pytest.raises(ValueError):
        owner_client.get(reverse("labeling:conversation", args=[conversation.pk]))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="ends PostgreSQL backends")
def test_the_server_answers_after_the_database_ended_all_its_connections(lab_server, owner):
    from labeling.crowd_sim.browser import Browser

    owner.set_password("a-password-for-this-test")
    owner.save()
    browser = Browser(lab_server.url)
    login = browser.get("accounts/login/")
    form = login.form(r"/accounts/login/")
    browser.submit(form, {"username": owner.username, "password": "a-password-for-this-test"})
    assert browser.get("").status == 200
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchall(), "the server held no connection to end"
    for _ in range(3):  # every pooled connection was ended: each is replaced, none errs
        assert browser.get("").status == 200
