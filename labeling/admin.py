"""The researcher's panel: every model, staff only (Django admin's own rule)."""

from django.contrib import admin, messages
from django.db import models
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from labeling import crowd_admin, quality_admin  # noqa: F401 (they register themselves)
from labeling.judgment_admin import JudgmentAdmin  # noqa: F401 (registers itself)
from labeling.models import (
    Campaign,
    CandidateResponse,
    Conversation,
    ModelVersion,
    Run,
    Turn,
)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "spec", "prompt", "hhh_accuracy", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "spec"]
    actions = ["train_preference_model", "evaluate_hhh"]

    @admin.display(description="HHH accuracy")
    def hhh_accuracy(self, version):
        """The latest HHH result: mutual information for assistants, reward for PMs."""
        hhh = version.metrics.get("hhh") or {}
        value = hhh.get("mutual_information", hhh.get("reward"))
        return "" if value is None else f"{value:.3f}"

    @admin.action(description="Evaluate on the HHH evaluation (BIG-bench)")
    def evaluate_hhh(self, request, queryset):
        from labeling.services.evaluation import EvaluationUnavailable, evaluation_request

        for version in queryset:
            try:
                run = evaluation_request(model_version=version, requested_by=request.user)
            except EvaluationUnavailable as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            self.message_user(
                request, f"Queued evaluation run {run.pk} of {version.name}.", messages.SUCCESS
            )

    @admin.action(description="Train a preference model from this base on all comparisons")
    def train_preference_model(self, request, queryset):
        from labeling.services.training import default_training_config, training_run_request

        for version in queryset:
            config = {**default_training_config(), "model": version.spec}
            run = training_run_request(config=config, requested_by=request.user)
            self.message_user(
                request, f"Queued training run {run.pk} from {version.name}.", messages.SUCCESS
            )


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "candidates_per_item",
        "model_a",
        "model_b",
        "best_of",
        "pair_policy",
        "max_turns",
        "is_active",
    ]
    list_filter = ["kind", "is_active"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "slug", "kind", "instructions", "is_active"]}),
        (
            "The task",
            {"fields": ["candidates_per_item", "allow_ties", "source_campaign", "max_turns"]},
        ),
        (
            "Models and sampling",
            {
                "fields": [
                    "model_a",
                    "model_b",
                    "temperature",
                    "top_p",
                    "max_new_tokens",
                    "best_of",
                    "pair_policy",
                ]
            },
        ),
        (
            "The job: target, overlap, sets",
            {
                "fields": [
                    "target",
                    "overlap",
                    "overlap_cap",
                    "disagreement_spread",
                    "set_size",
                    "reservation_minutes",
                    "gold_rate",
                ]
            },
        ),
        (
            "Qualification quiz (gold items with the role quiz)",
            {"fields": ["quiz_size", "quiz_pass_mark", "quiz_max_attempts"]},
        ),
        (
            "Rules that pause a worker",
            {
                "fields": [
                    "min_gold_accuracy",
                    "min_gold_seen",
                    "min_judgment_seconds",
                    "max_first_position_rate",
                    "rule_min_judgments",
                ]
            },
        ),
        ("Prolific", {"fields": ["study_url", "completion_code", "completion_url"]}),
    ]
    readonly_fields = ["study_url"]
    # A completion URL typed without a scheme is https (Django 6's default, asked for now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="Study URL")
    def study_url(self, campaign):
        """What to give Prolific as the study's URL (after this lab's address); Prolific
        fills in the three ids."""
        if not campaign.pk:
            return "Save the campaign first."
        ids = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
        return reverse("labeling:prolific_entry", args=[campaign.slug]) + "?" + ids


class TurnInline(admin.TabularInline):
    model = Turn
    fields = ["index", "human_text", "display_order", "chosen"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["pk", "campaign", "worker", "status", "rating", "source", "created_at"]
    list_filter = ["status", "campaign", "source"]
    inlines = [TurnInline]


class CandidateInline(admin.TabularInline):
    model = CandidateResponse
    fields = ["slot", "model_version", "status", "text", "token_count", "generation_seconds"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Turn)
class TurnAdmin(admin.ModelAdmin):
    list_display = ["pk", "conversation", "index", "display_order", "chosen"]
    # What workers saw and judged: shown, never edited here.
    readonly_fields = ["conversation", "index", "prefix", "human_text", "display_order", "chosen"]
    inlines = [CandidateInline]


@admin.register(CandidateResponse)
class CandidateResponseAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "turn",
        "slot",
        "model_version",
        "status",
        "token_count",
        "generation_seconds",
        "finish_reason",
        "reward",
    ]
    list_filter = ["status", "model_version", "finish_reason"]
    search_fields = ["text"]
    # Model output is what workers judged: nobody edits it here.
    readonly_fields = ["text", "alternatives", "selection", "reward", "seed", "sampling"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Every kind of run in one table (the panel's Runs page shows them live)."""

    list_display = [
        "pk",
        "kind",
        "model_version",
        "status",
        "progress_bar",
        "headline",
        "created_at",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    readonly_fields = [
        "progress_bar",
        "metrics",
        "hhh_results",
        "output",
        "error",
        "started_at",
        "finished_at",
    ]

    @admin.display(description="Progress")
    def progress_bar(self, run):
        percent = round(run.progress * 100)
        return format_html('<progress max="100" value="{}"></progress> {}%', percent, percent)

    @admin.display(description="Result")
    def headline(self, run):
        """The one figure a researcher looks for: held-out accuracy, HHH accuracy, rows."""
        metrics = run.metrics or {}
        if run.kind == Run.Kind.EVALUATION:
            scoring = metrics.get("scoring") or {}
            return ", ".join(f"{name} {s['overall']:.3f}" for name, s in scoring.items())
        if "eval_accuracy" in metrics:
            return f"accuracy {metrics['eval_accuracy']:.3f}"
        if run.kind == Run.Kind.EXPORT and "rows" in metrics:
            return f"{metrics['rows']} rows"
        return ""

    @admin.display(description="HHH results by category")
    def hhh_results(self, run):
        scoring = run.metrics.get("scoring") or {}
        rows = [
            (name, category, f"{value:.3f}")
            for name, s in scoring.items()
            for category, value in s["by_category"].items()
        ]
        return format_html_join("", "<div>{}: {} {}</div>", rows) if rows else "—"
