"""Pauses, reports and each campaign's worker figures in the researcher's panel. Pauses are
made and lifted only through ``services.quality`` (a reason is required both ways); reports
are read-only."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from labeling import quality
from labeling.admin_rules import AddOnly, ReadOnly
from labeling.models import Campaign, Pause, Report
from labeling.services.quality import pause_create, pause_lift

FORM = "admin/labeling/quality_form.html"


class LiftForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why the worker may go on (kept with the pause).",
    )


class ManualPauseForm(forms.Form):
    campaign = forms.ModelChoiceField(Campaign.objects.all())
    # Typed, not a list: a crowd has thousands of accounts.
    worker = forms.ModelChoiceField(
        get_user_model().objects.all(),
        to_field_name="username",
        widget=forms.TextInput,
        help_text="Their username.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The worker reads this on their paused page: say plainly why.",
    )


# Pauses change only through the services (a reason each way): no edits, no deletes.
@admin.register(Pause)
class PauseAdmin(AddOnly, admin.ModelAdmin):
    change_list_template = "admin/labeling/pause/change_list.html"
    list_display = ["worker", "campaign", "rule", "reason", "created_at", "is_open", "lifted_by"]
    list_filter = [("lifted_at", admin.EmptyFieldListFilter), "rule", "campaign"]
    list_select_related = ["worker", "campaign", "lifted_by"]
    search_fields = ["worker__username", "reason"]
    fields = [
        "worker",
        "campaign",
        "rule",
        "reason",
        "figures",
        "created_by",
        "created_at",
        "lifted_at",
        "lifted_by",
        "lift_reason",
        "lift_link",
    ]
    readonly_fields = fields

    @admin.display(description="Open", boolean=True)
    def is_open(self, pause):
        return pause.lifted_at is None

    @admin.display(description="Figures at the pause")
    def figures(self, pause):
        return format_html("<pre>{}</pre>", json.dumps(pause.metrics, indent=1))

    @admin.display(description="Lift")
    def lift_link(self, pause):
        if pause.lifted_at is not None:
            return "Lifted."
        url = reverse("admin:labeling_pause_lift", args=[pause.pk])
        return format_html('<a href="{}">Lift the pause…</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view
        own = [
            path("<int:pk>/lift/", view(self.lift_view), name="labeling_pause_lift"),
            path("quality/", view(self.quality_index_view), name="labeling_worker_quality_index"),
            path("quality/<slug:slug>/", view(self.quality_view), name="labeling_worker_quality"),
        ]
        return own + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        """A manual pause, through ``pause_create`` (PermissionDenied: Django's 403)."""
        initial = {k: request.GET[k] for k in ("campaign", "worker") if k in request.GET}
        form = ManualPauseForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                pause = pause_create(by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"{pause.worker} is paused in {pause.campaign}.")
                return redirect("admin:labeling_pause_change", pause.pk)
        intro = "The worker is served nothing more in the campaign and sees your reason; their "
        intro += "judgments there leave training and the default exports until the pause is lifted."
        return self._form_page(request, "Pause a worker", intro, form, "Pause")

    def lift_view(self, request, pk):
        pause = get_object_or_404(Pause.objects.select_related("worker", "campaign"), pk=pk)
        form = LiftForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                pause_lift(pause=pause, by=request.user, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"{pause.worker} may go on in {pause.campaign}.")
                return redirect("admin:labeling_pause_change", pause.pk)
        intro = f"Paused: {pause.reason} The worker's judgments count again once lifted; the "
        intro += "rules then read only what they do from now on."
        return self._form_page(request, f"Lift the pause of {pause.worker}", intro, form, "Lift")

    def _form_page(self, request, title, intro, form, button):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "form": form,
            "button": button,
        }
        return TemplateResponse(request, FORM, context)

    def quality_index_view(self, request):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Worker quality",
            "campaigns": Campaign.objects.order_by("name"),
        }
        return TemplateResponse(request, "admin/labeling/worker_quality.html", context)

    def quality_view(self, request, slug):
        campaign = get_object_or_404(Campaign, slug=slug)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Worker quality in {campaign}",
            "campaign": campaign,
            "rows": quality.worker_metrics(campaign),
        }
        return TemplateResponse(request, "admin/labeling/worker_quality.html", context)


# What a worker reported stays as they wrote it.
@admin.register(Report)
class ReportAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["created_at", "worker", "campaign", "item", "reason", "note"]
    list_filter = ["reason", "campaign"]
    list_select_related = ["worker", "campaign", "item"]
    readonly_fields = ["campaign", "worker", "item", "reason", "note", "created_at"]
    fields = readonly_fields
