"""What a person does in the browser, shared by the browser tests."""

import html
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


def shown_words(text: str) -> str:
    """Stored model output as the page shows it: rendered as markdown (labeling.rendering),
    then read as text, then as ``words``."""
    from django.utils.html import strip_tags

    from labeling.rendering import render_markdown

    return words(html.unescape(strip_tags(render_markdown(text))))


def snapshot(page, name: str) -> None:
    """Save the whole page as ``name``.png in $LAB_SCREENSHOTS, when it is set."""
    if SCREENSHOTS:
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def scale_ready(page) -> None:
    """Wait until the scale is on the page and lab.js has set it up (pick, then submit)."""
    page.wait_for_selector("form.picking .scale button")


def pick_and_submit(page, value: str) -> None:
    """Pick a level on the 8-point scale ("A3", "B4"…), then confirm it."""
    scale_ready(page)
    page.click(f".scale button[value={value}]")
    page.click("button.confirm")


def scale_labels(page) -> list[str]:
    """The scale's button labels, without their key numbers."""
    return [
        text.split("\n")[-1].strip() for text in page.locator(".scale button").all_inner_texts()
    ]
