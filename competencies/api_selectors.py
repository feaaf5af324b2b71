"""Reads behind the catalog API. Each states its query budget."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Q, QuerySet

from competencies.models import Competency, Framework, Prerequisite
from roster.models import User


def framework_list_for_staff(*, user: User) -> QuerySet[Framework]:
    """Frameworks of the user's district and the shared ones (no district). One query."""
    return (
        Framework.objects.filter(Q(district__isnull=True) | Q(district_id=user.district_id))
        .annotate(competency_count=Count("competencies"))
        .order_by("title", "pk")
    )


def competency_list_for_framework(*, framework: Framework) -> QuerySet[Competency]:
    """The framework's competencies depth-first in sibling order. One query (a recursive CTE)."""
    return Competency.objects.with_tree_fields().tree_filter(framework=framework).filter(framework=framework)


def prerequisite_ids_by_competency(*, framework: Framework) -> dict[int, list[int]]:
    """competency id -> ids of its prerequisites, for one framework. One query."""
    edges: dict[int, list[int]] = defaultdict(list)
    rows = (
        Prerequisite.objects.filter(competency__framework=framework)
        .order_by("competency_id", "prerequisite_id")
        .values_list("competency_id", "prerequisite_id")
    )
    for competency_id, prerequisite_id in rows:
        edges[competency_id].append(prerequisite_id)
    return dict(edges)
