"""What the mastery calculation reads of the catalog, cached per process for the live recompute.

The live path (``services.mastery_recompute``, after every submit) needs, for the student's frameworks,
the competencies, their prerequisites, the scales' levels and the fitted BKT parameters: four queries and
hundreds of model instances, the same for every student. They change rarely (an import, an edit in
admin, the nightly BKT fit), so each worker keeps them in memory, keyed by the catalog version that
PostgreSQL triggers move on every write to those tables (migration ``0004_catalog_version``; a sequence,
so a rolled-back write never hands its number on). The version is read in the same statement that
locks the student, so a cached catalog costs no query; a stale one can never be used, since a write
moves the version before any transaction can see the written rows. Without the table (SQLite) the
catalog is read every time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from competencies.models import Competency, MasteryLevel, Prerequisite
from progress.bkt import BKTParams
from progress.models import BKTParameters

#: Catalogs kept per process (a district has a handful of frameworks; combinations are few).
MAX_ENTRIES = 64


@dataclass(frozen=True)
class Catalog:
    """The frameworks' competencies (position order, ``framework`` loaded), prerequisite ids by
    competency id, levels (points, name, is mastery) by scale id, fitted BKT parameters by competency."""

    competencies: tuple[Competency, ...]
    prerequisites: dict[int, list[int]]
    levels_by_scale: dict[int, list[tuple[Decimal, str, bool]]]
    bkt: dict[int, BKTParams]


_cache: dict[tuple[int, tuple[int, ...]], Catalog] = {}


def lock_student(student_id: int) -> int | None:
    """Lock the student's row for this transaction (serialises their recomputes, so two workers never
    insert the same row) and return the catalog version (None without one). One query."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and _has_version_table(cursor):
            cursor.execute(
                "SELECT u.id, (SELECT version FROM progress_catalog_version WHERE id = 1) "
                "FROM roster_user u WHERE u.id = %s FOR UPDATE OF u",
                [student_id],
            )
            row = cursor.fetchone()
            return None if row is None else row[1]
    from roster.models import User

    User.objects.select_for_update().filter(pk=student_id).values_list("pk", flat=True).first()
    return None


_version_table: dict[str, bool] = {}


def _has_version_table(cursor) -> bool:
    """Whether the migration ran on this database (checked once per database and process)."""
    settings = connection.settings_dict
    name = f"{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    if name not in _version_table:
        cursor.execute("SELECT to_regclass('progress_catalog_version') IS NOT NULL")
        _version_table[name] = bool(cursor.fetchone()[0])
    return _version_table[name]


def catalog_for(framework_ids: set[int], version: int | None) -> Catalog:
    """The catalog of ``framework_ids``: from memory when ``version`` is the one it was read at, else
    four queries (then kept)."""
    key = (version, tuple(sorted(framework_ids)))
    if version is not None and key in _cache:
        return _cache[key]
    competencies = tuple(
        Competency.objects.filter(framework_id__in=framework_ids)
        .select_related("framework")
        .order_by("framework_id", "position", "pk")
    )
    ids = [competency.pk for competency in competencies]
    prerequisites: dict[int, list[int]] = defaultdict(list)
    for prerequisite_id, competency_id in Prerequisite.objects.filter(competency_id__in=ids).values_list(
        "prerequisite_id", "competency_id"
    ):
        prerequisites[competency_id].append(prerequisite_id)
    scale_ids = {competency.framework.mastery_scale_id for competency in competencies} - {None}
    catalog = Catalog(competencies, dict(prerequisites), levels_by_scale(scale_ids), bkt_parameters(ids))
    if version is not None:
        if len(_cache) >= MAX_ENTRIES:
            _cache.clear()
        _cache[key] = catalog
    return catalog


def levels_by_scale(scale_ids: set[int]) -> dict[int, list[tuple[Decimal, str, bool]]]:
    """scale id -> its levels as (points, name, is mastery). One query."""
    levels: dict[int, list[tuple[Decimal, str, bool]]] = defaultdict(list)
    for scale_id, points, name, is_mastery in MasteryLevel.objects.filter(scale_id__in=scale_ids).values_list(
        "scale_id", "points", "name", "is_mastery"
    ):
        levels[scale_id].append((points, name, is_mastery))
    return dict(levels)


def bkt_parameters(competency_ids: list[int]) -> dict[int, BKTParams]:
    """competency id -> its fitted BKT parameters, for those that have them. One query."""
    return {
        row.competency_id: BKTParams(
            prior=row.prior, learn=row.learn, guess=row.guess, slip=row.slip, forget=row.forget
        )
        for row in BKTParameters.objects.filter(competency_id__in=competency_ids)
    }
