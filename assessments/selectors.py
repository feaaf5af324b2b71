"""Reads of the assessments app, scoped to who asks. Each states its query budget."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from assessments.models import (
    Assessment,
    Attempt,
    AttemptCompetencyScore,
    AttemptItem,
    Item,
    ItemAlignment,
    ItemChoice,
    Response,
)
from competencies.models import Competency
from roster.models import User


def assessment_get_for_student(*, student: User, assessment_id: int) -> Assessment:
    """An active assessment of the student's district or a shared one. One query; DoesNotExist else."""
    return Assessment.objects.get(
        Q(district__isnull=True) | Q(district_id=student.district_id),
        pk=assessment_id,
        status=Assessment.Status.ACTIVE,
    )


def access_attempt(*, user: User, attempt_id: int) -> Attempt:
    """The user's own attempt. One query; ``Attempt.DoesNotExist`` for anyone else's."""
    return Attempt.objects.select_related("assessment").get(pk=attempt_id, student=user)


def attempt_form(*, attempt: Attempt) -> list[AttemptItem]:
    """The attempt's form in order, each item with its choices in order. Two queries."""
    return list(
        AttemptItem.objects.filter(attempt=attempt)
        .select_related("item")
        .prefetch_related(Prefetch("item__choices", queryset=ItemChoice.objects.order_by("position", "pk")))
        .order_by("position")
    )


def attempt_responses(*, attempt: Attempt) -> dict[int, Response]:
    """item id -> the attempt's response. One query."""
    return {response.item_id: response for response in Response.objects.filter(attempt=attempt)}


def attempt_competency_scores(*, attempt: Attempt) -> list[AttemptCompetencyScore]:
    """Per-competency results of a completed attempt, with the competency. One query."""
    return list(
        AttemptCompetencyScore.objects.filter(attempt=attempt)
        .select_related("competency")
        .order_by("competency__position", "competency_id")
    )


def competency_list_for_staff(*, user: User) -> QuerySet[Competency]:
    """Competencies of frameworks of the user's district or shared ones."""
    return Competency.objects.filter(
        Q(framework__district__isnull=True) | Q(framework__district_id=user.district_id)
    )


def item_list_for_staff(*, user: User) -> QuerySet[Item]:
    """Items a district staff member may see: their district's, and shared items (no district)
    aligned to frameworks of their district or shared frameworks. Four queries when evaluated
    (items, choices, rubric levels, alignments), whatever the number of items.
    """
    aligned_to_visible = ItemAlignment.objects.filter(item=OuterRef("pk")).filter(
        Q(competency__framework__district__isnull=True)
        | Q(competency__framework__district_id=user.district_id)
    )
    return (
        Item.objects.filter(
            Q(district_id=user.district_id) | (Q(district__isnull=True) & Exists(aligned_to_visible))
        )
        .prefetch_related(
            Prefetch("choices", queryset=ItemChoice.objects.order_by("position", "pk")),
            "rubric_levels",
            Prefetch("alignments", queryset=ItemAlignment.objects.order_by("competency_id")),
        )
        .order_by("pk")
    )
