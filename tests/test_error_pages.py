"""With debug off, errors are the lab's own pages: 404 and 403 in base.html, the CSRF
failure without Django's inline <style> (the CSP refuses it), and a 500 that needs neither
a request context nor the database."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.views import defaults

STYLESHEET = '<link rel="stylesheet" href="/static/labeling/app.css">'


def test_the_500_page_renders_without_a_request_context_or_the_database():
    # No django_db mark: a query here would fail the test.
    response = defaults.server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in page and STYLESHEET in page
    assert "<script" not in page and "style=" not in page


@pytest.mark.django_db
def test_a_missing_page_is_the_labs_404_with_the_policy(client):
    response = client.get("/no-such-page/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "Page not found" in page and STYLESHEET in page
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_a_refused_page_is_the_labs_403(rf):
    request = rf.get("/panel/")
    request.user = AnonymousUser()
    response = defaults.permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()


@pytest.mark.django_db
def test_a_post_without_its_csrf_token_gets_the_labs_page_not_djangos_inline_styled_one():
    response = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"username": "owner", "password": "x"}
    )
    page = response.content.decode()
    assert response.status_code == 403
    assert "This form has expired" in page and STYLESHEET in page
    assert "<style" not in page
