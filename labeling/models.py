"""The lab's data: campaigns, conversations, turns, candidates, comparisons, models, runs."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class ModelVersion(models.Model):
    class Kind(models.TextChoices):
        ASSISTANT = "assistant", "Assistant"
        PREFERENCE = "preference", "Preference model"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    spec = models.CharField(
        max_length=500, help_text="Where its weights are: a builtin spec, a directory or a hub id."
    )
    prompt = models.CharField(
        max_length=20,
        blank=True,
        choices=[("", "No prompt"), ("hhh", "HHH prompt")],
        help_text="Assistants: the prompt put before every conversation (its cache is reused).",
    )
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(
        default=False, help_text="For preference models: the one the lab uses now."
    )
    training_run = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(is_active=True), name="one_active_model_per_kind"
            )
        ]

    def __str__(self):
        return self.name


class Campaign(models.Model):
    class Mode(models.TextChoices):
        HELPFUL = "helpful", "Helpful: pick the better response"
        RED_TEAM = "red_team", "Red team: pick the more harmful response"

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.HELPFUL)
    instructions = models.TextField(help_text="Shown to crowdworkers on the task page.")
    model_a = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": ModelVersion.Kind.ASSISTANT},
        help_text="Generates candidate slot 0. Empty only for imported data.",
    )
    model_b = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": ModelVersion.Kind.ASSISTANT},
        help_text="Generates candidate slot 1. Empty only for imported data.",
    )
    temperature = models.FloatField(default=0.8)
    top_p = models.FloatField(default=0.95)
    max_new_tokens = models.PositiveIntegerField(default=96)
    max_turns = models.PositiveSmallIntegerField(
        default=4, help_text="A conversation ends after this many turns at the latest."
    )
    best_of = models.PositiveSmallIntegerField(
        default=1,
        help_text="Samples per slot scored by the active preference model; 1: no best-of-n.",
    )
    pair_policy = models.CharField(
        max_length=20,
        default="best_each",
        choices=[
            ("best_each", "Each slot shows the best of its model's samples"),
            ("top_two", "The two best of all samples"),
        ],
        help_text="With best-of-n: which two responses the worker compares.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(temperature__gte=0), name="temperature_non_negative"
            ),
            models.CheckConstraint(condition=Q(top_p__gt=0, top_p__lte=1), name="top_p_in_range"),
            models.CheckConstraint(condition=Q(max_new_tokens__gte=1), name="max_new_tokens_pos"),
            models.CheckConstraint(condition=Q(max_turns__gte=1), name="max_turns_positive"),
            models.CheckConstraint(
                condition=Q(best_of__gte=1, best_of__lte=16), name="best_of_1_16"
            ),
        ]

    def __str__(self):
        return self.name

    def sampling(self) -> dict:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
        }


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        FINISHED = "finished", "Finished"

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="conversations")
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="conversations",
        help_text="Empty for imported conversations.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    source = models.CharField(max_length=200, default="ui", help_text='"ui" or the import file.')
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="rating_1_to_5",
            )
        ]

    def __str__(self):
        return f"Conversation {self.pk}"


class Turn(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    human_text = models.TextField()
    left_slot = models.PositiveSmallIntegerField(
        default=0, help_text="Which candidate slot was shown on the left (as A)."
    )
    chosen = models.ForeignKey(
        "CandidateResponse",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The reply the conversation continued with.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "index"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "index"], name="one_turn_per_index"),
            models.CheckConstraint(condition=Q(left_slot__lte=1), name="left_slot_0_or_1"),
        ]

    def __str__(self):
        return f"Turn {self.index} of conversation {self.conversation_id}"


class CandidateResponse(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Generating"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="candidates")
    slot = models.PositiveSmallIntegerField(help_text="0 comes from model A, 1 from model B.")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="candidates"
    )
    sampling = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    text = models.TextField(blank=True)
    token_count = models.PositiveIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)
    generation_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    reward = models.FloatField(
        null=True, blank=True, help_text="Best-of-n: the preference model's score of the text."
    )
    alternatives = models.JSONField(
        default=list, blank=True, help_text="Best-of-n: the samples not shown, with rewards."
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["turn", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["turn", "slot"], name="one_candidate_per_slot"),
        ]

    def __str__(self):
        text = self.text if len(self.text) <= 60 else self.text[:59] + "…"
        return f"{self.slot}: {text}" if text else f"Candidate {self.slot} of turn {self.turn_id}"


class Comparison(models.Model):
    """One worker's judgment of a turn's two candidates on the 8-point scale."""

    STRENGTH_LABELS = {1: "about the same", 2: "slightly better", 3: "better", 4: "much better"}

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="comparisons")
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="comparisons",
    )
    left = models.ForeignKey(
        CandidateResponse,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The candidate shown on the left, as A.",
    )
    chosen = models.ForeignKey(CandidateResponse, on_delete=models.CASCADE, related_name="+")
    rejected = models.ForeignKey(CandidateResponse, on_delete=models.CASCADE, related_name="+")
    strength = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="1 (about the same) to 4 (much better); empty when imported without one.",
    )
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    source = models.CharField(max_length=200, default="ui")
    ui_version = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["turn", "worker"], name="one_comparison_per_worker"),
            models.CheckConstraint(condition=~Q(chosen=F("rejected")), name="chosen_not_rejected"),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__gte=1, strength__lte=4),
                name="strength_1_to_4",
            ),
        ]

    def __str__(self):
        return f"Comparison {self.pk} on turn {self.turn_id}"


class TrainingRun(models.Model):
    class Kind(models.TextChoices):
        PREFERENCE = "preference", "Preference model"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.PREFERENCE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    config = models.JSONField(default=dict, blank=True)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0, progress__lte=1), name="progress_0_1"
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} run {self.pk}"


class EvaluationRun(models.Model):
    """One evaluation of one model version; its results stay with that version."""

    class Benchmark(models.TextChoices):
        HHH = "hhh", "HHH evaluation (BIG-bench)"

    Status = TrainingRun.Status

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="evaluations"
    )
    benchmark = models.CharField(max_length=20, choices=Benchmark.choices, default=Benchmark.HHH)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    config = models.JSONField(default=dict, blank=True, help_text="Task path, limit, batch size.")
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0, progress__lte=1), name="evaluation_progress_0_1"
            )
        ]

    def __str__(self):
        return f"{self.get_benchmark_display()} of {self.model_version} (run {self.pk})"
