"""Nothing the lab serves needs 'unsafe-inline' (the Content-Security-Policy refuses it): no
template and no admin page, the lab's own additions included (the judgment's side by
side), carries a style attribute, an inline script or style, or an event handler. The
browser tests catch what these miss (a style set from script, an htmx setting)."""

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import reverse

from labeling.services import conversations as svc
from tests.factories import finish_candidates

pytestmark = pytest.mark.django_db

INLINE = [
    re.compile(r"<[^>]*\sstyle=", re.I),  # a style attribute
    re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I),  # a script without src
    re.compile(r"<style", re.I),
    re.compile(r"<[^>]*\son[a-z]+=", re.I),  # onclick=, onload=…
]


TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
COMMENT = re.compile(r"{#.*?#}|{% comment %}.*?{% endcomment %}", re.S)


def inline_code(html: str) -> list[str]:
    return [m.group(0) for pattern in INLINE for m in pattern.finditer(html)]


def test_no_template_carries_inline_style_script_or_handlers():
    found = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        if bad := inline_code(COMMENT.sub("", path.read_text())):
            found[str(path.relative_to(TEMPLATES))] = bad
    assert found == {}


def test_no_admin_page_carries_inline_style_script_or_handlers(client, campaign, owner, researcher):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    turn = svc.turn_create(conversation=conversation, worker=owner, text="Hi")
    finish_candidates(turn, texts=("Hello!", "Go away."))
    svc.comparison_submit(turn=turn, worker=owner, choice="A3", time_spent_ms=900)
    client.force_login(researcher)
    urls = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        info = model._meta.app_label, model._meta.model_name
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        urls.append(reverse("admin:{}_{}_add".format(*info)))
        first = model_admin.get_queryset(None).first() if model.objects.exists() else None
        if first is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
    found = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 403), url  # 403: an append-only model's add
        if response.status_code == 200 and (bad := inline_code(response.content.decode())):
            found[url] = bad
    assert found == {}
    side_by_side = client.get(
        reverse("admin:labeling_judgment_change", args=[turn.judgments.get().pk])
    )
    assert 'table class="shown"' in side_by_side.content.decode()
    assert "labeling/admin.css" in side_by_side.content.decode()
