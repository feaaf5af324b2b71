"""Reads of the teacher's intervention dashboard, scoped to the sections the teacher teaches.

Every selector reads stored mastery and flags (never computes mastery on a request) and states its
query budget, which does not grow with the class size.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404

from competencies.models import Competency
from progress.models import CompetencyMastery, InterventionFlag
from roster.models import Enrollment, Section, User

NO_MASTERY = CompetencyMastery.State.LOCKED


def _taught_sections(user: User) -> QuerySet[Section]:
    teaching = Enrollment.objects.filter(user=user, role=Enrollment.Role.TEACHER, is_active=True)
    return Section.objects.filter(is_active=True, pk__in=teaching.values("section_id"))


def _students_of(sections: QuerySet[Section] | list[int]) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(
        section__in=sections, role=Enrollment.Role.STUDENT, is_active=True, user__is_active=True
    )


def section_list_for_teacher(*, user: User) -> QuerySet[Section]:
    """The teacher's active sections with their number of students. One query."""
    return (
        _taught_sections(user)
        .select_related("term", "school")
        .annotate(
            student_count=Count(
                "enrollments",
                filter=Q(
                    enrollments__role=Enrollment.Role.STUDENT,
                    enrollments__is_active=True,
                    enrollments__user__is_active=True,
                ),
                distinct=True,
            )
        )
        .order_by("title", "pk")
    )


def access_section(*, user: User, section_id: int) -> Section:
    """The section if the user teaches it, else 404 (the same as one that does not exist). One query."""
    section = _taught_sections(user).filter(pk=section_id).select_related("pacing_guide").first()
    if section is None:
        raise Http404("No such section.")
    return section


def _heatmap_competencies(section: Section) -> list[Competency]:
    guide = getattr(section, "pacing_guide", None)
    if guide is not None:
        competencies = (
            Competency.objects.with_tree_fields()
            .filter(framework_id=guide.framework_id)
            .annotate(has_children=Exists(Competency.objects.filter(parent_id=OuterRef("pk"))))
        )
        return [competency for competency in competencies if not competency.has_children]
    # No pacing guide: the competencies the section's students have mastery rows for.
    return list(
        Competency.objects.filter(
            masteries__student__in=_students_of([section.pk]).values("user_id"),
            framework__status="published",
        )
        .distinct()
        .order_by("code", "pk")
    )


def section_heatmap(*, section: Section) -> dict[str, Any]:
    """Students x competencies of one section, with each cell's state, level and score.

    Four queries whatever the class size (competencies, students, mastery rows, open flag counts);
    ``access_section`` loads the section and its pacing guide in one more. A cell with no mastery row
    is locked with no level or score.
    """
    competencies = _heatmap_competencies(section)
    students = [
        enrollment.user
        for enrollment in _students_of([section.pk])
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "user_id")
    ]
    student_ids = [student.pk for student in students]
    competency_ids = [competency.pk for competency in competencies]
    rows = {
        (row["student_id"], row["competency_id"]): row
        for row in CompetencyMastery.objects.filter(
            student_id__in=student_ids, competency_id__in=competency_ids
        ).values("student_id", "competency_id", "state", "level_points", "level_name", "score")
    }
    flag_counts = Counter(
        InterventionFlag.objects.filter(student_id__in=student_ids)
        .exclude(status=InterventionFlag.Status.RESOLVED)
        .values_list("student_id", flat=True)
    )
    return {
        "section": {"id": section.pk, "title": section.title},
        "competencies": [{"id": competency.pk, "code": competency.code} for competency in competencies],
        "students": [
            {
                "id": student.pk,
                "name": student.get_full_name() or student.username,
                "open_flags": flag_counts.get(student.pk, 0),
                "cells": [
                    _cell(rows.get((student.pk, competency_id)), competency_id)
                    for competency_id in competency_ids
                ],
            }
            for student in students
        ],
    }


def _cell(row: dict[str, Any] | None, competency_id: int) -> dict[str, Any]:
    if row is None:
        return {
            "competency_id": competency_id,
            "state": NO_MASTERY,
            "level": None,
            "level_name": "",
            "score": None,
        }
    return {
        "competency_id": competency_id,
        "state": row["state"],
        "level": row["level_points"],
        "level_name": row["level_name"],
        "score": row["score"],
    }


def flag_list_for_teacher(
    *, user: User, section_id: int | None = None, status: str | None = None
) -> QuerySet[InterventionFlag]:
    """Flags of the students in the teacher's sections (or one of them), newest first.

    One query (two with ``section_id``: ``access_section`` first, 404 for a section not theirs).
    """
    sections: Any = _taught_sections(user)
    if section_id is not None:
        sections = [access_section(user=user, section_id=section_id).pk]
    flags = InterventionFlag.objects.filter(student_id__in=_students_of(sections).values("user_id"))
    if status:
        flags = flags.filter(status=status)
    return flags.select_related("student", "competency").order_by("-opened_at", "pk")


def access_flag(*, user: User, flag_id: int) -> InterventionFlag:
    """A flag of a student in one of the teacher's sections, else 404. One query."""
    flag = flag_list_for_teacher(user=user).filter(pk=flag_id).first()
    if flag is None:
        raise Http404("No such flag.")
    return flag
