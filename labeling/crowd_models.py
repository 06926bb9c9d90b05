"""The crowd operation's records (DESIGN §8): versioned guidelines and consent, who enrolled
and qualified, gold items and quiz answers, the task queue's reservations, pauses, reports
and platform links. Imported by ``labeling.models`` (one app, one set of migrations).

None of these rows is a judgment: a quiz answer, a report or a skip is recorded here and
never reaches training. A gold check answered inside a campaign is a real ``Judgment``
(its item has a ``GoldItem``); selectors leave it out of training and default exports.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Guidelines(models.Model):
    """One version of a campaign's guidelines and consent text. Rows are never edited: a
    change is a new version, and judgments and consents record the version they were made
    under (``Campaign.guideline_version``)."""

    campaign = models.ForeignKey(
        "labeling.Campaign", on_delete=models.CASCADE, related_name="guideline_versions"
    )
    version = models.PositiveIntegerField()
    text = models.TextField(help_text="Markdown: what to judge and how.")
    examples = models.JSONField(
        default=dict,
        blank=True,
        help_text='One example per level of the scale, markdown: {"A4": "…", …, "B4": "…"}.',
    )
    consent = models.TextField(
        blank=True,
        help_text="Markdown shown before the quiz: what the work involves, pay, data use, "
        "how to withdraw. Empty: no consent step.",
    )
    content_warning = models.TextField(
        blank=True, help_text="What upsetting content the work may show (red team: say it plainly)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "-version"]
        verbose_name_plural = "guidelines"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "version"], name="one_guidelines_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="guidelines_version_from_1"),
        ]

    def __str__(self):
        return f"{self.campaign} guidelines {self.label}"

    @property
    def label(self) -> str:
        return f"v{self.version}"


class Enrollment(models.Model):
    """A worker's standing in one campaign: consent, qualification, withdrawal."""

    campaign = models.ForeignKey(
        "labeling.Campaign", on_delete=models.CASCADE, related_name="enrollments"
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments"
    )
    consent_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The guidelines version whose consent they gave."
    )
    consented_at = models.DateTimeField(null=True, blank=True)
    qualified_at = models.DateTimeField(
        null=True, blank=True, help_text="When they passed the quiz (empty: not yet)."
    )
    withdrawn_at = models.DateTimeField(
        null=True, blank=True, help_text="They withdrew: nothing more is served to them."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "worker"], name="one_enrollment"),
        ]

    def __str__(self):
        return f"{self.worker} in {self.campaign}"


class GoldItem(models.Model):
    """An item with a known answer: a quiz question, or a check mixed into the queue that
    looks like any other item. The item is a ``Turn`` of a conversation of its own (source
    "gold:…", no worker) whose candidates are written out, not generated."""

    class Role(models.TextChoices):
        QUIZ = "quiz", "Qualification quiz"
        CHECK = "check", "Check while collecting"

    item = models.OneToOneField("labeling.Turn", on_delete=models.PROTECT, related_name="gold")
    campaign = models.ForeignKey(
        "labeling.Campaign", on_delete=models.PROTECT, related_name="gold_items"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    answer = models.JSONField(
        help_text="Candidate slots best first under the campaign's question, as groups: "
        "[[1], [0]] says slot 1 is the answer. A worker is right when their top pick is in "
        "the first group."
    )
    explanation = models.TextField(help_text="Shown to the worker after they answer.")
    source = models.CharField(max_length=200, default="admin", help_text='"admin" or the file.')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "role", "pk"]

    def __str__(self):
        return f"Gold {self.get_role_display().lower()} {self.pk} of {self.campaign}"


class QuizAttempt(models.Model):
    """One try at a campaign's qualification quiz."""

    campaign = models.ForeignKey(
        "labeling.Campaign", on_delete=models.CASCADE, related_name="quiz_attempts"
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_attempts"
    )
    number = models.PositiveSmallIntegerField(help_text="1 for the first attempt.")
    questions = models.JSONField(default=list, help_text="The gold item ids asked, in order.")
    correct = models.PositiveSmallIntegerField(default=0)
    passed = models.BooleanField(null=True, blank=True, help_text="Empty while answering.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "worker", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "worker", "number"], name="one_quiz_attempt_number"
            ),
        ]

    def __str__(self):
        return f"Quiz attempt {self.number} of {self.worker} in {self.campaign}"


class QuizAnswer(models.Model):
    """One answer in a quiz attempt, as given: never a judgment, never trained on."""

    attempt = models.ForeignKey(QuizAttempt, on_delete=models.CASCADE, related_name="answers")
    gold = models.ForeignKey(GoldItem, on_delete=models.PROTECT, related_name="quiz_answers")
    shown = models.JSONField(help_text="Candidate slots in the order shown, A first.")
    order = models.JSONField(help_text="The answer: groups of display positions, top first.")
    strength = models.PositiveSmallIntegerField(null=True, blank=True)
    correct = models.BooleanField()
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["attempt", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "gold"], name="one_answer_per_question"),
        ]

    def __str__(self):
        return f"{'Right' if self.correct else 'Wrong'} answer to gold {self.gold_id}"


class Assignment(models.Model):
    """A task the queue gave one worker: an item to judge (ranking, re-judge, a gold check)
    or a conversation (chat, red team). While ``reserved`` and not expired it holds one of
    the item's overlap slots for this worker alone. A worker gets an item at most once."""

    class Status(models.TextChoices):
        RESERVED = "reserved", "Reserved"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        REPORTED = "reported", "Reported (can't judge)"
        EXPIRED = "expired", "Expired"

    campaign = models.ForeignKey(
        "labeling.Campaign", on_delete=models.CASCADE, related_name="assignments"
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    item = models.ForeignKey(
        "labeling.Turn", null=True, blank=True, on_delete=models.CASCADE, related_name="assignments"
    )
    conversation = models.ForeignKey(
        "labeling.Conversation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="assignments",
        help_text="Chat and red team: the conversation this task is.",
    )
    set_number = models.PositiveSmallIntegerField(default=1, help_text="The worker's n-th set.")
    is_gold = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RESERVED)
    judgment = models.ForeignKey(
        "labeling.Judgment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    draft = models.JSONField(
        default=dict, blank=True, help_text="Skipped or reported: what the worker had typed."
    )
    reserved_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-reserved_at"]
        indexes = [models.Index(fields=["campaign", "worker", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "item"],
                condition=Q(item__isnull=False),
                name="item_once_per_worker",
            ),
            models.CheckConstraint(
                condition=Q(item__isnull=True) | Q(conversation__isnull=True),
                name="assignment_item_or_conversation",
            ),
        ]

    def __str__(self):
        target = f"item {self.item_id}" if self.item_id else f"conversation {self.conversation_id}"
        return f"{self.get_status_display()}: {target} for {self.worker}"


class Pause(models.Model):
    """A worker stopped in a campaign by a rule or a researcher, with the reason. While not
    lifted nothing is served to them and their judgments stay out of training and the
    default exports; lifting it brings both back."""

    class Rule(models.TextChoices):
        GOLD_ACCURACY = "gold_accuracy", "Gold accuracy below the threshold"
        TOO_FAST = "too_fast", "Judging faster than the minimum time"
        POSITION_BIAS = "position_bias", "Extreme position bias"
        MANUAL = "manual", "Paused by a researcher"

    campaign = models.ForeignKey(
        "labeling.Campaign", on_delete=models.CASCADE, related_name="pauses"
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pauses"
    )
    rule = models.CharField(max_length=20, choices=Rule.choices)
    reason = models.TextField(help_text="What the worker and the researchers are told.")
    metrics = models.JSONField(default=dict, blank=True, help_text="The figures at the pause.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lift_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "worker"],
                condition=Q(lifted_at__isnull=True),
                name="one_open_pause",
            ),
        ]

    def __str__(self):
        return f"{self.worker} paused in {self.campaign}: {self.get_rule_display()}"


class Report(models.Model):
    """ "Can't judge / report this response": recorded as such, never a judgment."""

    class Reason(models.TextChoices):
        CANT_JUDGE = "cant_judge", "I can't judge this (I lack the knowledge, or it is unclear)"
        BROKEN = "broken", "A response is empty, cut off or garbled"
        HARMFUL = "harmful", "A response is harmful or upsetting beyond what I agreed to"
        OTHER = "other", "Something else"

    campaign = models.ForeignKey(
        "labeling.Campaign", on_delete=models.CASCADE, related_name="reports"
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reports"
    )
    item = models.ForeignKey("labeling.Turn", on_delete=models.PROTECT, related_name="reports")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A double-clicked "Report" must not write two rows (the service checks first).
            models.UniqueConstraint(fields=["worker", "item"], name="one_report_per_item"),
        ]

    def __str__(self):
        return f"Report on item {self.item_id} by {self.worker}: {self.get_reason_display()}"


class PlatformWorker(models.Model):
    """A crowd platform's participant behind a pseudonymous account. The platform id stays
    here (payments and bonuses need it); pages and exports show only the pseudonym."""

    class Platform(models.TextChoices):
        PROLIFIC = "prolific", "Prolific"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="platform_worker"
    )
    platform = models.CharField(max_length=20, choices=Platform.choices)
    participant_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "participant_id"], name="one_account_per_participant"
            ),
        ]

    def __str__(self):
        return f"{self.get_platform_display()} participant as {self.user}"


class PlatformSession(models.Model):
    """One arrival from a platform study: its ids and when the set was completed."""

    platform_worker = models.ForeignKey(
        PlatformWorker, on_delete=models.CASCADE, related_name="sessions"
    )
    campaign = models.ForeignKey(
        "labeling.Campaign", on_delete=models.CASCADE, related_name="platform_sessions"
    )
    study_id = models.CharField(max_length=100)
    session_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform_worker", "session_id"], name="one_row_per_platform_session"
            ),
        ]

    def __str__(self):
        return f"Session of {self.platform_worker.user} in {self.campaign}"
