"""The catalog: frameworks of competencies, their prerequisite graph, mastery scales and lessons.

Identifiers are the CASE ``identifier`` UUIDs, stable across re-imports, so that alignments and
student evidence keyed on them survive a newer version of a framework.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords
from tree_queries.models import TreeNode

from competencies.embeds import embed_url_for
from roster.models import District, Section


class CalculationMethod(models.TextChoices):
    LATEST = "latest", "Latest"
    HIGHEST = "highest", "Highest"
    AVERAGE = "average", "Average"
    WEIGHTED_AVERAGE = "weighted_average", "Weighted average"
    DECAYING_AVERAGE = "decaying_average", "Decaying average (exponential)"
    N_TIMES = "n_times", "n times"
    BKT = "bkt", "Bayesian knowledge tracing"


class MasteryScale(models.Model):
    """One ordered rating scale (e.g. 4 Exceeds .. 0 No evidence); exactly one level is mastery."""

    name = models.CharField(max_length=255)
    district = models.ForeignKey(
        District, on_delete=models.PROTECT, null=True, blank=True, related_name="mastery_scales"
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MasteryLevel(models.Model):
    """One level of a mastery scale with its point value; a score maps to the highest level it reaches."""

    scale = models.ForeignKey(MasteryScale, on_delete=models.CASCADE, related_name="levels")
    name = models.CharField(max_length=100)
    points = models.DecimalField(max_digits=6, decimal_places=2)
    is_mastery = models.BooleanField(default=False, help_text="The level at which a competency is mastered.")
    color = models.CharField(max_length=7, default="#6c757d", help_text="Hex colour for the heatmap.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["scale", "-points"]
        constraints = [
            models.UniqueConstraint(fields=["scale", "points"], name="mastery_level_points_unique"),
            models.UniqueConstraint(
                fields=["scale"], condition=Q(is_mastery=True), name="mastery_level_one_mastery_per_scale"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.points:g} {self.name}"


class Framework(models.Model):
    """One competency framework: a CASE CFDocument with its status and how mastery is calculated."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        RETIRED = "retired", "Retired"

    identifier = models.UUIDField(unique=True, default=uuid.uuid4)
    uri = models.URLField(max_length=500, blank=True)
    title = models.CharField(max_length=500)
    creator = models.CharField(max_length=255, blank=True)
    publisher = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    subject = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=20, blank=True)
    version = models.CharField(max_length=100, blank=True)
    adoption_status = models.CharField(max_length=100, blank=True)
    official_source_url = models.URLField(max_length=500, blank=True)
    notes = models.TextField(blank=True)
    status_start_date = models.DateField(null=True, blank=True)
    status_end_date = models.DateField(null=True, blank=True)
    last_change_date_time = models.DateTimeField(null=True, blank=True)
    case_extra = models.JSONField(
        default=dict, blank=True, help_text="CASE fields kept for a faithful export (definitions, license)."
    )
    district = models.ForeignKey(
        District, on_delete=models.PROTECT, null=True, blank=True, related_name="frameworks"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    mastery_scale = models.ForeignKey(
        MasteryScale, on_delete=models.PROTECT, null=True, blank=True, related_name="frameworks"
    )
    calculation_method = models.CharField(
        max_length=30, choices=CalculationMethod.choices, default=CalculationMethod.WEIGHTED_AVERAGE
    )
    calculation_parameter = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="w, d or n, by method."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Competency(TreeNode):
    """One node of a framework's tree (a CASE CFItem): inner nodes group, leaves are mastered."""

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="competencies")
    identifier = models.UUIDField(unique=True, default=uuid.uuid4)
    uri = models.URLField(max_length=500, blank=True)
    code = models.CharField(
        max_length=255, blank=True, db_index=True, help_text="humanCodingScheme; not unique."
    )
    statement = models.TextField()
    abbreviated_statement = models.CharField(max_length=500, blank=True)
    item_type = models.CharField(max_length=255, blank=True)
    education_levels = models.JSONField(default=list, blank=True)
    list_enumeration = models.CharField(max_length=50, blank=True)
    language = models.CharField(max_length=20, blank=True)
    notes = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Order among siblings.")
    last_change_date_time = models.DateTimeField(null=True, blank=True)
    child_association_identifier = models.UUIDField(
        default=uuid.uuid4, help_text="Identifier of the CASE isChildOf association that places this node."
    )
    case_extra = models.JSONField(default=dict, blank=True)
    calculation_method = models.CharField(
        max_length=30, choices=CalculationMethod.choices, blank=True, help_text="Overrides the framework's."
    )
    calculation_parameter = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["position", "pk"]
        verbose_name_plural = "competencies"
        indexes = [models.Index(fields=["framework", "parent", "position"], name="competency_sibling_order")]

    def __str__(self) -> str:
        label = self.statement if len(self.statement) <= 80 else self.statement[:77] + "..."
        return f"{self.code} {label}".strip()


class Prerequisite(models.Model):
    """One edge of the prerequisite graph: ``prerequisite`` must be mastered before ``competency``."""

    identifier = models.UUIDField(unique=True, default=uuid.uuid4, help_text="The CASE precedes association.")
    prerequisite = models.ForeignKey(Competency, on_delete=models.CASCADE, related_name="enables")
    competency = models.ForeignKey(Competency, on_delete=models.CASCADE, related_name="prerequisite_edges")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["competency", "prerequisite"]
        constraints = [
            models.UniqueConstraint(fields=["prerequisite", "competency"], name="prerequisite_edge_unique"),
            models.CheckConstraint(
                condition=~Q(prerequisite=models.F("competency")), name="prerequisite_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prerequisite.code or self.prerequisite.identifier} -> {self.competency.code or self.competency.identifier}"


class CaseAssociation(models.Model):
    """One CASE association the product keeps but does not act on (isRelatedTo, exemplar, ext:...).

    Either end may lie outside the package: then only its identifier, URI and title are kept.
    """

    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="associations")
    identifier = models.UUIDField(unique=True)
    uri = models.URLField(max_length=500, blank=True)
    association_type = models.CharField(max_length=255)
    origin_identifier = models.CharField(max_length=255)
    origin_uri = models.CharField(max_length=500, blank=True)
    origin_title = models.TextField(blank=True)
    destination_identifier = models.CharField(max_length=255)
    destination_uri = models.CharField(max_length=500, blank=True)
    destination_title = models.TextField(blank=True)
    sequence_number = models.IntegerField(null=True, blank=True)
    last_change_date_time = models.DateTimeField(null=True, blank=True)
    case_extra = models.JSONField(default=dict, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["framework", "association_type", "identifier"]

    def __str__(self) -> str:
        return f"{self.origin_identifier} {self.association_type} {self.destination_identifier}"


class LearningResource(models.Model):
    """One piece of the flipped lesson for a competency: a video, a reading, a link or a practice."""

    class Kind(models.TextChoices):
        VIDEO = "video", "Video"
        READING = "reading", "Reading"
        LINK = "link", "Link"
        PRACTICE = "practice", "Practice"

    competency = models.ForeignKey(Competency, on_delete=models.CASCADE, related_name="resources")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.VIDEO)
    title = models.CharField(max_length=255)
    url = models.URLField(max_length=500)
    duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["competency", "position", "pk"]

    def __str__(self) -> str:
        return self.title

    @property
    def embed_url(self) -> str | None:
        return embed_url_for(self.url)


class PacingGuide(models.Model):
    """The framework one section works through, with target dates below."""

    section = models.OneToOneField(Section, on_delete=models.CASCADE, related_name="pacing_guide")
    framework = models.ForeignKey(Framework, on_delete=models.PROTECT, related_name="pacing_guides")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"{self.section}: {self.framework}"


class PacingTarget(models.Model):
    """The date by which a section is expected to have mastered one competency or unit (inner node)."""

    guide = models.ForeignKey(PacingGuide, on_delete=models.CASCADE, related_name="targets")
    competency = models.ForeignKey(Competency, on_delete=models.CASCADE, related_name="pacing_targets")
    target_date = models.DateField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["guide", "target_date"]
        constraints = [models.UniqueConstraint(fields=["guide", "competency"], name="pacing_target_unique")]

    def __str__(self) -> str:
        return f"{self.competency} by {self.target_date}"
