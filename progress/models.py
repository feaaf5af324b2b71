"""Progress: the evidence of what each student can do, the mastery computed from it, and the flags that
ask a teacher for timely support.

Evidence is append-only and dated by when the student did the work. Mastery is stored (never computed on a
dashboard request) and recomputed in the background from all evidence, so a recompute is idempotent.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from competencies.models import CalculationMethod, Competency, LearningResource
from roster.models import District

POINTS = {"max_digits": 8, "decimal_places": 2}


class Evidence(models.Model):
    """One dated score for one student on one competency from one source.

    Sources: a completed attempt's result for the competency (``attempt``, keyed on the attempt id and the
    competency), a teacher's observation, or a teacher's override (with its note). A rescore
    replaces the score of the evidence it changed in place; the history table keeps the old values.
    """

    class Source(models.TextChoices):
        ATTEMPT = "attempt", "Assessment attempt"
        OBSERVATION = "observation", "Teacher observation"
        OVERRIDE = "override", "Teacher override"

    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="evidence")
    competency = models.ForeignKey(Competency, on_delete=models.CASCADE, related_name="evidence")
    source = models.CharField(max_length=20, choices=Source.choices)
    source_id = models.BigIntegerField(
        null=True, blank=True, help_text="The attempt's id, for attempt evidence."
    )
    is_summative = models.BooleanField(default=True, help_text="A mastery check (true) or practice (false).")
    score = models.DecimalField(**POINTS, help_text="On the framework's mastery scale.")
    is_correct = models.BooleanField(help_text="Met the mastery level: the observation BKT uses.")
    observed_at = models.DateTimeField(help_text="When the student did the work (not when it was graded).")
    recorded_at = models.DateTimeField(auto_now=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["student", "competency", "observed_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_id", "competency"],
                condition=Q(source_id__isnull=False),
                name="evidence_one_row_per_source",
            ),
        ]
        indexes = [
            models.Index(fields=["student", "competency", "observed_at"], name="evidence_student_competency"),
            models.Index(fields=["competency", "observed_at"], name="evidence_competency_time"),
        ]

    def __str__(self) -> str:
        return f"{self.student_id} {self.competency_id} {self.score} ({self.source})"


class CompetencyMastery(models.Model):
    """One student's stored mastery of one competency: score, level, state and the calculation in words."""

    class State(models.TextChoices):
        LOCKED = "locked", "Locked"
        READY = "ready", "Ready"
        IN_PROGRESS = "in_progress", "In progress"
        MASTERED = "mastered", "Mastered"

    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="masteries")
    competency = models.ForeignKey(Competency, on_delete=models.CASCADE, related_name="masteries")
    state = models.CharField(max_length=20, choices=State.choices, default=State.LOCKED)
    score = models.DecimalField(**POINTS, null=True, blank=True)
    level_points = models.DecimalField(**POINTS, null=True, blank=True)
    level_name = models.CharField(max_length=100, blank=True)
    p_known = models.FloatField(null=True, blank=True, help_text="BKT: probability the skill is known.")
    method = models.CharField(max_length=30, choices=CalculationMethod.choices, blank=True)
    evidence_count = models.PositiveIntegerField(default=0)
    explanation = models.TextField(blank=True, help_text="The calculation, in words a teacher can follow.")
    mastered_at = models.DateTimeField(null=True, blank=True)
    first_activity_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    failed_checks = models.PositiveIntegerField(default=0, help_text="Mastery checks not met since ready.")
    is_overridden = models.BooleanField(default=False, help_text="A teacher's override decides the state.")
    is_unlocked_by_teacher = models.BooleanField(default=False)
    computed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "competency masteries"
        ordering = ["student", "competency"]
        constraints = [
            models.UniqueConstraint(fields=["student", "competency"], name="mastery_one_row_per_competency"),
        ]
        indexes = [models.Index(fields=["competency", "state"], name="mastery_competency_state")]

    def __str__(self) -> str:
        return f"{self.student_id} {self.competency_id}: {self.state}"

    @property
    def is_mastered(self) -> bool:
        return self.state == self.State.MASTERED


class BKTParameters(models.Model):
    """Fitted Bayesian knowledge tracing parameters for one competency (the nightly EM fit)."""

    competency = models.OneToOneField(Competency, on_delete=models.CASCADE, related_name="bkt_parameters")
    prior = models.FloatField()
    learn = models.FloatField()
    guess = models.FloatField()
    slip = models.FloatField()
    forget = models.FloatField(default=0.0)
    sequence_count = models.PositiveIntegerField(default=0)
    fitted_at = models.DateTimeField()

    class Meta:
        verbose_name = "BKT parameters"
        verbose_name_plural = "BKT parameters"

    def __str__(self) -> str:
        return f"BKT {self.competency_id}: prior {self.prior:.2f} learn {self.learn:.2f}"


class FlagThresholds(models.Model):
    """One district's thresholds for raising intervention flags (defaults from DOMAIN.md)."""

    district = models.OneToOneField(District, on_delete=models.CASCADE, related_name="flag_thresholds")
    stuck_failed_checks = models.PositiveIntegerField(
        default=2,
        validators=[MinValueValidator(1)],
        help_text="Failed mastery checks on one competency before the student is flagged stuck (1 or more).",
    )
    stuck_days = models.PositiveIntegerField(default=7)
    inactive_school_days = models.PositiveIntegerField(default=5)
    behind_pace_margin = models.PositiveIntegerField(
        default=1, help_text="Competencies behind the pacing guide before the flag is raised."
    )
    weak_prerequisite_score_margin = models.DecimalField(
        **POINTS, default=Decimal("0.25"), help_text="Mastered within this margin of the mastery level: weak."
    )
    prerequisite_stale_days = models.PositiveIntegerField(default=120)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "flag thresholds"

    def __str__(self) -> str:
        return f"Flag thresholds for {self.district}"


class InterventionFlag(models.Model):
    """One durable request for timely support: a student, a kind, a competency, why, and what next."""

    class Kind(models.TextChoices):
        STUCK = "stuck", "Stuck"
        PREREQUISITE_GAP = "prerequisite_gap", "Prerequisite gap"
        BEHIND_PACE = "behind_pace", "Behind pace"
        INACTIVE = "inactive", "Inactive"
        REGRESSED = "regressed", "Regressed"
        PREDICTED_MISS = "predicted_miss", "Predicted miss"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        SNOOZED = "snoozed", "Snoozed"
        RESOLVED = "resolved", "Resolved"

    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="flags")
    competency = models.ForeignKey(
        Competency, on_delete=models.CASCADE, null=True, blank=True, related_name="flags",
        help_text="Empty for flags about the student's whole path (behind pace, inactive).",
    )  # fmt: skip
    kind = models.CharField(max_length=30, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    reason = models.TextField(help_text="Why: the evidence, in words.")
    evidence = models.JSONField(default=dict, blank=True, help_text="The facts behind the reason.")
    suggestion = models.TextField(help_text="What next: the lesson, the prerequisite, the peers.")
    suggestion_data = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField()
    snoozed_until = models.DateField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution_note = models.TextField(blank=True, help_text="The teacher's note, or why it cleared itself.")
    is_auto_resolved = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-opened_at", "pk"]
        constraints = [
            # One flag that is not resolved per student, kind and competency (NULLS NOT DISTINCT would
            # need PostgreSQL 15 everywhere; two partial constraints say the same on every database).
            models.UniqueConstraint(
                fields=["student", "kind", "competency"],
                condition=~Q(status="resolved") & Q(competency__isnull=False),
                name="flag_one_open_per_competency",
            ),
            models.UniqueConstraint(
                fields=["student", "kind"],
                condition=~Q(status="resolved") & Q(competency__isnull=True),
                name="flag_one_open_per_student_kind",
            ),
        ]
        indexes = [models.Index(fields=["status", "kind"], name="flag_status_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.student_id} {self.competency_id or ''}".strip()


class ResourceView(models.Model):
    """One student's viewing of one lesson resource: when first and when last opened.

    The ``view_resources`` remediation of a mastery check asks for a view after the failed attempt,
    so the last view time is what the start gate reads.
    """

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="resource_views"
    )
    resource = models.ForeignKey(LearningResource, on_delete=models.CASCADE, related_name="views")
    first_viewed_at = models.DateTimeField()
    last_viewed_at = models.DateTimeField()

    class Meta:
        ordering = ["student", "resource"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "resource"], name="resource_view_one_row_per_resource"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student_id} viewed {self.resource_id} at {self.last_viewed_at}"
