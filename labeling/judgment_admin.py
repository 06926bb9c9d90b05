"""Judgments in the researcher's panel: read-only, side by side with their context, and
corrected only by a superseding row (``services.judgments.judgment_supersede``)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from labeling import scale, selectors
from labeling.admin_rules import ReadOnly
from labeling.models import Judgment
from labeling.services.judgments import judgment_supersede


class SupersedeForm(forms.Form):
    answer = forms.CharField(
        help_text='Two responses: a button value such as "B3". More: the display positions '
        'top first, e.g. "C > A = B > D" (ties with "=").',
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, k: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.k = k

    def clean_answer(self):
        text = self.cleaned_data["answer"].strip().upper()
        try:
            if self.k == 2:
                position, strength = scale.parse_choice(text)
                return [[position], [1 - position]], strength
            groups = [[_position(p) for p in g.split("=")] for g in text.split(">")]
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return groups, None


def _position(letter: str) -> int:
    letter = letter.strip()
    if len(letter) != 1 or not letter.isalpha():
        raise ValueError(f"{letter!r} is not a response letter")
    return ord(letter) - ord("A")


# Append-only: staff may look, never add, change or delete (the model refuses too).
@admin.register(Judgment)
class JudgmentAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "pk",
        "item",
        "worker",
        "task_type",
        "question",
        "answer",
        "time_spent_ms",
        "is_current",
        "created_at",
    ]
    list_filter = ["task_type", "question", "source", "campaign"]
    list_select_related = ["item", "worker", "superseded_by"]
    fields = [
        "side_by_side",
        "worker",
        "task_type",
        "question",
        "strength",
        "time_spent_ms",
        "comment",
        "guideline_version",
        "ui_version",
        "source",
        "provenance_json",
        "supersedes",
        "recorded_by",
        "reason",
        "created_at",
        "supersede_link",
    ]
    readonly_fields = fields

    class Media:
        # The side-by-side cells' look: a stylesheet, as the Content-Security-Policy
        # refuses style attributes.
        css = {"all": ["labeling/admin.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("entries")

    @admin.display(description="Answer")
    def answer(self, judgment):
        return selectors.answer_text(judgment)

    @admin.display(description="Provenance")
    def provenance_json(self, judgment):
        return format_html("<pre>{}</pre>", json.dumps(judgment.provenance, indent=1))

    @admin.display(description="Current", boolean=True)
    def is_current(self, judgment):
        return not hasattr(judgment, "superseded_by")

    @admin.display(description="Item, as the worker saw it")
    def side_by_side(self, judgment):
        view = selectors.judgment_view(judgment)
        context = format_html_join(
            "", "<p><b>{}:</b> {}</p>", ((m.role.title(), m.text) for m in view.context)
        )
        cells = format_html_join(
            "",
            "<td><b>{}</b> · {} <small>{}</small><br>{}</td>",
            ((s.letter, s.note, s.model or "", s.text) for s in view.shown),
        )
        return format_html(
            '<div>{}</div><p><b>{}</b> {}</p><table class="shown"><tr>{}</tr></table>',
            context,
            view.question_prompt,
            view.answer,
            cells,
        )

    @admin.display(description="Correct it")
    def supersede_link(self, judgment):
        if hasattr(judgment, "superseded_by"):
            return format_html(
                'Superseded by <a href="{}">judgment {}</a>.',
                reverse("admin:labeling_judgment_change", args=[judgment.superseded_by.pk]),
                judgment.superseded_by.pk,
            )
        url = reverse("admin:labeling_judgment_supersede", args=[judgment.pk])
        return format_html('<a href="{}">Supersede with a corrected judgment…</a>', url)

    def get_urls(self):
        own = [
            path(
                "<int:pk>/supersede/",
                self.admin_site.admin_view(self.supersede_view),
                name="labeling_judgment_supersede",
            )
        ]
        return own + super().get_urls()

    def supersede_view(self, request, pk):
        judgment = get_object_or_404(Judgment, pk=pk)
        k = judgment.entries.count()
        form = SupersedeForm(request.POST or None, k=k)
        if request.method == "POST" and form.is_valid():
            order, strength = form.cleaned_data["answer"]
            try:  # PermissionDenied (not a researcher) goes on to Django's 403
                new = judgment_supersede(
                    judgment=judgment,
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    order=order,
                    strength=strength,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Judgment {new.pk} supersedes judgment {judgment.pk}.")
                return redirect("admin:labeling_judgment_change", new.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Supersede judgment {judgment.pk}",
            "judgment": judgment,
            "side_by_side": self.side_by_side(judgment),
            "form": form,
        }
        return TemplateResponse(request, "admin/labeling/judgment/supersede.html", context)
