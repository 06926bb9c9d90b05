"""The browser tests' watch on the Content-Security-Policy catches what it must: inline
code put into a lab page is refused by the browser and reported, and a page served without
an enforcing policy is named (conftest's ``csp`` fails any other test on either)."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INJECT = """() => {
  const styled = '<p id="styled" style="color: rgb(255, 0, 0)">x</p>';
  document.body.insertAdjacentHTML("beforeend", styled);
  const script = document.createElement("script");
  script.textContent = "window.injected = true";
  document.body.appendChild(script);
}"""


def test_inline_style_and_script_put_into_a_lab_page_are_refused_and_reported(
    lab_server, page, csp
):
    response = page.goto(lab_server.url + "/accounts/login/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    page.evaluate(INJECT)
    page.wait_for_function("() => window.__cspViolations.length >= 2")
    page.evaluate("0")  # the binding's reports arrive before this answer
    assert page.evaluate("window.injected") is None
    assert page.evaluate("getComputedStyle(styled).color") != "rgb(255, 0, 0)"
    violations = csp.take()
    assert {v["directive"] for v in violations} == {"style-src-attr", "script-src-elem"}
    assert all(v["page"].endswith("/accounts/login/") for v in violations)
    assert csp.bad_policies == []


def test_a_page_served_with_a_report_only_policy_is_named(lab_server, page, csp):
    page.route(
        "**/report-only/",
        lambda route: route.fulfill(
            body="<!doctype html><p>hi</p>",
            content_type="text/html",
            headers={"Content-Security-Policy-Report-Only": "default-src 'self'"},
        ),
    )
    page.goto(lab_server.url + "/report-only/")
    assert csp.bad_policies == [f"{lab_server.url}/report-only/: report-only policy"]
    csp.bad_policies.clear()


def test_a_missing_page_is_the_labs_own_404_styled_under_the_policy(lab_server, page, csp):
    response = page.goto(lab_server.url + "/no-such-page/")
    assert response.status == 404
    assert page.inner_text("h1") == "Page not found"
    assert page.evaluate("getComputedStyle(document.querySelector('.card')).borderRadius") == "8px"
    page.click("text=Back to your tasks")
    page.wait_for_selector("#id_username")  # home asks a visitor to log in
    assert csp.pages_checked == 3  # the 404, the redirect, the log-in page: each had the policy
