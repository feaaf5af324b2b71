"""Reads of the progress app, scoped to who asks. Each states its query budget, independent of size."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from assessments.models import Assessment, Attempt
from assessments.services import attempt_start_refusals
from competencies.models import Competency, Framework, LearningResource, PacingGuide
from progress import gates, grid
from progress.models import CompetencyMastery, Evidence, ResourceView
from roster.models import Enrollment, User

State = CompetencyMastery.State


# --- access ---------------------------------------------------------------------------------------


def access_student(*, user: User, student_id: int) -> User:
    """The student, if ``user`` may see their progress: the student themself, a teacher of a section
    the student is enrolled in, or district staff of the student's district. One query;
    ``User.DoesNotExist`` otherwise (the API answers 404, as for a student that does not exist)."""
    students = User.objects.filter(pk=student_id, role=User.Role.STUDENT, is_active=True)
    if user.role == User.Role.STUDENT:
        return students.get(pk=user.pk)
    if user.role == User.Role.DISTRICT_STAFF:
        if user.district_id is None:
            raise User.DoesNotExist
        return students.get(district_id=user.district_id)
    if user.role == User.Role.TEACHER:
        taught = Enrollment.objects.filter(user=user, role=Enrollment.Role.TEACHER, is_active=True).values(
            "section_id"
        )
        enrolled = Enrollment.objects.filter(
            user_id=OuterRef("pk"), role=Enrollment.Role.STUDENT, is_active=True, section_id__in=taught
        )
        return students.filter(Exists(enrolled)).get()
    raise User.DoesNotExist


def _path_framework_ids(*, student_id: int) -> list[int]:
    """Frameworks of the pacing guides of the student's active sections, by title. One query."""
    return list(
        PacingGuide.objects.filter(
            section__enrollments__user_id=student_id,
            section__enrollments__role=Enrollment.Role.STUDENT,
            section__enrollments__is_active=True,
            section__is_active=True,
        )
        .order_by("framework__title", "framework_id")
        .values_list("framework_id", flat=True)
        .distinct()
    )


def _competencies_in_tree_order(framework_ids: Sequence[int]) -> list[Competency]:
    """Depth-first, siblings by position, frameworks in the given order. One query."""
    if not framework_ids:
        return []
    rank = {framework_id: index for index, framework_id in enumerate(framework_ids)}
    competencies = list(
        Competency.objects.with_tree_fields()
        .select_related("framework")
        .filter(framework_id__in=framework_ids)
        .order_siblings_by("position", "pk")
    )
    return sorted(competencies, key=lambda competency: rank[competency.framework_id])  # stable


# --- can this student start these assessments? ------------------------------------------------------


@dataclass
class StartCheck:
    can_start: bool
    reason: str | None = None
    resumes: bool = False  # starting returns the student's open attempt


def attempt_start_checks(
    *,
    student: User,
    assessments: Sequence[Assessment],
    missing: dict[int, list[Competency]] | None = None,
    resources: dict[int, list[LearningResource]] | None = None,
    now: datetime | None = None,
) -> dict[int, StartCheck]:
    """Whether the student could start each assessment now, and why not, without starting anything.

    ``assessments.services.attempt_start_refusals`` gives the checks assessments owns (status,
    attempts used, cooldown, ``pass_practice`` remediation) with its own wording; then the rules of
    ``progress.gates.start_gate`` (prerequisites, ``view_resources`` remediation), composed for many
    assessments at once: an open attempt can always be resumed. ``missing`` (competency id ->
    prerequisites not mastered) and ``resources`` (competency id -> lesson resources) may be passed
    in when the caller has them. At most five queries, whatever the number of assessments: attempts,
    passed practices, missing prerequisites, resources, views. Assessments that have no single
    competency are checked by assessments' rules only: use ``attempt_start`` to be sure.
    """
    now = now or timezone.now()
    assessment_ids = [assessment.pk for assessment in assessments]
    competency_ids = sorted({a.competency_id for a in assessments if a.competency_id is not None})
    previous: dict[int, Attempt] = {}
    for attempt in Attempt.objects.filter(student=student, assessment_id__in=assessment_ids).order_by(
        "assessment_id", "number"
    ):
        previous[attempt.assessment_id] = attempt  # the last number wins
    refusals = attempt_start_refusals(student=student, assessments=assessments, previous=previous, now=now)
    if missing is None:
        missing = defaultdict(list)
        for edge in gates.missing_prerequisites_query(student_id=student.pk, competency_ids=competency_ids):
            missing[edge.competency_id].append(edge.prerequisite)
    last_views: dict[int, datetime] = {}
    if any(a.remediation == Assessment.Remediation.VIEW_RESOURCES for a in assessments):
        if resources is None:
            resources = defaultdict(list)
            for resource in LearningResource.objects.filter(competency_id__in=competency_ids).order_by(
                "position", "pk"
            ):
                resources[resource.competency_id].append(resource)
        last_views = dict(
            ResourceView.objects.filter(
                student=student, resource__competency_id__in=competency_ids
            ).values_list("resource_id", "last_viewed_at")
        )
    checks = {}
    for assessment in assessments:
        last = previous.get(assessment.pk)
        if last is not None and last.status == Attempt.Status.IN_PROGRESS:
            if last.deadline is None or now < last.deadline:
                checks[assessment.pk] = StartCheck(True, resumes=True)
                continue
            last = copy.copy(last)  # attempt_start submits it first, at its deadline
            last.submitted_at = last.deadline
        reason = refusals[assessment.pk] or _gate_reason(
            assessment, last, missing, resources or {}, last_views
        )
        checks[assessment.pk] = StartCheck(reason is None, reason)
    return checks


def _gate_reason(
    assessment: Assessment,
    previous: Attempt | None,
    missing: dict[int, list[Competency]],
    resources: dict[int, list[LearningResource]],
    last_views: dict[int, datetime],
) -> str | None:
    """``progress.gates.start_gate`` from what ``attempt_start_checks`` loaded for all assessments."""
    if assessment.competency_id is None:
        return None
    reason = gates.prerequisite_reason(missing.get(assessment.competency_id, []))
    if reason:
        return reason
    if (
        previous is not None
        and previous.is_passed is False
        and previous.submitted_at is not None
        and assessment.remediation == Assessment.Remediation.VIEW_RESOURCES
    ):
        unviewed = [
            resource
            for resource in resources.get(assessment.competency_id, [])
            if resource.kind in gates.REMEDIATION_KINDS
            and not (resource.pk in last_views and last_views[resource.pk] > previous.submitted_at)
        ]
        return gates.remediation_reason(unviewed)
    return None


# --- the student's path ---------------------------------------------------------------------------


def _decimal(value: Any) -> str | None:
    return None if value is None else str(value)


def _derived_states(
    student_id: int, competency_ids: list[int], rows: dict[int, CompetencyMastery]
) -> dict[int, str]:
    """competency id -> the derived state of each competency with no stored row (``progress.grid``:
    blank rows are not stored). Two queries when a row is missing, none otherwise."""
    derived = grid.blank_states(
        student_ids=[student_id],
        competency_ids=competency_ids,
        stored={(student_id, competency_id): row.state for competency_id, row in rows.items()},
    )
    return {competency_id: state for (_, competency_id), state in derived.items()}


def student_path(*, student: User, now: datetime | None = None) -> list[dict[str, Any]]:
    """The student's competencies in path order (the frameworks of their sections' pacing guides,
    depth-first, siblings by position) with state, score, level, lesson resources and the assessments
    they could start now. Nine queries at most, whatever the number of competencies: frameworks,
    competencies, mastery rows, the blank rows' catalog (``progress.grid``: two), resources,
    assessments, missing prerequisites, attempts (plus the practices and views that remediation rules
    need)."""
    framework_ids = _path_framework_ids(student_id=student.pk)
    competencies = _competencies_in_tree_order(framework_ids)
    if not competencies:
        return []
    competency_ids = [competency.pk for competency in competencies]
    rows = {
        row.competency_id: row
        for row in CompetencyMastery.objects.filter(student=student, competency_id__in=competency_ids)
    }
    derived = _derived_states(student.pk, competency_ids, rows)
    resources: dict[int, list[LearningResource]] = defaultdict(list)
    for resource in LearningResource.objects.filter(competency_id__in=competency_ids).order_by(
        "position", "pk"
    ):
        resources[resource.competency_id].append(resource)
    assessments = list(
        Assessment.objects.filter(
            Q(district__isnull=True) | Q(district_id=student.district_id),
            competency_id__in=competency_ids,
            status=Assessment.Status.ACTIVE,
        )
    )
    assessments.sort(key=lambda a: (a.kind != Assessment.Kind.PRACTICE, a.title, a.pk))
    missing: dict[int, list[Competency]] = defaultdict(list)
    for edge in gates.missing_prerequisites_query(student_id=student.pk, competency_ids=competency_ids):
        missing[edge.competency_id].append(edge.prerequisite)
    checks = attempt_start_checks(
        student=student, assessments=assessments, missing=missing, resources=resources, now=now
    )
    by_competency: dict[int, list[Assessment]] = defaultdict(list)
    for assessment in assessments:
        by_competency[assessment.competency_id].append(assessment)

    path = []
    for competency in competencies:
        row = rows.get(competency.pk)
        path.append(
            {
                "id": competency.pk,
                "identifier": str(competency.identifier),
                "code": competency.code,
                "statement": competency.statement,
                "parent": competency.parent_id,
                "depth": competency.tree_depth,
                "state": row.state if row is not None else derived[competency.pk],
                "score": _decimal(row.score if row is not None else None),
                "level": (row.level_name or None) if row is not None else None,
                "level_points": _decimal(row.level_points if row is not None else None),
                "resources": [
                    {
                        "id": resource.pk,
                        "kind": resource.kind,
                        "title": resource.title,
                        "url": resource.url,
                        "embed_url": resource.embed_url,
                        "duration_minutes": resource.duration_minutes,
                    }
                    for resource in resources.get(competency.pk, [])
                ],
                "assessments": [
                    {
                        "id": assessment.pk,
                        "title": assessment.title,
                        "kind": assessment.kind,
                        "can_start": checks[assessment.pk].can_start,
                        "reason": checks[assessment.pk].reason,
                    }
                    for assessment in by_competency.get(competency.pk, [])
                ],
            }
        )
    return path


# --- one lesson, for the student ------------------------------------------------------------------


def access_lesson_competency(*, student: User, competency_id: int) -> Competency:
    """The competency, if it is on the student's path: in the framework of a pacing guide of a section
    they are actively enrolled in. One query; ``Competency.DoesNotExist`` otherwise (the page answers
    404, as for a competency that does not exist)."""
    on_path = PacingGuide.objects.filter(
        framework_id=OuterRef("framework_id"),
        section__is_active=True,
        section__enrollments__user_id=student.pk,
        section__enrollments__role=Enrollment.Role.STUDENT,
        section__enrollments__is_active=True,
    )
    return Competency.objects.select_related("framework").filter(Exists(on_path)).get(pk=competency_id)


def student_lesson(*, student: User, competency: Competency, now: datetime | None = None) -> dict[str, Any]:
    """The lesson page of one competency on the student's path (see ``access_lesson_competency``): its
    state, the lesson resources with when the student last marked each watched, the practices and
    the mastery checks with whether each can start now and why not. Six queries whatever the number
    of resources and assessments (mastery row, resources, views, assessments, missing prerequisites,
    attempts), three more when no row is stored (the derived state, ``progress.grid``), plus one for passed practices after a failed ``pass_practice`` check and one for views
    after a failed ``view_resources`` check."""
    row = CompetencyMastery.objects.filter(student=student, competency=competency).first()
    resources = list(LearningResource.objects.filter(competency=competency).order_by("position", "pk"))
    last_viewed = dict(
        ResourceView.objects.filter(student=student, resource__competency=competency).values_list(
            "resource_id", "last_viewed_at"
        )
    )
    assessments = list(
        Assessment.objects.filter(
            Q(district__isnull=True) | Q(district_id=student.district_id),
            competency=competency,
            status=Assessment.Status.ACTIVE,
        ).order_by("title", "pk")
    )
    missing: dict[int, list[Competency]] = defaultdict(list)
    for edge in gates.missing_prerequisites_query(student_id=student.pk, competency_ids=[competency.pk]):
        missing[edge.competency_id].append(edge.prerequisite)
    checks = attempt_start_checks(
        student=student,
        assessments=assessments,
        missing=missing,
        resources={competency.pk: resources},
        now=now,
    )

    def assessment_row(assessment: Assessment) -> dict[str, Any]:
        return {
            "id": assessment.pk,
            "title": assessment.title,
            "kind": assessment.kind,
            "time_limit_minutes": assessment.time_limit_minutes,
            "can_start": checks[assessment.pk].can_start,
            "reason": checks[assessment.pk].reason,
            "resumes": checks[assessment.pk].resumes,
        }

    return {
        "competency": competency,
        "state": row.state
        if row is not None
        else _derived_states(student.pk, [competency.pk], {})[competency.pk],
        "score": _decimal(row.score if row is not None else None),
        "level": (row.level_name or None) if row is not None else None,
        "missing": missing.get(competency.pk, []),
        "resources": [
            {
                "id": resource.pk,
                "kind": resource.kind,
                "title": resource.title,
                "url": resource.url,
                "embed_url": resource.embed_url if resource.kind == LearningResource.Kind.VIDEO else None,
                "description": resource.description,
                "duration_minutes": resource.duration_minutes,
                "last_viewed_at": last_viewed.get(resource.pk),
            }
            for resource in resources
        ],
        "practices": [assessment_row(a) for a in assessments if a.kind == Assessment.Kind.PRACTICE],
        "checks": [assessment_row(a) for a in assessments if a.kind == Assessment.Kind.MASTERY_CHECK],
    }


# --- one student's progress, for a teacher --------------------------------------------------------


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.get_full_name() or user.username}


def student_progress(*, student: User) -> dict[str, Any]:
    """Mastery per competency with its evidence (oldest first) and the calculation in words. At most
    nine queries, whatever the number of competencies and evidence rows: frameworks, competencies,
    mastery rows, evidence with authors, and for the blank rows (not stored, ``progress.grid``) their
    derived states (two or three) and what a blank row says (two or three). Frameworks: the student's
    path and any other they have mastery in."""
    framework_ids = list(
        Framework.objects.filter(
            Q(
                pacing_guides__section__enrollments__user=student,
                pacing_guides__section__enrollments__role=Enrollment.Role.STUDENT,
                pacing_guides__section__enrollments__is_active=True,
            )
            | Q(competencies__masteries__student=student)
        )
        .order_by("title", "pk")
        .values_list("pk", flat=True)
        .distinct()
    )
    competencies = _competencies_in_tree_order(list(dict.fromkeys(framework_ids)))
    rows = {
        row.competency_id: row
        for row in CompetencyMastery.objects.filter(
            student=student, competency__framework_id__in=framework_ids
        )
    }
    derived = _derived_states(student.pk, [competency.pk for competency in competencies], rows)
    blank = grid.blank_values(competency for competency in competencies if competency.pk in derived)
    evidence: dict[int, list[Evidence]] = defaultdict(list)
    for item in (
        Evidence.objects.filter(student=student, competency__framework_id__in=framework_ids)
        .select_related("author")
        .order_by("observed_at", "pk")
    ):
        evidence[item.competency_id].append(item)
    return {
        "student": _person(student),
        "competencies": [
            _progress_row(
                competency,
                rows.get(competency.pk) or _blank_row(student, competency, derived, blank),
                evidence,
            )
            for competency in competencies
        ],
    }


def _blank_row(
    student: User,
    competency: Competency,
    derived: dict[int, str],
    blank: dict[int, tuple[str, str]],
) -> CompetencyMastery | None:
    """An unsaved row with what a blank one says (``progress.grid``), when the state is derived."""
    if competency.pk not in derived:
        return None
    method, explanation = blank[competency.pk]
    return CompetencyMastery(
        student=student,
        competency=competency,
        state=derived[competency.pk],
        method=method,
        explanation=explanation,
    )


def _progress_row(
    competency: Competency, row: CompetencyMastery | None, evidence: dict[int, list[Evidence]]
) -> dict[str, Any]:
    return {
        "id": competency.pk,
        "identifier": str(competency.identifier),
        "code": competency.code,
        "statement": competency.statement,
        "parent": competency.parent_id,
        "depth": competency.tree_depth,
        "state": row.state if row is not None else None,
        "score": _decimal(row.score) if row is not None else None,
        "level": (row.level_name or None) if row is not None else None,
        "level_points": _decimal(row.level_points) if row is not None else None,
        "p_known": row.p_known if row is not None else None,
        "method": row.method if row is not None else "",
        "explanation": row.explanation if row is not None else "",
        "evidence_count": row.evidence_count if row is not None else 0,
        "failed_checks": row.failed_checks if row is not None else 0,
        "mastered_at": row.mastered_at if row is not None else None,
        "is_overridden": row.is_overridden if row is not None else False,
        "is_unlocked_by_teacher": row.is_unlocked_by_teacher if row is not None else False,
        "computed_at": row.computed_at if row is not None else None,
        "evidence": [
            {
                "id": item.pk,
                "source": item.source,
                "source_id": item.source_id,
                "score": _decimal(item.score),
                "is_correct": item.is_correct,
                "is_summative": item.is_summative,
                "observed_at": item.observed_at,
                "author": _person(item.author),
                "note": item.note,
            }
            for item in evidence.get(competency.pk, [])
        ],
    }
