"""What a person does in the browser, shared by the browser tests."""

import os

SCREENSHOTS = os.environ.get("LAB_SCREENSHOTS")  # a folder: keep pages there to look at


def log_in(page, lab_server, username: str, password: str) -> None:
    page.goto(lab_server.url + "/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button:has-text('Log in')")
    page.wait_for_selector("text=Your tasks")


def words(text: str) -> str:
    """Text as a page shows it, for comparing with stored model output: tiny-random writes
    arbitrary bytes, and innerText turns a carriage return into a line break."""
    return " ".join(text.split())


def snapshot(page, name: str) -> None:
    """Save the whole page as ``name``.png in $LAB_SCREENSHOTS, when it is set."""
    if SCREENSHOTS:
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)
