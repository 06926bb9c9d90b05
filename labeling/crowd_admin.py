"""Admin for guidelines, gold items, enrollments and quizzes.

Guidelines are versioned: the add form publishes the next version (prefilled from the
current one, or from the version it was opened from) and no version is ever edited.
Gold items are written through ``services.gold`` (or ``manage.py import_gold``) and then
kept as they are: answers were given against them. Enrollments and quiz attempts are the
workers' records, to read.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from labeling import selectors
from labeling.admin_rules import AddOnly, ReadOnly
from labeling.models import Campaign, Enrollment, GoldItem, Guidelines, QuizAnswer, QuizAttempt
from labeling.onboarding_forms import LETTERS, GoldItemForm, GuidelinesForm
from labeling.services.gold import gold_item_create
from labeling.services.onboarding import guidelines_publish


# A version is what judgments and consents name: never changed or removed.
@admin.register(Guidelines)
class GuidelinesAdmin(AddOnly, admin.ModelAdmin):
    form = GuidelinesForm
    list_display = ["campaign", "label", "has_consent", "created_by", "created_at"]
    list_filter = ["campaign"]
    list_select_related = ["campaign", "created_by"]
    readonly_fields = ["new_version"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:  # the form's own fields: the examples are added per level
            kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*GuidelinesForm.field_order, "other_examples", "consent", "content_warning"]
        return ["campaign", "version", "text", "examples", "consent", "content_warning",
                "created_by", "created_at", "new_version"]  # fmt: skip

    @admin.display(description="Version")
    def label(self, guidelines):
        return guidelines.label

    @admin.display(description="Consent", boolean=True)
    def has_consent(self, guidelines):
        return bool(guidelines.consent.strip())

    @admin.display(description="Change")
    def new_version(self, guidelines):
        url = reverse("admin:labeling_guidelines_add") + f"?from={guidelines.pk}"
        return format_html('<a href="{}">Publish a new version from this one</a>', url)

    def get_changeform_initial_data(self, request):
        """Prefilled from ``?from=<version id>``, or ``?campaign=<id>``'s current version."""
        initial = super().get_changeform_initial_data(request)
        base = None
        # isdecimal, not isdigit: "²" is a digit that int() refuses.
        if request.GET.get("from", "").isdecimal():
            base = Guidelines.objects.filter(pk=request.GET["from"]).first()
        elif request.GET.get("campaign", "").isdecimal():
            campaign = Campaign.objects.filter(pk=request.GET["campaign"]).first()
            base = campaign.current_guidelines() if campaign else None
        if base is not None:
            initial.update(
                campaign=base.campaign_id,
                text=base.text,
                consent=base.consent,
                content_warning=base.content_warning,
            )
            levels = GuidelinesForm.LEVELS
            initial.update({f"example_{k}": v for k, v in base.examples.items() if k in levels})
            others = {k: v for k, v in base.examples.items() if k not in levels}
            if others:
                initial["other_examples"] = GuidelinesForm.dump_examples(others)
        return initial

    def save_form(self, request, form, change):
        return guidelines_publish(
            campaign=form.cleaned_data["campaign"],
            text=form.cleaned_data["text"],
            examples=form.examples,
            consent=form.cleaned_data["consent"],
            content_warning=form.cleaned_data["content_warning"],
            by=request.user,
        )

    def save_model(self, request, obj, form, change):
        """``save_form`` has published it."""

    def save_related(self, request, form, formsets, change):
        """Nothing more to save: the service wrote the version."""


# Workers answered against a gold item: it stays as it was (a wrong one: add a new item).
@admin.register(GoldItem)
class GoldItemAdmin(AddOnly, admin.ModelAdmin):
    list_display = ["pk", "campaign", "role", "prompt", "answer_letters", "source", "created_at"]
    list_filter = ["campaign", "role", "source"]
    list_select_related = ["campaign", "item"]
    search_fields = ["item__human_text", "explanation"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:  # the form's own fields: responses are added up to the most K
            kwargs["form"] = GoldItemForm
            kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return GoldItemForm.field_order + ["explanation"]
        return ["campaign", "role", "shown_item", "answer_letters", "explanation", "source",
                "created_at"]  # fmt: skip

    @admin.display(description="Prompt")
    def prompt(self, gold):
        text = gold.item.human_text
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="Answer (best first)")
    def answer_letters(self, gold):
        return " > ".join(" = ".join(LETTERS[slot] for slot in group) for group in gold.answer)

    @admin.display(description="Item (responses by slot: A is slot 0)")
    def shown_item(self, gold):
        context = format_html_join(
            "",
            "<p><b>{}:</b> {}</p>",
            ((m.role.title(), m.text) for m in selectors.dialogue_before(gold.item)),
        )
        responses = format_html_join(
            "",
            "<p><b>Response {}:</b> {}</p>",
            ((LETTERS[c.slot], c.text) for c in gold.item.candidates.order_by("slot")),
        )
        return format_html("{}{}", context, responses)

    def save_form(self, request, form, change):
        spec = form.spec
        return gold_item_create(
            campaign=form.cleaned_data["campaign"],
            role=form.cleaned_data["role"],
            context=spec.context,
            responses=spec.responses,
            answer=spec.answer,
            explanation=spec.explanation,
            source="admin",
        )

    def save_model(self, request, obj, form, change):
        """``save_form`` has written it."""

    def save_related(self, request, form, formsets, change):
        """Nothing more to save: the service wrote the item."""


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["worker", "campaign", "consent_version", "consented_at", "qualified_at",
                    "withdrawn_at", "created_at"]  # fmt: skip
    list_filter = ["campaign"]
    list_select_related = ["worker", "campaign"]
    search_fields = ["worker__username"]


class QuizAnswerInline(ReadOnly, admin.TabularInline):
    model = QuizAnswer
    fields = ["gold", "shown", "order", "strength", "correct", "time_spent_ms", "created_at"]
    readonly_fields = fields
    extra = 0


@admin.register(QuizAttempt)
class QuizAttemptAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["worker", "campaign", "number", "score", "passed", "started_at",
                    "finished_at"]  # fmt: skip
    list_filter = ["campaign", "passed"]
    list_select_related = ["worker", "campaign"]
    search_fields = ["worker__username"]
    inlines = [QuizAnswerInline]

    @admin.display(description="Right")
    def score(self, attempt):
        return f"{attempt.correct} of {len(attempt.questions)}"
