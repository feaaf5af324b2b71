"""Reads of the teacher's grading queue: extended-text responses of submitted attempts waiting for a
rubric grade, scoped to the students of the sections the teacher teaches.

``assessments`` sits below ``progress``, so the teacher-of-section check is done here with the roster
models (the same rule as ``progress.dashboard_selectors.access_section``). Each selector states its
query budget, which does not grow with the class size.
"""

from __future__ import annotations

from django.db.models import Count, Exists, F, Func, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from assessments.models import Attempt, Item, Response, RubricLevel
from roster.models import Enrollment, Section, User


def _taught_section_ids(user: User) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(
        user=user, role=Enrollment.Role.TEACHER, is_active=True, section__is_active=True
    ).values("section_id")


def _awaiting() -> QuerySet[Response]:
    """Responses waiting for a rubric grade: extended text, flagged, in a submitted attempt."""
    return Response.objects.filter(
        needs_grading=True,
        item__type=Item.Type.EXTENDED_TEXT,
        attempt__status=Attempt.Status.SUBMITTED,
        attempt__student__is_active=True,
    )


def _enrolled_in(section_ids) -> Exists:
    return Exists(
        Enrollment.objects.filter(
            user_id=OuterRef("attempt__student_id"),
            role=Enrollment.Role.STUDENT,
            is_active=True,
            section_id__in=section_ids,
        )
    )


def access_grading_section(*, user: User, section_id: int) -> Section:
    """The section if the user teaches it (and it is active), else 404. One query."""
    section = Section.objects.filter(pk=section_id, pk__in=_taught_section_ids(user)).first()
    if section is None:
        raise Http404("No such section.")
    return section


def response_list_awaiting_grade(*, section: Section) -> list[Response]:
    """The section's students' responses waiting for a rubric grade, oldest submission first, each
    with its attempt, assessment, student, item and rubric levels (highest first). Two queries."""
    return list(
        _awaiting()
        .filter(_enrolled_in([section.pk]))
        .select_related("attempt__assessment", "attempt__student", "item")
        .prefetch_related(
            Prefetch("item__rubric_levels", queryset=RubricLevel.objects.order_by("-points", "pk"))
        )
        .order_by("attempt__submitted_at", "attempt_id", "pk")
    )


def pending_count_for_section(*, section: Section) -> int:
    """How many responses of the section's students wait for a rubric grade. One query."""
    return _awaiting().filter(_enrolled_in([section.pk])).count()


def pending_count_subquery(section_field: str = "pk") -> Coalesce:
    """``pending_count_for_section`` as an expression to annotate a section query with
    (``section_field``: the outer query's section id): no query of its own."""
    awaiting = (
        _awaiting()
        .filter(
            Exists(
                Enrollment.objects.filter(
                    user_id=OuterRef("attempt__student_id"),
                    role=Enrollment.Role.STUDENT,
                    is_active=True,
                    section_id=OuterRef(OuterRef(section_field)),
                )
            )
        )
        .order_by()
        .annotate(count=Func(F("pk"), function="COUNT"))  # not an aggregate to Django: no GROUP BY
        .values("count")
    )
    return Coalesce(Subquery(awaiting, output_field=IntegerField()), 0)


def pending_counts_for_teacher(*, user: User) -> dict[int, int]:
    """Per section the teacher teaches, how many responses wait for a rubric grade (sections with
    none are left out). One query."""
    rows = (
        Enrollment.objects.filter(
            section_id__in=_taught_section_ids(user),
            role=Enrollment.Role.STUDENT,
            is_active=True,
            user__is_active=True,
            user__attempts__status=Attempt.Status.SUBMITTED,
            user__attempts__responses__needs_grading=True,
            user__attempts__responses__item__type=Item.Type.EXTENDED_TEXT,
        )
        .values("section_id")
        .annotate(count=Count("user__attempts__responses", distinct=True))
    )
    return {row["section_id"]: row["count"] for row in rows}


def access_response_for_grading(*, user: User, response_id: int) -> Response:
    """An extended-text response of a submitted or completed attempt by a student of one of the
    teacher's sections, with its attempt, student, item and rubric levels, else 404 (the same as one
    that does not exist). Two queries. A graded response can be graded again (a correction)."""
    response = (
        Response.objects.filter(
            pk=response_id,
            item__type=Item.Type.EXTENDED_TEXT,
            attempt__status__in=[Attempt.Status.SUBMITTED, Attempt.Status.COMPLETED],
        )
        .filter(_enrolled_in(_taught_section_ids(user)))
        .select_related("attempt__assessment", "attempt__student", "item")
        .prefetch_related(
            Prefetch("item__rubric_levels", queryset=RubricLevel.objects.order_by("-points", "pk"))
        )
        .first()
    )
    if response is None:
        raise Http404("No such response.")
    return response


def grading_section_for_response(*, user: User, response: Response, section_id: int | None) -> int | None:
    """Where to go back after grading: ``section_id`` when the teacher teaches it and the student is
    in it, else the first such section. One query."""
    sections = Enrollment.objects.filter(
        user_id=response.attempt.student_id,
        role=Enrollment.Role.STUDENT,
        is_active=True,
        section_id__in=_taught_section_ids(user),
    ).values_list("section_id", flat=True)
    ids = sorted(sections)
    if section_id in ids:
        return section_id
    return ids[0] if ids else None
