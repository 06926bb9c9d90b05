"""The web process never imports torch or transformers (DESIGN §8): a fresh process loads
the ASGI application, logs in and sends a message through it, and generation is enqueued
by name without either module."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from labeling.models import Turn
from labeling.services import conversations as svc
from tests.conftest import REPO, worker_database_url

# Drives hhh.asgi.application with raw ASGI messages, as uvicorn would: the login form,
# then the conversation page (its CSRF token), then the message.
WEB_PROCESS = r"""
import asyncio, json, re, sys, time
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from celery.signals import after_task_publish
from hhh.asgi import application

published = []
after_task_publish.connect(lambda sender=None, **kw: published.append(sender), weak=False)
jar = {}


async def request(method, path, form=None, headers=()):
    body = urlencode(form or {}).encode()
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"), (b"cookie", cookie.encode()),
            (b"content-type", b"application/x-www-form-urlencoded"), *headers,
        ],
    }
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        if incoming:
            return incoming.pop()
        await asyncio.Event().wait()  # no disconnect: the client waits for the answer

    async def send(message):
        sent.append(message)

    await application(scope, receive, send)
    for name, value in sent[0]["headers"]:
        if name.lower() == b"set-cookie":
            for key, morsel in SimpleCookie(value.decode()).items():
                jar[key] = morsel.value
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode()


async def main(username, password, conversation):
    await request("GET", "/accounts/login/")
    login = {"username": username, "password": password, "csrfmiddlewaretoken": jar["csrftoken"]}
    status, _ = await request("POST", "/accounts/login/", login)
    assert status == 302, status
    page = f"/conversations/{conversation}/"
    status, _ = await request("GET", page)
    assert status == 200, status
    token = [(b"x-csrftoken", jar["csrftoken"].encode()), (b"hx-request", b"true")]
    status, html = await request("POST", page + "messages/", {"text": "Hello there"}, token)
    assert status == 200, (status, html[:500])
    return status


status = asyncio.run(main(*sys.argv[1:]))
for _ in range(100):  # the web server sends its tasks from a thread of its own
    if published:
        break
    time.sleep(0.1)
print(json.dumps({
    "status": status,
    "published": published,
    "heavy": sorted(m for m in ("torch", "transformers") if m in sys.modules),
}))
"""


@pytest.mark.django_db(transaction=True)
def test_sending_a_message_through_the_asgi_app_imports_no_torch(campaign, owner):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    env = {**os.environ, "DATABASE_URL": worker_database_url()}
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, "owner", "owner-pass-123", str(conversation.pk)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["published"] == ["labeling.tasks.generate_candidates"]
    assert report["heavy"] == []
    turn = Turn.objects.get(conversation=conversation)
    assert turn.human_text == "Hello there" and turn.candidates.count() == 2
