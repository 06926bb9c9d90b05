"""A small HTTP client that behaves like a browser without JavaScript: cookies, CSRF
tokens from the forms, redirects followed, and the forms of each page read back."""

from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    action: str  # absolute URL
    method: str  # "get" or "post"
    fields: dict[str, str] = field(default_factory=dict)  # hidden, text, textarea, selects
    radios: dict[str, list[str]] = field(default_factory=dict)  # name -> values
    selects: dict[str, list[str]] = field(default_factory=dict)  # name -> option values
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, text)
    page: str = ""  # the URL of the page the form is on (a browser's Referer)

    def button(self, pattern: str) -> tuple[str, str, str] | None:
        """The first submit button whose text matches ``pattern`` (case-insensitive)."""
        return next((b for b in self.buttons if re.search(pattern, b[2], re.I)), None)


@dataclass
class Page:
    url: str
    status: int
    html: str
    forms: list[Form]
    links: list[tuple[str, str]]  # (absolute href, text)

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path

    def form(self, action_pattern: str) -> Form | None:
        return next((f for f in self.forms if re.search(action_pattern, f.action)), None)

    def link(self, text_pattern: str) -> str | None:
        found = (href for href, text in self.links if re.search(text_pattern, text, re.I))
        return next(found, None)

    def has_text(self, pattern: str) -> bool:
        return re.search(pattern, self.html, re.I) is not None


class _FormParser(HTMLParser):
    def __init__(self, base: str):
        super().__init__(convert_charrefs=True)
        self.base = base
        self.forms: list[Form] = []
        self.links: list[tuple[str, str]] = []
        self._form: Form | None = None
        self._text_into: list | None = None  # [kind, name/href, value, collected text]
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            action = urllib.parse.urljoin(self.base, a.get("action") or self.base)
            method = (a.get("method") or "get").lower()
            self._form = Form(action=action, method=method, page=self.base)
            self.forms.append(self._form)
        elif tag == "a" and a.get("href"):
            self._text_into = ["a", urllib.parse.urljoin(self.base, a["href"]), "", ""]
        elif self._form is None:
            return
        elif tag == "input":
            kind, name = a.get("type", "text").lower(), a.get("name")
            if kind == "submit":
                self._form.buttons.append((name or "", a.get("value", ""), a.get("value", "")))
            elif kind == "radio" and name:
                self._form.radios.setdefault(name, []).append(a.get("value", ""))
            elif kind == "checkbox" and name:
                if "checked" in a:
                    self._form.fields[name] = a.get("value", "on")
            elif name:
                self._form.fields[name] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._text_into = ["textarea", a["name"], "", ""]
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._form.selects[self._select] = []
        elif tag == "option" and self._select:
            self._form.selects[self._select].append(a.get("value", ""))
            if "selected" in a:
                self._form.fields[self._select] = a.get("value", "")
        elif tag == "button" and a.get("type", "submit") == "submit":
            self._text_into = ["button", a.get("name", ""), a.get("value", ""), ""]

    def handle_data(self, data):
        if self._text_into is not None:
            self._text_into[3] += data

    def handle_endtag(self, tag):
        grabbed = self._text_into
        if grabbed is not None and tag == grabbed[0]:
            kind, name, value, text = grabbed
            if kind == "a":
                self.links.append((name, " ".join(text.split())))
            elif kind == "textarea" and self._form is not None:
                self._form.fields[name] = text
            elif kind == "button" and self._form is not None:
                self._form.buttons.append((name, value, " ".join(text.split())))
            self._text_into = None
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self._form = None


class HttpError(Exception):
    def __init__(self, page: Page):
        super().__init__(f"HTTP {page.status} at {page.url}")
        self.page = page


def endpoint(method: str, url: str) -> str:
    """A request's endpoint for the latency figures: "POST /turns/<id>/compare/"."""
    path = re.sub(r"/\d+/", "/<id>/", urllib.parse.urlsplit(url).path)
    return f"{method} {path}"


class Browser:
    """One simulated worker's browser. Every request's time is recorded per endpoint
    (the path with numbers as <id>) in the shared ``latencies``."""

    def __init__(self, base_url: str, latencies: dict | None = None, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/") + "/"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.latencies = latencies if latencies is not None else defaultdict(list)
        self.timeout = timeout

    def url(self, path: str) -> str:
        return urllib.parse.urljoin(self.base_url, path)

    def get(self, path: str, params: dict | None = None) -> Page:
        url = self.url(path)
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        return self._open(urllib.request.Request(url), "GET")

    def submit(self, form: Form, extra: dict | None = None, button=None) -> Page:
        """Send ``form`` as a browser would: its fields, ``extra`` over them, and the
        clicked button's name and value."""
        data = dict(form.fields)
        data.update(extra or {})
        if button is not None and button[0]:
            data[button[0]] = button[1]
        body = urllib.parse.urlencode(data, doseq=True)
        if form.method == "get":
            return self.get(form.action + "?" + body)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": form.page or form.action,
        }
        request = urllib.request.Request(form.action, data=body.encode(), headers=headers)
        return self._open(request, "POST")

    def _open(self, request: urllib.request.Request, method: str) -> Page:
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                page = self._page(response.geturl(), response.status, response.read())
        except urllib.error.HTTPError as exc:
            page = self._page(exc.geturl() or request.full_url, exc.code, exc.read())
            raise HttpError(page) from None
        finally:
            self.latencies[endpoint(method, request.full_url)].append(time.perf_counter() - started)
        return page

    @staticmethod
    def _page(url: str, status: int, body: bytes) -> Page:
        html = body.decode("utf-8", "replace")
        parser = _FormParser(url)
        parser.feed(html)
        return Page(url=url, status=status, html=html, forms=parser.forms, links=parser.links)
