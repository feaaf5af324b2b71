"""Reads behind the student's attempt pages: the gate, the competency results, what comes next.

Each states its query budget; the views only format what these return.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q

from assessments import services
from assessments.models import Assessment, Attempt, AttemptCompetencyScore
from competencies.models import LearningResource, MasteryLevel, Prerequisite
from roster.models import User


def attempt_is_expired(attempt: Attempt, now: datetime) -> bool:
    return attempt.deadline is not None and now >= attempt.deadline


@dataclass
class Gate:
    """Where a student stands with one assessment: their attempts, an open one, and the gate."""

    attempts: list[Attempt]
    open_attempt: Attempt | None
    reason: str | None
    opens_at: datetime | None = None

    @property
    def can_start(self) -> bool:
        return self.open_attempt is None and self.reason is None

    @property
    def cooldown_is_the_reason(self) -> bool:
        """The service words a cooldown with an ISO timestamp; the page shows that time readably."""
        return bool(self.reason and self.opens_at and self.reason.startswith("Cooldown"))

    @property
    def passed_attempt(self) -> Attempt | None:
        return next((attempt for attempt in self.attempts if attempt.is_passed), None)


def assessment_gate_for_student(*, assessment: Assessment, student: User, now: datetime) -> Gate:
    """The student's attempts (newest first) and why a new one may not start. One query, plus the gate's.

    The refusal is the one ``attempt_start`` would give: an open attempt past its deadline counts as
    submitted at its deadline, because starting submits it first.
    """
    attempts = list(Attempt.objects.filter(assessment=assessment, student=student).order_by("-number"))
    previous = attempts[0] if attempts else None
    if previous is not None and previous.status == Attempt.Status.IN_PROGRESS:
        if not attempt_is_expired(previous, now):
            return Gate(attempts=attempts, open_attempt=previous, reason=None)
        previous = copy.copy(previous)
        previous.status = Attempt.Status.SUBMITTED
        previous.submitted_at = previous.deadline
    reason = services.attempt_start_refusal(
        assessment=assessment, student=student, previous=previous, now=now
    )
    opens_at = None
    if previous is not None and previous.submitted_at is not None and assessment.cooldown_hours:
        candidate = previous.submitted_at + timedelta(hours=assessment.cooldown_hours)
        opens_at = candidate if candidate > now else None
    return Gate(attempts=attempts, open_attempt=None, reason=reason, opens_at=opens_at)


def lesson_resources_for(competency_ids: list[int]) -> list[LearningResource]:
    if not competency_ids:
        return []
    return list(
        LearningResource.objects.filter(competency_id__in=competency_ids)
        .select_related("competency")
        .order_by("competency__position", "competency_id", "position", "pk")
    )


@dataclass
class CompetencyRow:
    row: AttemptCompetencyScore
    level_name: str
    top_points: Decimal | None

    @property
    def competency(self):
        return self.row.competency


def attempt_competency_rows(attempt: Attempt) -> list[CompetencyRow]:
    """The attempt's competency results with level names. Two queries."""
    rows = list(
        AttemptCompetencyScore.objects.filter(attempt=attempt)
        .select_related("competency__framework")
        .order_by("competency__position", "competency_id")
    )
    scale_ids = {row.competency.framework.mastery_scale_id for row in rows} - {None}
    names: dict[tuple[int, Decimal], str] = {}
    top: dict[int, Decimal] = {}
    if scale_ids:
        for scale_id, points, name in MasteryLevel.objects.filter(scale_id__in=scale_ids).values_list(
            "scale_id", "points", "name"
        ):
            names[(scale_id, points)] = name
            top[scale_id] = max(top.get(scale_id, points), points)
    result = []
    for row in rows:
        scale_id = row.competency.framework.mastery_scale_id
        result.append(
            CompetencyRow(
                row=row,
                level_name=names.get((scale_id, row.level_points), "")
                if row.level_points is not None
                else "",
                top_points=top.get(scale_id),
            )
        )
    return result


def attempt_next_steps(*, attempt: Attempt, student: User, rows: list[CompetencyRow]) -> dict[str, Any]:
    """What comes next: the competencies a met one unlocks, or the lessons to review. Two queries."""
    met_ids = [row.row.competency_id for row in rows if row.row.is_met]
    not_met_ids = [row.row.competency_id for row in rows if not row.row.is_met]
    unlocked: list[dict[str, Any]] = []
    if met_ids:
        on_this_attempt = {row.row.competency_id for row in rows}
        edges = (
            Prerequisite.objects.filter(prerequisite_id__in=met_ids)
            .exclude(competency_id__in=on_this_attempt)
            .select_related("competency")
            .order_by("competency__position", "competency_id")
        )
        seen: dict[int, dict[str, Any]] = {}
        for edge in edges:
            seen.setdefault(edge.competency_id, {"competency": edge.competency, "assessments": []})
        if seen:
            for assessment in Assessment.objects.filter(
                Q(district__isnull=True) | Q(district_id=student.district_id),
                competency_id__in=list(seen),
                status=Assessment.Status.ACTIVE,
            ).order_by("kind", "title"):
                seen[assessment.competency_id]["assessments"].append(assessment)
        unlocked = list(seen.values())
    return {"unlocked": unlocked, "review": lesson_resources_for(not_met_ids)}


def attempt_history_for_student(*, student: User) -> list[Attempt]:
    """Every submitted attempt of the student, newest first, with its assessment, the number of items
    on its form (``item_count``) and its competency results (``competency_rows``, by position). Two
    queries, whatever the number of attempts."""
    attempts = list(
        Attempt.objects.filter(student=student)
        .exclude(status=Attempt.Status.IN_PROGRESS)
        .select_related("assessment")
        .annotate(item_count=Count("attempt_items", distinct=True))
        .order_by("-submitted_at", "-pk")
    )
    rows: dict[int, list[AttemptCompetencyScore]] = {attempt.pk: [] for attempt in attempts}
    if attempts:
        for row in (
            AttemptCompetencyScore.objects.filter(attempt_id__in=list(rows))
            .select_related("competency")
            .order_by("competency__position", "competency_id")
        ):
            rows[row.attempt_id].append(row)
    for attempt in attempts:
        attempt.competency_rows = rows[attempt.pk]
    return attempts
