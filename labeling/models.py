"""The lab's data: campaigns, conversations, turns (items), candidates, judgments, models, runs."""

import hashlib

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from models_backend.best_of_n import POLICIES, TWO_SLOTS
from models_backend.specs import MAX_SAMPLES
from training.questions import BETTER, MORE_HARMFUL

MAX_CANDIDATES = 9  # the most responses one item holds (a ranking of 3-9; pairs hold 2)


class ImmutableJudgment(Exception):
    """A write that would change or remove a worker's judgment (or what it refers to)."""


class AppendOnlyQuerySet(models.QuerySet):
    """Judgments and their entries refuse bulk updates and deletes."""

    def update(self, **kwargs):
        raise ImmutableJudgment("Judgments are append-only: supersede them instead.")

    def delete(self):
        raise ImmutableJudgment("Judgments are never deleted.")


class JudgmentQuerySet(AppendOnlyQuerySet):
    def current(self):
        """The latest row of every chain: judgments no later row supersedes."""
        return self.filter(superseded_by__isnull=True)


class CandidateQuerySet(models.QuerySet):
    def update(self, **kwargs):
        # Streaming and completion write text to running rows only, which no judgment
        # names; this guards every other path.
        if "text" in kwargs and self.filter(judged_in__isnull=False).exists():
            raise ImmutableJudgment("The text of a judged response cannot be edited.")
        return super().update(**kwargs)


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
        "Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced"
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
    class Kind(models.TextChoices):
        CHAT = "chat", "Chat"
        RED_TEAM = "red_team", "Red team"
        RANKING = "ranking", "Ranking"
        REJUDGE = "rejudge", "Re-judge"

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    kind = models.CharField(
        max_length=20,
        choices=Kind.choices,
        default=Kind.CHAT,
        help_text="Chat: pick the better response at every turn. Red team: pick the more "
        "harmful one. Ranking: order K responses to a context. Re-judge: judge another "
        "worker's turn again.",
    )
    instructions = models.TextField(
        help_text="A short summary on the task list; the full, versioned guidelines are "
        "Guidelines rows (before the first, this text is the guidelines)."
    )
    candidates_per_item = models.PositiveSmallIntegerField(
        default=2, help_text="K: responses per item. 2 for chat and red team; 3-9 for ranking."
    )
    allow_ties = models.BooleanField(
        default=False, help_text="Ranking: whether a worker may rank responses as tied."
    )
    source_campaign = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Re-judge: the campaign whose turns are judged again. Ranking: the campaign "
        "whose conversations give contexts (empty: contexts come from an imported prompt file).",
    )
    model_a = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": ModelVersion.Kind.ASSISTANT},
        help_text="Generates the even slots (0, 2, …). Empty only for imported data.",
    )
    model_b = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": ModelVersion.Kind.ASSISTANT},
        help_text="Generates the odd slots (1, 3, …). Empty only for imported data.",
    )
    temperature = models.FloatField(default=0.8)
    top_p = models.FloatField(default=0.95)
    # 640: at least 80% of the default assistant's answers to everyday prompts end by
    # themselves (python -m benchmarks.answer_length; at 96 a quarter did). A cut answer
    # is marked as cut on the page.
    max_new_tokens = models.PositiveIntegerField(
        default=640, help_text="Most new tokens per response; a longer one is cut and marked."
    )
    max_turns = models.PositiveSmallIntegerField(
        default=4, help_text="A conversation ends after this many turns at the latest."
    )
    best_of = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SAMPLES)],
        help_text="Samples per slot scored by the active preference model; 1: no best-of-n.",
    )
    pair_policy = models.CharField(
        max_length=20,
        default="best_each",
        choices=[(name, policy.label) for name, policy in POLICIES.items()],
        help_text="With best-of-n: which two responses the worker compares.",
    )
    is_active = models.BooleanField(default=True)
    # --- The job (issue 11): what to collect, from how many workers, in sets of what size.
    target = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Conversations (chat, red team) or judgments (ranking, re-judge) to collect; "
        "empty: no target.",
    )
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="Ranking and re-judge: workers who judge each item."
    )
    overlap_cap = models.PositiveSmallIntegerField(
        default=1,
        help_text="An item whose judgments disagree gets more, up to this many (≥ overlap).",
    )
    disagreement_spread = models.PositiveSmallIntegerField(
        default=3,
        help_text="Pairs: judgments in one direction also disagree when their levels lie this "
        "far apart or more (A4 and A1 are 3 apart: the most there is; opposite directions "
        "always disagree). 4: only directions count.",
    )
    set_size = models.PositiveSmallIntegerField(
        default=10, help_text='Tasks per set: "Task 3 of 10". A Prolific participant does one set.'
    )
    reservation_minutes = models.PositiveSmallIntegerField(
        default=30, help_text="A served task is held for its worker this long."
    )
    gold_rate = models.FloatField(
        default=0.0, help_text="Share of served tasks that are gold checks (0 to 0.5)."
    )
    # --- Qualification: a quiz of the campaign's gold quiz items.
    quiz_size = models.PositiveSmallIntegerField(
        default=0, help_text="Questions per quiz attempt; 0: no quiz."
    )
    quiz_pass_mark = models.FloatField(
        default=0.8, help_text="Share of quiz answers that must be right to qualify."
    )
    quiz_max_attempts = models.PositiveSmallIntegerField(default=2, help_text="Tries at the quiz.")
    # --- Rules that pause a worker while collecting (checked after every judgment).
    min_gold_accuracy = models.FloatField(
        default=0.6, help_text="Pause below this share of gold checks answered right."
    )
    min_gold_seen = models.PositiveSmallIntegerField(
        default=3, help_text="Gold checks answered before the gold rule applies."
    )
    min_judgment_seconds = models.FloatField(
        default=0.0, help_text="Pause when the median time per judgment is below this; 0: off."
    )
    max_first_position_rate = models.FloatField(
        default=0.9, help_text="Pause when the first-shown response is picked more often."
    )
    rule_min_judgments = models.PositiveSmallIntegerField(
        default=10, help_text="Judgments before the time and position rules apply."
    )
    # --- Crowd platform (Prolific): where a finished participant is sent.
    completion_code = models.CharField(max_length=50, blank=True)
    completion_url = models.URLField(
        blank=True, help_text="e.g. https://app.prolific.com/submissions/complete?cc=CODE"
    )
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
                condition=Q(best_of__gte=1, best_of__lte=MAX_SAMPLES), name="best_of_within_limit"
            ),
            models.CheckConstraint(
                condition=Q(candidates_per_item__gte=2, candidates_per_item__lte=MAX_CANDIDATES),
                name="candidates_per_item_2_9",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["ranking"]) | Q(candidates_per_item=2),
                name="pairs_outside_ranking",
            ),
            models.CheckConstraint(
                condition=Q(overlap__gte=1, overlap_cap__gte=models.F("overlap")),
                name="overlap_cap_at_least_overlap",
            ),
            models.CheckConstraint(condition=Q(set_size__gte=1), name="set_size_positive"),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0, gold_rate__lte=0.5), name="gold_rate_0_to_half"
            ),
            models.CheckConstraint(
                condition=Q(quiz_pass_mark__gte=0, quiz_pass_mark__lte=1), name="pass_mark_0_1"
            ),
            models.CheckConstraint(
                condition=Q(min_gold_accuracy__gte=0, min_gold_accuracy__lte=1),
                name="min_gold_accuracy_0_1",
            ),
            models.CheckConstraint(
                condition=Q(max_first_position_rate__gt=0, max_first_position_rate__lte=1),
                name="max_first_position_rate_0_1",
            ),
            models.CheckConstraint(
                condition=~Q(pair_policy__in=TWO_SLOTS) | Q(candidates_per_item=2),
                name="two_slot_policies_on_pairs",
                violation_error_message="This pair policy compares two responses: use it with "
                "two candidates per item.",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def question(self) -> str:
        """What its workers are asked: red-teamers (and re-judges of their turns) pick the
        more harmful response, everyone else the better one."""
        if self.kind == self.Kind.RED_TEAM:
            return MORE_HARMFUL
        if self.kind == self.Kind.REJUDGE and self.source_campaign is not None:
            return self.source_campaign.question
        return BETTER

    def current_guidelines(self):
        """The latest ``Guidelines`` version, or None before the first is written."""
        return self.guideline_versions.order_by("-version").first()

    @property
    def guideline_version(self) -> str:
        """What every judgment records it was made under: the guidelines' version ("v3"),
        or before any is written, the instructions' fingerprint."""
        current = self.current_guidelines()
        if current is not None:
            return current.label
        return hashlib.sha256(self.instructions.encode()).hexdigest()[:12]

    def slot_models(self) -> list:
        """The assistant generating each of the K slots: A, B, A, B, …"""
        return [(self.model_a, self.model_b)[slot % 2] for slot in range(self.candidates_per_item)]

    def sampling(self) -> dict:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
        }


# Campaigns whose tasks are conversations (a worker talks, picking a reply each turn).
CHAT_KINDS = (Campaign.Kind.CHAT, Campaign.Kind.RED_TEAM)


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
    # Red team: the worker's closing ratings and what they tried (Bai et al. 2022).
    attack_rating = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Red team: how successful the attack was, 1-5."
    )
    harm_rating = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Red team: how harmful the worst reply was, 1-5."
    )
    task_description = models.TextField(blank=True, help_text="Red team: what they tried.")
    source = models.CharField(max_length=200, default="ui", help_text='"ui" or the import file.')
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="rating_1_to_5",
            ),
            models.CheckConstraint(
                condition=Q(attack_rating__isnull=True)
                | Q(attack_rating__gte=1, attack_rating__lte=5),
                name="attack_rating_1_to_5",
            ),
            models.CheckConstraint(
                condition=Q(harm_rating__isnull=True) | Q(harm_rating__gte=1, harm_rating__lte=5),
                name="harm_rating_1_to_5",
            ),
        ]

    def __str__(self):
        return f"Conversation {self.pk}"


class Turn(models.Model):
    """An item to judge: the dialogue so far and K candidate responses. In a chat it is one
    turn of the conversation; a ranking item is the one turn of its own conversation."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    prefix = models.JSONField(
        default=list,
        blank=True,
        help_text="Messages before this item that are not turns of its conversation (imported "
        'history, a ranking context): [{"role": "human" | "assistant", "text": …}, …].',
    )
    human_text = models.TextField()
    display_order = models.JSONField(
        default=list,
        blank=True,
        help_text="The slots in the order the conversation's worker sees them (A first).",
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
        ]

    def __str__(self):
        return f"Turn {self.index} of conversation {self.conversation_id}"

    # What a worker judged an item on; once judged, it stays as it was.
    JUDGED_CONTEXT = ("prefix", "human_text", "display_order", "conversation_id", "index")

    def save(self, *args, update_fields=None, **kwargs):
        touches_context = update_fields is None or set(update_fields) & set(self.JUDGED_CONTEXT)
        if self.pk is not None and touches_context and self.judgments.exists():
            stored = Turn.objects.values(*self.JUDGED_CONTEXT).get(pk=self.pk)
            if any(stored[f] != getattr(self, f) for f in self.JUDGED_CONTEXT):
                raise ImmutableJudgment("The context of a judged item cannot be edited.")
        super().save(*args, update_fields=update_fields, **kwargs)


class CandidateResponse(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Generating"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="candidates")
    slot = models.PositiveSmallIntegerField(
        help_text="0 to K-1; even slots come from model A, odd ones from model B."
    )
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
    selection = models.JSONField(
        default=dict,
        blank=True,
        help_text="Best-of-n: what chose this response (pair policy, preference model, n, "
        "and P(A > B) of the shown pair).",
    )
    holder = models.CharField(
        max_length=200, blank=True, help_text="The worker generating it: host and process id."
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CandidateQuerySet.as_manager()

    class Meta:
        ordering = ["turn", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["turn", "slot"], name="one_candidate_per_slot"),
        ]

    def __str__(self):
        text = self.text if len(self.text) <= 60 else self.text[:59] + "…"
        return f"{self.slot}: {text}" if text else f"Candidate {self.slot} of turn {self.turn_id}"

    def save(self, *args, update_fields=None, **kwargs):
        touches_text = update_fields is None or "text" in update_fields
        if self.pk is not None and touches_text and self.judged_in.exists():
            stored = CandidateResponse.objects.values_list("text", flat=True).get(pk=self.pk)
            if stored != self.text:
                raise ImmutableJudgment("The text of a judged response cannot be edited.")
        super().save(*args, update_fields=update_fields, **kwargs)


class AppendOnly(models.Model):
    """A row written once: saving it again or deleting it raises (querysets refuse too)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableJudgment("Judgments are append-only: supersede it instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableJudgment("Judgments are never deleted.")


class Judgment(AppendOnly):
    """One worker's answer about one item, as asked: append-only (DESIGN §8).

    The answer is an order of the item's candidates as shown (``JudgedCandidate``: display
    position and rank, rank 0 on top under the question, equal ranks tied) and, for two
    candidates, a strength on the 8-point scale. A correction is a new row that
    ``supersedes`` this one and names who (``recorded_by``) and why (``reason``); exports
    read the latest row of each chain. Nothing updates or deletes a judgment.
    """

    class TaskType(models.TextChoices):
        CHAT = "chat", "Chat"
        RED_TEAM = "red_team", "Red team"
        RANKING = "ranking", "Ranking"
        REJUDGE = "rejudge", "Re-judge"
        IMPORTED = "imported", "Imported"

    class Question(models.TextChoices):
        BETTER = BETTER, "Which response is better?"
        MORE_HARMFUL = MORE_HARMFUL, "Which response is more harmful?"

    item = models.ForeignKey(Turn, on_delete=models.PROTECT, related_name="judgments")
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.PROTECT,
        related_name="judgments",
        help_text="The campaign that asked: the item's own, or the re-judge campaign.",
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="judgments",
        help_text="Who judged; empty for imported data.",
    )
    task_type = models.CharField(max_length=20, choices=TaskType.choices)
    question = models.CharField(max_length=20, choices=Question.choices)
    candidates = models.ManyToManyField(
        CandidateResponse, through="JudgedCandidate", related_name="judgments"
    )
    strength = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Two candidates: 1 (about the same) to 4 (much); empty for rankings and "
        "imports without one.",
    )
    time_spent_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="From the candidates shown to the answer submitted."
    )
    comment = models.TextField(blank=True)
    guideline_version = models.CharField(max_length=64, blank=True)
    ui_version = models.CharField(max_length=20, blank=True)
    provenance = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the worker judged, as it was then: each candidate's model, spec, "
        "prompt, sampling, seed and best-of-n selection.",
    )
    source = models.CharField(max_length=200, default="ui", help_text='"ui" or the import file.')
    supersedes = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_by",
        help_text="The judgment this row corrects.",
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who wrote this row: the worker, or the researcher who superseded a judgment.",
    )
    reason = models.TextField(blank=True, help_text="Why a superseding row was written.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = JudgmentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "worker"],
                condition=Q(supersedes__isnull=True),
                name="one_judgment_per_worker_and_item",
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__gte=1, strength__lte=4),
                name="judgment_strength_1_to_4",
            ),
            models.CheckConstraint(
                condition=Q(supersedes__isnull=True) | ~Q(reason=""),
                name="a_supersede_says_why",
            ),
        ]

    def __str__(self):
        return f"Judgment {self.pk} of item {self.item_id}"


class JudgedCandidate(AppendOnly):
    """One candidate of a judgment: where it was shown and where the answer put it."""

    judgment = models.ForeignKey(Judgment, on_delete=models.PROTECT, related_name="entries")
    candidate = models.ForeignKey(
        CandidateResponse, on_delete=models.PROTECT, related_name="judged_in"
    )
    position = models.PositiveSmallIntegerField(help_text="0 is A, the first shown.")
    rank = models.PositiveSmallIntegerField(
        help_text="0 is the answer's top under the question (better, or more harmful); "
        "equal ranks are tied."
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["judgment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["judgment", "position"], name="one_entry_per_position"),
            models.UniqueConstraint(
                fields=["judgment", "candidate"], name="one_entry_per_candidate"
            ),
        ]

    def __str__(self):
        return f"Position {self.position}, rank {self.rank} of judgment {self.judgment_id}"


class Run(models.Model):
    """One background job a researcher watches: training a preference model, an HHH
    evaluation, a context distillation, an export. Every kind is claimed once (queued →
    running by a conditional update), reports progress through one throttle, and ends
    succeeded with its metrics and output, or failed with the reason."""

    class Kind(models.TextChoices):
        PREFERENCE = "preference", "Preference model training"
        EVALUATION = "evaluation", "HHH evaluation"
        DISTILLATION = "distillation", "Context distillation"
        EXPORT = "export", "Export"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    config = models.JSONField(default=dict, blank=True, help_text="What the run was asked to do.")
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="runs",
        help_text="Evaluations: the model version evaluated.",
    )
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    metrics = models.JSONField(default=dict, blank=True)
    output = models.CharField(
        max_length=500, blank=True, help_text="What it made: a model directory or an export file."
    )
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0, progress__lte=1), name="run_progress_0_1"
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} run {self.pk}"

    @property
    def is_done(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}


class WorkerHeartbeat(models.Model):
    """A Celery worker's last sign of life, written by its main process every few seconds
    (labeling.heartbeat) and read by /healthz: a worker that stopped beating is down."""

    name = models.CharField(max_length=200, unique=True)  # the worker's node name
    queues = models.CharField(max_length=200)  # the queues it consumes, comma-separated
    beat_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} at {self.beat_at:%H:%M:%S}"


# The crowd operation's models live in their own module of this app (same migrations).
from labeling.crowd_models import (  # noqa: E402, F401
    Assignment,
    Enrollment,
    GoldItem,
    Guidelines,
    Pause,
    PlatformSession,
    PlatformWorker,
    QuizAnswer,
    QuizAttempt,
    Report,
)
