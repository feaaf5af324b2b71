"""Reads behind the district staff overview: the catalog, imports, rescoring, suspect items and flags of
ONE district.

Every selector takes the district and returns only its rows; the view passes the caller's own district,
so staff never see another district's data. Each selector runs a fixed number of queries whatever the
district's size (stated per function); the overview as a whole runs six.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from assessments.models import ItemStatistics, RescoreJob
from competencies.models import Framework
from progress.models import InterventionFlag
from roster.models import District, Enrollment, ImportRun, School

# How many rows of the history-like lists the page shows (newest first).
IMPORT_LIMIT = 20
FINISHED_JOB_LIMIT = 10
SUSPECT_LIMIT = 50

ACTIVE_JOB_STATUSES = (RescoreJob.Status.PENDING, RescoreJob.Status.RUNNING)
FLAG_KINDS = InterventionFlag.Kind


def framework_list_for_district(*, district: District) -> list[Framework]:
    """The district's frameworks with ``competency_count``; one query."""
    return list(
        Framework.objects.filter(district=district)
        .annotate(competency_count=Count("competencies"))
        .order_by("title", "pk")
    )


def import_run_list_for_district(*, district: District, limit: int = IMPORT_LIMIT) -> list[ImportRun]:
    """The newest imports (rosters and frameworks) run for the district, each with ``counts_summary``
    (totals by outcome over every kind of object, e.g. "16 created, 2 updated"); one query."""
    runs = list(
        ImportRun.objects.filter(district=district)
        .select_related("started_by")
        .order_by("-created_at", "-pk")[:limit]
    )
    for run in runs:
        run.counts_summary = import_counts_summary(run.counts)
    return runs


def import_counts_summary(counts: Any) -> str:
    """Totals by outcome, in first-seen order, zeros left out: ``{"competency": {"created": 3}}`` ->
    "3 created"; "nothing changed" when every total is zero."""
    totals: dict[str, int] = {}
    for entity_counts in (counts or {}).values():
        if not isinstance(entity_counts, dict):
            continue
        for outcome, number in entity_counts.items():
            try:
                totals[outcome] = totals.get(outcome, 0) + int(number or 0)
            except (TypeError, ValueError):
                continue
    shown = [f"{number} {outcome}" for outcome, number in totals.items() if number]
    return ", ".join(shown) if shown else "nothing changed"


def _rescore_jobs_of_district(district: District) -> QuerySet[RescoreJob]:
    # A job belongs to the district of its items (or of its assessment); shared items have no district,
    # so a job on shared items alone appears under the assessment's district, or nowhere.
    item_of_district = RescoreJob.items.through.objects.filter(
        rescorejob_id=OuterRef("pk"), item__district=district
    )
    return RescoreJob.objects.filter(Q(Exists(item_of_district)) | Q(assessment__district=district))


def rescore_job_list_for_district(
    *, district: District, finished_limit: int = FINISHED_JOB_LIMIT
) -> list[RescoreJob]:
    """Every pending or running job of the district, then the newest finished ones; one query.

    Each job carries ``item_count``, ``percent`` (0..100, of responses rescored) and ``is_active``.
    """
    jobs = list(
        _rescore_jobs_of_district(district)
        .select_related("requested_by", "assessment")
        .annotate(item_count=Count("items", distinct=True))
        .filter(
            Q(status__in=ACTIVE_JOB_STATUSES)
            | Q(
                pk__in=_rescore_jobs_of_district(district)
                .exclude(status__in=ACTIVE_JOB_STATUSES)
                .order_by("-created_at", "-pk")
                .values("pk")[:finished_limit]
            )
        )
        .order_by("-created_at", "-pk")
    )
    for job in jobs:
        job.is_active = job.status in ACTIVE_JOB_STATUSES
        job.percent = round(100 * job.done / job.total) if job.total else (100 if not job.is_active else 0)
    jobs.sort(key=lambda job: not job.is_active)  # running first, each group newest first
    return jobs


def suspect_item_list_for_district(*, district: District, limit: int = SUSPECT_LIMIT) -> list[ItemStatistics]:
    """Statistics of the district's items flagged suspect, worst discrimination first; one query."""
    return list(
        ItemStatistics.objects.filter(is_suspect=True, item__district=district)
        .select_related("item")
        .order_by("discrimination", "facility", "item_id")[:limit]
    )


@dataclass
class SchoolFlags:
    school: School
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_kind(self) -> list[tuple[str, str, int]]:
        """(kind, label, count) for every kind, in the model's order, zeros included."""
        return [(kind, label, self.counts.get(kind, 0)) for kind, label in FLAG_KINDS.choices]


def open_flag_counts_by_school(*, district: District) -> list[SchoolFlags]:
    """Open flags per active school of the district, counted by kind; two queries.

    A flag counts at every school where its student is actively enrolled, so a student enrolled at two
    schools shows at both (each school's staff need to know).
    """
    schools = list(School.objects.filter(district=district, is_active=True).order_by("name", "pk"))
    rows = (
        InterventionFlag.objects.filter(
            status=InterventionFlag.Status.OPEN,
            student__district=district,
            student__enrollments__role=Enrollment.Role.STUDENT,
            student__enrollments__is_active=True,
            student__enrollments__section__school__district=district,
        )
        .values("student__enrollments__section__school", "kind")
        .annotate(count=Count("pk", distinct=True))
        .order_by()
    )
    by_school: dict[int, dict[str, int]] = {}
    for row in rows:
        by_school.setdefault(row["student__enrollments__section__school"], {})[row["kind"]] = row["count"]
    return [SchoolFlags(school=school, counts=by_school.get(school.pk, {})) for school in schools]


def staff_overview(*, district: District) -> dict[str, Any]:
    """Everything the overview page shows; six queries whatever the district's size."""
    jobs = rescore_job_list_for_district(district=district)
    return {
        "frameworks": framework_list_for_district(district=district),
        "import_runs": import_run_list_for_district(district=district),
        "jobs": jobs,
        "has_active_jobs": any(job.is_active for job in jobs),
        "suspect_items": suspect_item_list_for_district(district=district),
        "school_flags": open_flag_counts_by_school(district=district),
        "flag_kinds": FLAG_KINDS.choices,
    }
