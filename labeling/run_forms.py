"""The panel's forms that start runs: an export, a preference-model training, an HHH
evaluation, a context distillation."""

from __future__ import annotations

from django import forms

from labeling.exports import FORMATS
from labeling.models import Campaign, ModelVersion


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(name, name) for name in FORMATS])  # helps: the page
    campaign = forms.ModelChoiceField(
        Campaign.objects.order_by("name"),
        required=False,
        empty_label="All campaigns",
        to_field_name="slug",
    )
    include_weakest = forms.BooleanField(
        required=False, label='Include "about the same" answers (left out of training)'
    )
    include_checks = forms.BooleanField(
        required=False,
        label="Include gold checks, quiz answers and paused workers' answers, marked excluded",
    )


class EvaluationForm(forms.Form):
    model_version = forms.ModelChoiceField(ModelVersion.objects.order_by("-created_at"))
    limit = forms.IntegerField(
        required=False, min_value=1, help_text="Only the first N examples (blank: all)."
    )


class DistillationForm(forms.Form):
    model = forms.CharField(
        max_length=500,
        initial="smollm2-135m-instruct",
        help_text="The teacher, and the student's starting weights (a spec or a folder).",
    )
    sample = forms.IntegerField(
        min_value=1, initial=64, help_text="Texts sampled from the prompted model to learn from."
    )
    epochs = forms.IntegerField(min_value=1, initial=1)
