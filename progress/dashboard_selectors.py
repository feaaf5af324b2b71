"""Reads of the teacher's intervention dashboard, scoped to the sections the teacher teaches.

Every selector reads stored mastery and flags (never computes mastery on a request) and states its
query budget, which does not grow with the class size.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import (
    Aggregate,
    Count,
    Exists,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
)
from django.db.models.functions import JSONObject
from django.http import Http404

from assessments import grading_selectors
from assessments.models import Attempt, AttemptItem, Response
from competencies.models import CalculationMethod, Competency, MasteryLevel, PacingGuide, PacingTarget
from progress import grid, methods
from progress.bkt import BKTParams
from progress.charts import Gridline, TimelinePoint
from progress.models import BKTParameters, CompetencyMastery, Evidence, InterventionFlag
from roster.models import Enrollment, Section, User

NO_MASTERY = CompetencyMastery.State.LOCKED
NO_CELL = (NO_MASTERY, None, "", None)  # a heatmap cell without a mastery row, as ``section_board`` gives it


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


def access_section(
    *, user: User, section_id: int, with_to_grade: bool = False, with_levels: bool = False
) -> Section:
    """The section if the user teaches it, else 404 (the same as one that does not exist). One query;
    ``with_to_grade`` adds ``to_grade_count`` (answers waiting for a rubric grade) in the same query.

    ``with_levels`` reads, still in the same query, the levels of the mastery scale of the pacing
    guide's framework into ``scale_levels`` (highest first, as ``section_scale_and_pacing`` gives
    them; empty without a guide), as one JSON array: the section page saves the query it would
    spend on them (the sparse mastery grid costs the page two more, and its budget is eight)."""
    sections = _taught_sections(user).filter(pk=section_id).select_related("pacing_guide")
    if with_to_grade:
        sections = sections.annotate(to_grade_count=grading_selectors.pending_count_subquery("pk"))
    if with_levels:
        sections = sections.annotate(
            scale_levels_json=Subquery(
                MasteryLevel.objects.filter(scale_id=OuterRef("pacing_guide__framework__mastery_scale_id"))
                .order_by()
                .values("scale_id")
                .annotate(levels=_JSONArrayText(JSONObject(**{field: field for field in _LEVEL_FIELDS})))
                .values("levels")
            )
        )
    section = sections.first()
    if section is None:
        raise Http404("No such section.")
    if with_levels:
        section.scale_levels = _levels_from_json(section.scale_levels_json)
    return section


class _JSONArrayText(Aggregate):
    """The rows' JSON values as one JSON array, as text: ``json_agg`` on PostgreSQL, ``json_group_array``
    on SQLite (Django has no portable one)."""

    function = "JSON_AGG"
    template = "%(function)s(%(expressions)s)::text"
    output_field = TextField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return super().as_sql(
            compiler, connection, function="JSON_GROUP_ARRAY", template="%(function)s(%(expressions)s)"
        )


def _levels_from_json(text: str | None) -> list[dict[str, Any]]:
    """The levels as ``section_scale_and_pacing`` reads them (points a Decimal, highest first)."""
    levels = [
        {
            "id": level["id"],
            "name": level["name"],
            "points": Decimal(str(level["points"])),
            "color": level["color"],
            "is_mastery": bool(level["is_mastery"]),
        }
        for level in json.loads(text or "[]", parse_float=Decimal)
    ]
    return sorted(levels, key=lambda level: (-level["points"], level["id"]))


_LEVEL_FIELDS = ("id", "name", "points", "color", "is_mastery")


def _section_guide(section: Section) -> PacingGuide | None:
    try:
        return section.pacing_guide
    except PacingGuide.DoesNotExist:
        return None


def _heatmap_competencies(section: Section) -> list[Competency]:
    """The leaves the section studies, each with ``unit`` (its top-level ancestor, None for a
    top-level leaf) when the section has a pacing guide. One query."""
    guide = _section_guide(section)
    if guide is not None:
        competencies = list(
            Competency.objects.with_tree_fields()
            .filter(framework_id=guide.framework_id)
            .annotate(has_children=Exists(Competency.objects.filter(parent_id=OuterRef("pk"))))
        )
        by_id = {competency.pk: competency for competency in competencies}
        leaves = [competency for competency in competencies if not competency.has_children]
        for competency in leaves:
            root_id = competency.tree_path[0] if competency.tree_path else competency.pk
            competency.unit = by_id.get(root_id) if root_id != competency.pk else None
            competency.ancestor_ids = list(competency.tree_path[:-1])
        return leaves
    # No pacing guide: the competencies the section's students have mastery rows for.
    competencies = list(
        Competency.objects.filter(
            masteries__student__in=_students_of([section.pk]).values("user_id"),
            framework__status="published",
        )
        .distinct()
        .order_by("code", "pk")
    )
    for competency in competencies:
        competency.unit = None
        competency.ancestor_ids = []
    return competencies


def section_heatmap(*, section: Section) -> dict[str, Any]:
    """Students x competencies of one section, with each cell's state, level and score.

    Six queries whatever the class size (competencies, students, mastery rows, open flag counts, and
    ``progress.grid.blank_states``'s two for the cells without a stored row: ready or locked by the
    prerequisites, with no level or score; a seventh when a prerequisite lies outside the section's
    competencies); ``access_section`` loads the section and its pacing guide in one more.
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
    derived = grid.blank_states(
        student_ids=student_ids,
        competency_ids=competency_ids,
        stored={pair: row["state"] for pair, row in rows.items()},
    )
    flag_counts = Counter(
        InterventionFlag.objects.filter(student_id__in=student_ids)
        .exclude(status=InterventionFlag.Status.RESOLVED)
        .values_list("student_id", flat=True)
    )
    return {
        "section": {"id": section.pk, "title": section.title},
        "competencies": [
            {
                "id": competency.pk,
                "code": competency.code,
                "statement": competency.statement,
                "unit_id": competency.unit.pk if competency.unit is not None else None,
                "ancestor_ids": competency.ancestor_ids,
            }
            for competency in competencies
        ],
        "units": _units(competencies),
        "students": [
            {
                "id": student.pk,
                "name": student.get_full_name() or student.username,
                "open_flags": flag_counts.get(student.pk, 0),
                "cells": [
                    _cell(
                        rows.get((student.pk, competency_id)),
                        competency_id,
                        derived.get((student.pk, competency_id), NO_MASTERY),
                    )
                    for competency_id in competency_ids
                ],
            }
            for student in students
        ],
    }


# --- the section page in one pass: heatmap, scale, pacing, flag queue and groups ------------------------


@dataclass(frozen=True, slots=True)
class QueueFlag:
    """A flag of the queue as ``progress/_flag_row.html`` shows it, read as a plain row: a class of 40
    can hold hundreds of flags that are not resolved, and three model instances per flag (the flag,
    its student, who acted) cost more than the page's whole SQL."""

    pk: int
    student_id: int
    competency_id: int | None
    kind: str
    status: str
    reason: str
    suggestion: str
    opened_at: datetime
    snoozed_until: date | None
    resolution_note: str
    student_name: str
    resolved_by_name: str | None  # None: nobody acted
    competency_code: str | None  # None: a flag about no one competency
    framework_id: int | None

    @classmethod
    def of(cls, flag: InterventionFlag) -> QueueFlag:
        """The same row from a flag read as a model (with its student, competency and who acted)."""
        return cls(
            pk=flag.pk,
            student_id=flag.student_id,
            competency_id=flag.competency_id,
            kind=flag.kind,
            status=flag.status,
            reason=flag.reason,
            suggestion=flag.suggestion,
            opened_at=flag.opened_at,
            snoozed_until=flag.snoozed_until,
            resolution_note=flag.resolution_note,
            student_name=_full_name(flag.student.first_name, flag.student.last_name, flag.student.username),
            resolved_by_name=(
                _full_name(flag.resolved_by.first_name, flag.resolved_by.last_name, flag.resolved_by.username)
                if flag.resolved_by is not None
                else None
            ),
            competency_code=flag.competency.code if flag.competency is not None else None,
            framework_id=flag.competency.framework_id if flag.competency is not None else None,
        )


def _full_name(first: str, last: str, username: str) -> str:
    """``User.get_full_name() or username``, from the columns."""
    return f"{first} {last}".strip() or username


# The queue's columns, in ``QueueFlag``'s order (the names are put together from the users' columns).
_QUEUE_COLUMNS = (
    "pk",
    "student_id",
    "competency_id",
    "kind",
    "status",
    "reason",
    "suggestion",
    "opened_at",
    "snoozed_until",
    "resolution_note",
    "student__first_name",
    "student__last_name",
    "student__username",
    "resolved_by_id",
    "resolved_by__first_name",
    "resolved_by__last_name",
    "resolved_by__username",
    "competency__code",
    "competency__framework_id",
)


def queue_flags(flags: QuerySet[InterventionFlag]) -> list[QueueFlag]:
    """The flags as ``QueueFlag`` rows, newest first. One query."""
    return [
        QueueFlag(
            pk,
            student_id,
            competency_id,
            kind,
            status,
            reason,
            suggestion,
            opened_at,
            snoozed_until,
            note,
            _full_name(first, last, username),
            _full_name(by_first, by_last, by_username) if by_id is not None else None,
            code,
            framework_id,
        )
        for (
            pk,
            student_id,
            competency_id,
            kind,
            status,
            reason,
            suggestion,
            opened_at,
            snoozed_until,
            note,
            first,
            last,
            username,
            by_id,
            by_first,
            by_last,
            by_username,
            code,
            framework_id,
        ) in flags.order_by("-opened_at", "pk").values_list(*_QUEUE_COLUMNS)
    ]


_MASTERY_FIELDS = ("state", "level_points", "level_name", "score", "first_activity_at")


def section_board(
    *, section: Section, with_queue: bool = True, levels: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Everything the section page shows besides the answers to grade, read once.

    ``heatmap`` is what ``section_heatmap`` answers except that each cell is a tuple (state, level,
    level name, score) (``cells_are_keys``): a cell without a stored mastery row has the state
    ``progress.grid.blank_states`` derives, with no level or score; ``scale`` is what
    ``section_scale_and_pacing`` answers; with ``with_queue`` also ``flags`` (the queue: every flag
    that is not resolved, newest first, as ``QueueFlag`` rows) and ``groups``
    (``progress.groups.section_groups``), both from the same rows as the heatmap.

    Queries, whatever the class size: with a pacing guide the competencies with their target dates,
    the scale's levels (none when ``levels`` is given: ``access_section(with_levels=True)`` read
    them with the section), the students with their mastery rows (one query: a student with no
    stored row is still a row), the flags, and ``blank_states``'s two: six, five with ``levels``.
    Without a guide: the students with their rows, the competencies of the frameworks those rows
    belong to (the ready groups range over them), the flags and ``blank_states``'s two: five.
    ``with_queue=False`` reads no flags. ``blank_states`` reads one more when a prerequisite lies in
    another framework. ``access_section`` loads the section and its pacing guide first."""
    from progress.groups import groups_from, ready_from  # groups imports nothing from here

    guide = _section_guide(section)
    students = _students_of([section.pk]).order_by("user__last_name", "user__first_name", "user_id")
    codes: dict[int, str] = {}
    if guide is not None:
        # Plain rows in tree order (id, code, statement, has children, target date, tree path): 150
        # model instances cost more than the query.
        everything = list(
            Competency.objects.with_tree_fields()
            .tree_filter(framework_id=guide.framework_id)  # the tree of this framework only, not the table's
            .filter(framework_id=guide.framework_id)
            .annotate(
                has_children=Exists(Competency.objects.filter(parent_id=OuterRef("pk"))),
                target_date=Subquery(
                    PacingTarget.objects.filter(guide_id=guide.pk, competency_id=OuterRef("pk"))
                    .order_by("pk")
                    .values("target_date")[:1]
                ),
            )
            .values_list("pk", "code", "statement", "has_children", "target_date", "tree_path")
        )
        by_id = {row[0]: row for row in everything}
        columns = []
        units: dict[int, dict[str, Any]] = {}
        for pk, code, statement, has_children, _, tree_path in everything:
            if has_children:
                continue
            root_id = tree_path[0] if tree_path else pk
            unit = by_id.get(root_id) if root_id != pk else None
            if unit is not None and unit[0] not in units:
                units[unit[0]] = {"id": unit[0], "code": unit[1], "statement": unit[2]}
            columns.append(
                {
                    "id": pk,
                    "code": code,
                    "statement": statement,
                    "unit_id": unit[0] if unit is not None else None,
                    "ancestor_ids": list(tree_path[:-1]),
                }
            )
        codes = {row[0]: row[1] for row in everything}
        targets = {row[0]: row[4] for row in everything if row[4]}
        if levels is None:
            levels = list(
                MasteryLevel.objects.filter(scale__frameworks__pk=guide.framework_id)
                .order_by("-points", "pk")
                .values(*_LEVEL_FIELDS)
            )
        scale = {
            "levels": levels,
            "has_colors": any(level["color"].lower() != DEFAULT_LEVEL_COLOR for level in levels),
            "targets": targets,
        }
        # Every stored row of the framework (the ready groups read inner nodes too, and blank_states
        # needs them all); a student with none is one row of NULLs.
        rows = list(
            students.annotate(
                row=FilteredRelation(
                    "user__masteries", condition=Q(user__masteries__competency_id__in=list(codes))
                )
            ).values_list(
                "user_id",
                "user__first_name",
                "user__last_name",
                "user__username",
                "row__competency_id",
                *(f"row__{field}" for field in _MASTERY_FIELDS),
            )
        )
    else:
        scale = {"levels": [], "has_colors": False, "targets": {}}
        # The competencies come with the rows: those the students have rows for, published for the heatmap.
        rows = list(
            students.values_list(
                "user_id",
                "user__first_name",
                "user__last_name",
                "user__username",
                "user__masteries__competency_id",
                *(f"user__masteries__{field}" for field in _MASTERY_FIELDS),
                "user__masteries__competency__code",
                "user__masteries__competency__statement",
                "user__masteries__competency__framework__status",
                "user__masteries__competency__framework_id",
            )
        )
        shown: dict[int, dict[str, Any]] = {}
        frameworks: set[int] = set()
        for row in rows:
            if row[4] is None:
                continue
            frameworks.add(row[13])
            if row[12] == "published" and row[4] not in shown:
                shown[row[4]] = {
                    "id": row[4],
                    "code": row[10],
                    "statement": row[11],
                    "unit_id": None,
                    "ancestor_ids": [],
                }
        columns = sorted(shown.values(), key=lambda column: (column["code"], column["id"]))
        units = {}
        # Every competency of those frameworks: a blank row of any of them may be ready (the groups).
        codes = dict(
            Competency.objects.filter(framework_id__in=sorted(frameworks))
            .order_by()
            .values_list("pk", "code")
        )
    names: dict[int, str] = {}
    stored: dict[tuple[int, int], str] = {}
    # Each cell as (state, level, level name, score), the same tuple for the same values: the page
    # renders each distinct one once per column.
    cell_of: dict[tuple[int, int], tuple[Any, ...]] = {}
    distinct: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    mastery_rows: list[tuple[int, int, str, Any]] = []
    for row in rows:
        student_id, competency_id = row[0], row[4]
        if student_id not in names:
            names[student_id] = _full_name(row[1], row[2], row[3])
        if competency_id is None:
            continue
        pair = (student_id, competency_id)
        stored[pair] = row[5]
        key = row[5:9]
        cell_of[pair] = distinct.setdefault(key, key)
        mastery_rows.append((student_id, competency_id, row[5], row[9]))
    student_ids = list(names)
    derived = grid.blank_states(student_ids=student_ids, competency_ids=list(codes), stored=stored)
    for pair, state in derived.items():
        cell_of[pair] = distinct.setdefault((state, None, "", None), (state, None, "", None))
    board: dict[str, Any] = {"scale": scale}
    flag_counts: Counter[int] = Counter()
    if with_queue:
        flags = queue_flags(
            InterventionFlag.objects.filter(
                student_id__in=_students_of([section.pk]).values("user_id")
            ).exclude(status=InterventionFlag.Status.RESOLVED)
        )
        flag_counts.update(flag.student_id for flag in flags)
        stuck = [
            (flag.student_id, flag.competency_id, flag.competency_code)
            for flag in flags
            if flag.kind == InterventionFlag.Kind.STUCK
            and flag.competency_id is not None
            and flag.student_id in names
            and (guide is None or flag.framework_id == guide.framework_id)
        ]
        board["flags"] = flags
        board["groups"] = groups_from(names, stuck, ready_from(mastery_rows, derived, codes))
    competency_ids = [column["id"] for column in columns]
    board["heatmap"] = {
        "section": {"id": section.pk, "title": section.title},
        "competencies": columns,
        "units": list(units.values()),
        "students": [
            {
                "id": student_id,
                "name": name,
                "open_flags": flag_counts.get(student_id, 0),
                "cells": [
                    cell_of.get((student_id, competency_id), NO_CELL) for competency_id in competency_ids
                ],
            }
            for student_id, name in names.items()
        ],
        "cells_are_keys": True,
    }
    return board


def _units(competencies: list[Competency]) -> list[dict[str, Any]]:
    """The top-level strands the leaves belong to, in tree order (the heatmap's unit filter)."""
    units: dict[int, dict[str, Any]] = {}
    for competency in competencies:
        unit = competency.unit
        if unit is not None and unit.pk not in units:
            units[unit.pk] = {"id": unit.pk, "code": unit.code, "statement": unit.statement}
    return list(units.values())


def _cell(row: dict[str, Any] | None, competency_id: int, blank_state: str = NO_MASTERY) -> dict[str, Any]:
    """A heatmap cell of the API: the stored row's values, else the derived state of a blank row."""
    if row is None:
        return {
            "competency_id": competency_id,
            "state": blank_state,
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


# --- what the section page adds to the heatmap: the scale's colours and the pacing guide ---------------

DEFAULT_LEVEL_COLOR = MasteryLevel._meta.get_field("color").default


def section_scale_and_pacing(*, section: Section) -> dict[str, Any]:
    """The mastery scale of the section's framework (levels, highest first, with their colours) and
    the pacing guide's target dates by competency. Two queries with a pacing guide, none without
    (then the heatmap keeps its fixed colour classes and shows no expected position).

    ``has_colors`` is false when every level still has the model's default colour: nobody chose
    colours for that scale, so the fixed classes (chosen for contrast) are used instead.
    """
    guide = _section_guide(section)
    if guide is None:
        return {"levels": [], "has_colors": False, "targets": {}}
    levels = list(
        MasteryLevel.objects.filter(scale__frameworks__pk=guide.framework_id)
        .order_by("-points", "pk")
        .values(*_LEVEL_FIELDS)
    )
    targets = dict(PacingTarget.objects.filter(guide_id=guide.pk).values_list("competency_id", "target_date"))
    return {
        "levels": levels,
        "has_colors": any(level["color"].lower() != DEFAULT_LEVEL_COLOR for level in levels),
        "targets": targets,
    }


# --- one student of a section, for the teacher's student page ---------------------------------------


def access_section_student(*, section: Section, student_id: int) -> User:
    """A student actively enrolled in the section, else 404 (the same as one that does not exist).
    One query; ``access_section`` has already checked that the caller teaches the section."""
    enrollment = (
        _students_of([section.pk]).filter(user_id=student_id).select_related("user").order_by("pk").first()
    )
    if enrollment is None:
        raise Http404("No such student.")
    return enrollment.user


def _method_of(competency: Competency) -> tuple[str, Decimal | None]:
    if competency.calculation_method:
        return competency.calculation_method, competency.calculation_parameter
    return competency.framework.calculation_method, competency.framework.calculation_parameter


def _timeline(
    competency: Competency,
    evidence: list[Evidence],
    levels: list[tuple[Decimal, str, bool]],
    bkt_params: BKTParams | None,
) -> dict[str, Any]:
    """The evidence as chart points with the mastery score after each one, computed the way the
    stored mastery is (``progress.methods.calculate`` over the evidence so far, override rows left
    out of the calculation: they are decisions, not measurements)."""
    method, parameter = _method_of(competency)
    mastery_points = next((points for points, _, is_mastery in levels if is_mastery), None)
    is_bkt = method == CalculationMethod.BKT
    if method == CalculationMethod.N_TIMES and mastery_points is None:
        mastery_points = max((points for points, _, _ in levels), default=Decimal(0))
    counted: list[Evidence] = []
    points: list[TimelinePoint] = []
    after: Decimal | None = None
    for item in evidence:
        is_override = item.source == Evidence.Source.OVERRIDE
        if not is_override:
            counted.append(item)
            if is_bkt:
                outcome = methods.calculate(
                    method,
                    [(row.observed_at, 1 if row.is_correct else 0) for row in counted],
                    bkt_params=bkt_params,
                )
            else:
                outcome = methods.calculate(
                    method, [(row.observed_at, row.score) for row in counted], parameter, mastery_points
                )
            after = outcome.score
        if is_override:
            label = "Teacher override"
        elif item.source == Evidence.Source.OBSERVATION:
            label = "Teacher observation"
        else:
            label = "Mastery check" if item.is_summative else "Practice"
        points.append(
            TimelinePoint(
                when=item.observed_at,
                score=Decimal(1 if item.is_correct else 0) if is_bkt else item.score,
                is_met=item.is_correct,
                label=label,
                mastery_after=after,
                is_override=is_override,
            )
        )
    if is_bkt:
        return {
            "points": points,
            "threshold": methods.BKT_MASTERY,
            "threshold_label": "Mastered at P(known)",
            "y_max": Decimal(1),
            "gridlines": [
                Gridline(Decimal(0), "0"),
                Gridline(Decimal("0.5"), "0.5"),
                Gridline(Decimal(1), "1"),
            ],
            "score_label": "Correct (1) or not (0)",
        }
    top = max([points for points, _, _ in levels] + [point.score for point in points] + [Decimal(1)])
    return {
        "points": points,
        "threshold": mastery_points,
        "threshold_label": "Mastery level",
        "y_max": top,
        "gridlines": [Gridline(points, f"{name} ({methods.fmt(points)})") for points, name, _ in levels],
        "score_label": "Score",
    }


def student_detail(*, section: Section, student: User) -> dict[str, Any]:
    """Everything the teacher's student page shows: per competency of the section's framework the
    stored mastery with its explanation and the timeline of evidence; the attempts with the items
    drawn for each and their scores; the flag history. Fourteen queries whatever the number of
    competencies, evidence, attempts or flags (competencies, mastery rows, evidence, scale levels,
    BKT parameters, attempts, their items, their responses, flags; and for the competencies without
    a stored row, ``progress.grid``'s five: ``blank_states``'s two, ``blank_values``'s three).

    Without a pacing guide: the competencies the student has mastery rows or evidence for.
    """
    guide = _section_guide(section)
    competencies_query = Competency.objects.select_related("framework")
    if guide is not None:
        competencies = list(
            competencies_query.with_tree_fields()
            .filter(framework_id=guide.framework_id)
            .order_siblings_by("position", "pk")
        )
    else:
        competencies = list(
            competencies_query.filter(Q(masteries__student=student) | Q(evidence__student=student))
            .distinct()
            .order_by("framework__title", "code", "pk")
        )
        for competency in competencies:
            competency.tree_depth = 0
    competency_ids = [competency.pk for competency in competencies]
    has_children = {competency.parent_id for competency in competencies if competency.parent_id}
    rows = {
        row.competency_id: row
        for row in CompetencyMastery.objects.filter(student=student, competency_id__in=competency_ids)
    }
    # A competency without a stored row (sparse storage) shows what a blank row says: the derived
    # state, the method and the calculation in words with no evidence (``progress.grid``).
    derived = grid.blank_states(
        student_ids=[student.pk],
        competency_ids=competency_ids,
        stored={(student.pk, competency_id): row.state for competency_id, row in rows.items()},
    )
    blank = grid.blank_values(
        competency for competency in competencies if (student.pk, competency.pk) in derived
    )
    for competency in competencies:
        state = derived.get((student.pk, competency.pk))
        if state is not None:
            method, explanation = blank[competency.pk]
            rows[competency.pk] = CompetencyMastery(
                student=student, competency=competency, state=state, method=method, explanation=explanation
            )
    evidence: dict[int, list[Evidence]] = defaultdict(list)
    for item in (
        Evidence.objects.filter(student=student, competency_id__in=competency_ids)
        .select_related("author")
        .order_by("observed_at", "pk")
    ):
        evidence[item.competency_id].append(item)
    scale_ids = {competency.framework.mastery_scale_id for competency in competencies}
    levels_by_scale: dict[int, list[tuple[Decimal, str, bool]]] = defaultdict(list)
    for scale_id, points, name, is_mastery in MasteryLevel.objects.filter(
        scale_id__in=[scale_id for scale_id in scale_ids if scale_id is not None]
    ).values_list("scale_id", "points", "name", "is_mastery"):
        levels_by_scale[scale_id].append((points, name, is_mastery))
    bkt = {
        row.competency_id: BKTParams(row.prior, row.learn, row.guess, row.slip, row.forget)
        for row in BKTParameters.objects.filter(competency_id__in=competency_ids)
    }
    items = []
    for competency in competencies:
        levels = sorted(levels_by_scale.get(competency.framework.mastery_scale_id, []), reverse=True)
        row = rows.get(competency.pk)
        is_leaf = competency.pk not in has_children
        entry = {
            "competency": competency,
            "depth": getattr(competency, "tree_depth", 0),
            "is_leaf": is_leaf,
            "mastery": row,
            "state": row.state if row is not None else NO_MASTERY,
            "evidence": evidence.get(competency.pk, []),
            "timeline": None,
        }
        if is_leaf and entry["evidence"]:
            entry["timeline"] = _timeline(competency, entry["evidence"], levels, bkt.get(competency.pk))
        items.append(entry)

    attempts = list(
        Attempt.objects.filter(student=student)
        .exclude(status=Attempt.Status.IN_PROGRESS)
        .select_related("assessment", "assessment__competency")
        .order_by("-started_at", "-pk")
    )
    # Filtered by the student (not by the ids above) so the queries run whether or not there are any.
    shown = Q(attempt__student=student) & ~Q(attempt__status=Attempt.Status.IN_PROGRESS)
    responses = {
        (response["attempt_id"], response["item_id"]): response
        for response in Response.objects.filter(shown).values(
            "attempt_id", "item_id", "score", "needs_grading"
        )
    }
    forms: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for attempt_item in (
        AttemptItem.objects.filter(shown).select_related("item").order_by("attempt_id", "position")
    ):
        response = responses.get((attempt_item.attempt_id, attempt_item.item_id))
        forms[attempt_item.attempt_id].append(
            {
                "item": attempt_item.item,
                "position": attempt_item.position,
                "score": response["score"] if response is not None else None,
                "needs_grading": bool(response and response["needs_grading"]),
                "is_answered": response is not None,
            }
        )
    for attempt in attempts:
        attempt.form_items = forms.get(attempt.pk, [])

    flags = list(
        InterventionFlag.objects.filter(student=student)
        .select_related("competency", "resolved_by")
        .order_by("-opened_at", "-pk")
    )
    return {"competencies": items, "attempts": attempts, "flags": flags}


def _override_competencies(section: Section, student: User) -> QuerySet[Competency]:
    guide = _section_guide(section)
    if guide is not None:
        return Competency.objects.filter(framework_id=guide.framework_id)
    return Competency.objects.filter(Q(masteries__student=student) | Q(evidence__student=student)).distinct()


def override_competency_choices(*, section: Section, student: User) -> list[tuple[int, str]]:
    """The competencies a teacher may override for the student on this section's page: those of
    the section's pacing guide (else those the student has mastery or evidence in). One query."""
    return [
        (competency.pk, f"{competency.code} {competency.statement}".strip()[:120])
        for competency in _override_competencies(section, student).order_by("code", "pk")
    ]


def access_override_competency(*, section: Section, student: User, competency_id: int) -> Competency:
    """One of ``override_competency_choices``, with its framework, else 404. One query."""
    competency = (
        _override_competencies(section, student).filter(pk=competency_id).select_related("framework").first()
    )
    if competency is None:
        raise Http404("No such competency.")
    return competency
