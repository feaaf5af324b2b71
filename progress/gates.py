"""The start gate assessments asks before an attempt opens (``settings.ASSESSMENTS_START_GATE``).

Assessments checks what it knows itself (status, attempts used, cooldown, ``pass_practice``
remediation); this gate adds what only progress knows: whether the prerequisites of the assessment's
competencies are mastered (or a teacher unlocked the competency), and whether the lesson was
re-watched when ``view_resources`` remediation follows a failed attempt. The same wording is used by
``progress.selectors`` when it shows ``can_start`` and ``reason`` on the student's path.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Exists, OuterRef

from assessments.models import Assessment, Attempt, BlueprintRule
from competencies.models import Competency, LearningResource, Prerequisite
from progress.models import CompetencyMastery, ResourceView
from roster.models import User

#: Lesson kinds that ``view_resources`` remediation asks the student to open again.
REMEDIATION_KINDS = (LearningResource.Kind.VIDEO, LearningResource.Kind.READING, LearningResource.Kind.LINK)


def _name(competency: Competency) -> str:
    return competency.code or competency.statement[:60]


def prerequisite_reason(missing: Sequence[Competency]) -> str | None:
    """'Master 6.RP.A.1 first: <statement>.' (and the others by code), or None when nothing is missing."""
    if not missing:
        return None
    first = missing[0]
    statement = first.statement.rstrip(".")
    reason = f"Master {_name(first)} first: {statement}." if first.code else f"Master {_name(first)} first."
    others = [_name(competency) for competency in missing[1:]]
    if others:
        reason += f" Then also {', '.join(others)}."
    return reason


def remediation_reason(unviewed: Sequence[LearningResource]) -> str | None:
    if not unviewed:
        return None
    titles = ", ".join(f"“{resource.title}”" for resource in unviewed)
    return f"Remediation not done: review the lesson before retaking: {titles}."


def missing_prerequisites_query(*, student_id: int, competency_ids: Sequence[int]):
    """Prerequisite edges of ``competency_ids`` whose prerequisite the student has not mastered, unless
    a teacher unlocked the competency. One query when evaluated."""
    mastered = CompetencyMastery.objects.filter(
        student_id=student_id,
        competency_id=OuterRef("prerequisite_id"),
        state=CompetencyMastery.State.MASTERED,
    )
    unlocked = CompetencyMastery.objects.filter(
        student_id=student_id, competency_id=OuterRef("competency_id"), is_unlocked_by_teacher=True
    )
    return (
        Prerequisite.objects.filter(competency_id__in=competency_ids)
        .exclude(Exists(mastered))
        .exclude(Exists(unlocked))
        .select_related("prerequisite")
        .order_by("prerequisite__position", "prerequisite_id")
    )


def unviewed_resources_query(*, student_id: int, competency_ids: Sequence[int], since):
    """Lesson resources of ``competency_ids`` the student has not opened since ``since``. One query."""
    viewed = ResourceView.objects.filter(
        student_id=student_id, resource_id=OuterRef("pk"), last_viewed_at__gt=since
    )
    return (
        LearningResource.objects.filter(competency_id__in=competency_ids, kind__in=REMEDIATION_KINDS)
        .exclude(Exists(viewed))
        .order_by("competency_id", "position", "pk")
    )


def _competency_ids(assessment: Assessment) -> list[int]:
    if assessment.competency_id is not None:
        return [assessment.competency_id]
    return list(BlueprintRule.objects.filter(assessment=assessment).values_list("competency_id", flat=True))


def start_gate(assessment: Assessment, student: User) -> str | None:
    """Why the student may not start ``assessment`` (prerequisite, remediation), or None.

    One query for an assessment with one competency and no ``view_resources`` remediation; three at
    most with it.
    """
    competency_ids = _competency_ids(assessment)
    if not competency_ids:
        return None
    missing = [
        edge.prerequisite
        for edge in missing_prerequisites_query(student_id=student.pk, competency_ids=competency_ids)
    ]
    reason = prerequisite_reason(missing)
    if reason:
        return reason
    if assessment.remediation == Assessment.Remediation.VIEW_RESOURCES:
        previous = (
            Attempt.objects.filter(assessment=assessment, student=student)
            .exclude(status=Attempt.Status.IN_PROGRESS)
            .order_by("-number")
            .only("pk", "is_passed", "submitted_at")
            .first()
        )
        if previous is not None and previous.is_passed is False and previous.submitted_at is not None:
            unviewed = list(
                unviewed_resources_query(
                    student_id=student.pk, competency_ids=competency_ids, since=previous.submitted_at
                )
            )
            return remediation_reason(unviewed)
    return None
