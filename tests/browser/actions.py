"""What a person does in the browser, shared by the browser tests."""


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(live_server.url + "/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button:has-text('Log in')")
    page.wait_for_selector("text=Your tasks")


def words(text: str) -> str:
    """Text as a page shows it, for comparing with stored model output: tiny-random writes
    arbitrary bytes, and innerText turns a carriage return into a line break."""
    return " ".join(text.split())
