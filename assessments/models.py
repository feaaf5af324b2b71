"""The assessment bank: items with their keys and competency alignments, assessments built from
blueprints, and the attempts students make, each on its own drawn *form*.

An item's key is versioned (``key_version``): every response remembers the key version it was scored
against, so that a corrected key can be re-applied to exactly the affected responses.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from competencies.models import Competency
from roster.models import District

POINTS = {"max_digits": 8, "decimal_places": 2}


class Item(models.Model):
    """One question of the bank with its current answer key (choices, value, accepted texts or rubric)."""

    class Type(models.TextChoices):
        SINGLE_CHOICE = "single_choice", "Single choice"
        MULTIPLE_CHOICE = "multiple_choice", "Multiple choice"
        NUMERIC = "numeric", "Numeric"
        SHORT_TEXT = "short_text", "Short text"
        EXTENDED_TEXT = "extended_text", "Extended text (rubric)"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    district = models.ForeignKey(
        District,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="items",
        help_text="The owning district; empty for a shared item.",
    )
    type = models.CharField(max_length=20, choices=Type.choices)
    stem = models.TextField(help_text="Markdown; rendered and sanitised before any student sees it.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    key_version = models.PositiveIntegerField(default=1, help_text="Raised by one at every key change.")
    max_points = models.DecimalField(**POINTS, default=Decimal("1.00"))
    partial_credit = models.BooleanField(
        default=False, help_text="Multiple choice: (right picks - wrong picks) / correct total, floored at 0."
    )
    answer_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    answer_tolerance = models.DecimalField(max_digits=20, decimal_places=6, default=Decimal(0))
    accepted_answers = models.JSONField(default=list, blank=True, help_text="Short text: accepted answers.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    type__in=["single_choice", "multiple_choice", "numeric", "short_text", "extended_text"]
                ),
                name="item_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "active", "retired"]), name="item_status_valid"
            ),
            models.CheckConstraint(condition=Q(max_points__gt=0), name="item_max_points_positive"),
            models.CheckConstraint(condition=Q(key_version__gte=1), name="item_key_version_from_one"),
            models.CheckConstraint(condition=Q(answer_tolerance__gte=0), name="item_tolerance_not_negative"),
            models.CheckConstraint(
                condition=~Q(type="numeric") | Q(answer_value__isnull=False),
                name="item_numeric_has_value",
            ),
        ]

    def __str__(self) -> str:
        stem = " ".join(self.stem.split())
        return f"#{self.pk} {stem[:60]}"

    @property
    def has_choices(self) -> bool:
        return self.type in (self.Type.SINGLE_CHOICE, self.Type.MULTIPLE_CHOICE)


class ItemChoice(models.Model):
    """One option of a choice item, and whether the key marks it correct."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="choices")
    text = models.TextField()
    is_correct = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["item", "position", "pk"]

    def __str__(self) -> str:
        return self.text[:60]


class RubricLevel(models.Model):
    """One level of an extended-text item's rubric: the points and what earns them."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="rubric_levels")
    points = models.DecimalField(**POINTS)
    description = models.TextField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["item", "-points"]
        constraints = [
            models.UniqueConstraint(fields=["item", "points"], name="rubric_level_points_unique"),
            models.CheckConstraint(condition=Q(points__gte=0), name="rubric_level_points_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.points:g}: {self.description[:60]}"


class ItemAlignment(models.Model):
    """One competency an item measures, and how many of that competency's points the item carries.

    An item scoring ``s`` of its ``max_points`` gives the competency ``s / max_points * points``.
    """

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="alignments")
    competency = models.ForeignKey(Competency, on_delete=models.CASCADE, related_name="item_alignments")
    points = models.DecimalField(**POINTS, default=Decimal("1.00"))
    history = HistoricalRecords()

    class Meta:
        ordering = ["item", "competency"]
        constraints = [
            models.UniqueConstraint(fields=["item", "competency"], name="item_alignment_unique"),
            models.CheckConstraint(condition=Q(points__gt=0), name="item_alignment_points_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.competency_id} ({self.points:g})"


class Assessment(models.Model):
    """One practice or mastery check: its gate (attempts, cooldown, remediation) and, below, its blueprint."""

    class Kind(models.TextChoices):
        PRACTICE = "practice", "Practice"
        MASTERY_CHECK = "mastery_check", "Mastery check"

    class Remediation(models.TextChoices):
        NONE = "none", "None"
        VIEW_RESOURCES = "view_resources", "View the lesson resources"
        PASS_PRACTICE = "pass_practice", "Pass a practice"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    district = models.ForeignKey(
        District, on_delete=models.PROTECT, null=True, blank=True, related_name="assessments"
    )
    title = models.CharField(max_length=255)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MASTERY_CHECK)
    competency = models.ForeignKey(
        Competency,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assessments",
        help_text="The competency this assessment is about, if it has one focus.",
    )
    time_limit_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: untimed.")
    max_attempts = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    cooldown_hours = models.PositiveIntegerField(default=0, help_text="Hours between a submit and a retake.")
    remediation = models.CharField(
        max_length=20,
        choices=Remediation.choices,
        default=Remediation.NONE,
        help_text="What a student must do after a failed attempt before retaking.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["title", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["practice", "mastery_check"]), name="assessment_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__isnull=True) | Q(max_attempts__gte=1),
                name="assessment_max_attempts_positive",
            ),
            models.CheckConstraint(
                condition=Q(time_limit_minutes__isnull=True) | Q(time_limit_minutes__gte=1),
                name="assessment_time_limit_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class BlueprintRule(models.Model):
    """One line of an assessment's blueprint: draw ``draw_count`` items for a competency from a pool.

    The pool is the chosen ``items``; when none are chosen it is every active item aligned to the
    competency. Only active items are ever drawn.
    """

    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="blueprint_rules")
    competency = models.ForeignKey(Competency, on_delete=models.PROTECT, related_name="blueprint_rules")
    items = models.ManyToManyField(Item, blank=True, related_name="blueprint_rules")
    draw_count = models.PositiveIntegerField(default=1)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["assessment", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["assessment", "competency"], name="blueprint_rule_unique"),
            models.CheckConstraint(condition=Q(draw_count__gte=1), name="blueprint_rule_draws_one"),
        ]

    def __str__(self) -> str:
        return f"{self.assessment}: {self.draw_count} x {self.competency}"


class Attempt(models.Model):
    """One student's try at one assessment, on the form drawn for it with ``seed``."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        SUBMITTED = "submitted", "Submitted, awaiting rubric grading"
        COMPLETED = "completed", "Completed"

    assessment = models.ForeignKey(Assessment, on_delete=models.PROTECT, related_name="attempts")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField(help_text="1 for the first attempt at this assessment, then 2...")
    seed = models.BigIntegerField(help_text="Seeds random.Random for the form draw; kept to replay it.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    started_at = models.DateTimeField()
    deadline = models.DateTimeField(null=True, blank=True, help_text="Server time; empty when untimed.")
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    score = models.DecimalField(**POINTS, null=True, blank=True)
    max_score = models.DecimalField(**POINTS, default=Decimal(0))
    is_passed = models.BooleanField(
        null=True, blank=True, help_text="Every competency met; set on completion."
    )

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["assessment", "student", "number"], name="attempt_number_unique"),
            models.UniqueConstraint(
                fields=["assessment", "student"],
                condition=Q(status="in_progress"),
                name="attempt_one_open_per_assessment",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["in_progress", "submitted", "completed"]), name="attempt_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(deadline__isnull=True) | Q(deadline__gte=F("started_at")),
                name="attempt_deadline_after_start",
            ),
            models.CheckConstraint(
                condition=Q(status="in_progress") | Q(submitted_at__isnull=False),
                name="attempt_submitted_has_time",
            ),
        ]
        indexes = [models.Index(fields=["student", "assessment", "-number"], name="attempt_student_latest")]

    def __str__(self) -> str:
        return f"{self.student} on {self.assessment} #{self.number}"


class AttemptItem(models.Model):
    """One item on an attempt's form, where it stood, and the key version in force when it was drawn."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="attempt_items")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="attempt_items")
    position = models.PositiveIntegerField()
    key_version_seen = models.PositiveIntegerField()

    class Meta:
        ordering = ["attempt", "position"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "item"], name="attempt_item_unique"),
            models.UniqueConstraint(fields=["attempt", "position"], name="attempt_item_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.attempt_id}#{self.position}: item {self.item_id}"


class Response(models.Model):
    """A student's answer to one item of one attempt, its score and the key version it was scored by."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="responses")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="responses")
    answer = models.JSONField(null=True, blank=True)
    saved_at = models.DateTimeField()
    score = models.DecimalField(**POINTS, null=True, blank=True)
    scored_key_version = models.PositiveIntegerField(null=True, blank=True)
    needs_grading = models.BooleanField(default=False)
    grader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    graded_at = models.DateTimeField(null=True, blank=True)
    feedback = models.TextField(blank=True)

    class Meta:
        ordering = ["attempt", "item"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "item"], name="response_unique"),
            models.CheckConstraint(
                condition=Q(needs_grading=False) | Q(score__isnull=True),
                name="response_ungraded_has_no_score",
            ),
        ]
        indexes = [models.Index(fields=["item", "scored_key_version"], name="response_item_key_version")]

    def __str__(self) -> str:
        return f"{self.attempt_id}: item {self.item_id}"


class AttemptCompetencyScore(models.Model):
    """One competency's result on one completed attempt: points, scale score, level and whether met."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="competency_scores")
    competency = models.ForeignKey(Competency, on_delete=models.CASCADE, related_name="attempt_scores")
    earned = models.DecimalField(**POINTS)
    possible = models.DecimalField(**POINTS)
    score = models.DecimalField(**POINTS, help_text="The score on the framework's mastery scale.")
    level_points = models.DecimalField(**POINTS, null=True, blank=True)
    is_met = models.BooleanField()

    class Meta:
        ordering = ["attempt", "competency"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "competency"], name="attempt_competency_unique"),
            models.CheckConstraint(
                condition=Q(earned__lte=F("possible")), name="attempt_competency_earned_le"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.attempt_id}: {self.competency_id} {self.score}"


class RescoreJob(models.Model):
    """One rescoring run: a key, points or alignment change re-applied to every affected response.

    Progress is recomputed from the responses themselves (those still below the target key version),
    never counted up in memory, so a job whose worker died resumes where the data says it stopped.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    items = models.ManyToManyField(Item, related_name="rescore_jobs")
    assessment = models.ForeignKey(
        Assessment, on_delete=models.SET_NULL, null=True, blank=True, related_name="rescore_jobs"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="rescore_jobs",
    )
    reason = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="What changed: item id -> before/after.")
    total = models.PositiveIntegerField(default=0, help_text="Responses to rescore.")
    done = models.PositiveIntegerField(default=0, help_text="Responses rescored so far.")
    changed = models.PositiveIntegerField(default=0, help_text="Responses whose score changed.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(done__lte=F("total")), name="rescore_job_done_le_total"),
            models.CheckConstraint(condition=Q(changed__lte=F("done")), name="rescore_job_changed_le_done"),
        ]

    def __str__(self) -> str:
        return f"Rescore #{self.pk} ({self.get_status_display()})"


class ResponseScoreChange(models.Model):
    """One response whose score a rescoring job changed: the old and the new score, kept for good."""

    job = models.ForeignKey(RescoreJob, on_delete=models.CASCADE, related_name="score_changes")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="score_changes")
    old_score = models.DecimalField(**POINTS, null=True, blank=True)
    new_score = models.DecimalField(**POINTS, null=True, blank=True)
    old_key_version = models.PositiveIntegerField(null=True, blank=True)
    new_key_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "response"]
        constraints = [
            # A re-run of the same job never records the same response twice.
            models.UniqueConstraint(fields=["job", "response"], name="score_change_once_per_job"),
        ]

    def __str__(self) -> str:
        return f"response {self.response_id}: {self.old_score} -> {self.new_score}"


class ItemStatistics(models.Model):
    """One item's classical statistics from its scored responses, recomputed nightly."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="statistics")
    response_count = models.PositiveIntegerField(default=0)
    facility = models.DecimalField(
        max_digits=5, decimal_places=4, null=True, blank=True, help_text="Share of full credit (0..1)."
    )
    discrimination = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Point-biserial correlation of the item score with the rest of the attempt (-1..1).",
    )
    is_suspect = models.BooleanField(default=False)
    suspect_reasons = models.JSONField(default=list, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "item statistics"
        indexes = [models.Index(fields=["is_suspect"], name="item_statistics_suspect")]

    def __str__(self) -> str:
        return f"item {self.item_id}: facility {self.facility}, discrimination {self.discrimination}"
