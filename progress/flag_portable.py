"""Intervention flags on any database: the straightforward path, one ORM query per kind of fact.

``progress.flag_services`` uses it where the set-based path (``progress.flag_sweep_sql``, raw
PostgreSQL) cannot run, e.g. SQLite in development. It loads every stored mastery row of the students,
every classmate's working row and every pacing target per student, then writes through model
instances with ``bulk_create_with_history`` / ``bulk_update_with_history``: fine for a classroom, slow
for a district. Blank rows (``progress.grid``) are derived for every competency of the frameworks a
student is concerned by, so the rules see what they saw when blank rows were stored. The tests run both
paths on the same data and expect the same flags.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from competencies.models import Competency, LearningResource, MasteryLevel, PacingTarget, Prerequisite
from progress import grid, rules
from progress.models import CompetencyMastery, Evidence, FlagThresholds, InterventionFlag, ResourceView
from roster.models import Enrollment, User

if TYPE_CHECKING:
    from progress.flag_services import FlagRefreshResult
    from progress.services import MasteryChange

Status = InterventionFlag.Status
_UPDATED_FIELDS = [
    "status",
    "reason",
    "evidence",
    "suggestion",
    "suggestion_data",
    "snoozed_until",
    "resolved_at",
    "resolved_by",
    "resolution_note",
    "is_auto_resolved",
    "updated_at",
]


def thresholds_for(row: FlagThresholds | None) -> rules.Thresholds:
    if row is None:
        return rules.Thresholds()
    return rules.Thresholds(
        stuck_failed_checks=row.stuck_failed_checks,
        stuck_days=row.stuck_days,
        inactive_school_days=row.inactive_school_days,
        behind_pace_margin=row.behind_pace_margin,
        weak_prerequisite_score_margin=row.weak_prerequisite_score_margin,
        prerequisite_stale_days=row.prerequisite_stale_days,
    )


def _display_name(first_name: str, last_name: str, username: str) -> str:
    return f"{first_name} {last_name}".strip() or username


def _local_date(moment: datetime | None) -> date | None:
    return timezone.localdate(moment) if moment is not None else None


def _json(value: dict) -> dict:
    """The value as it reads back from a JSONField, so that "unchanged" compares equal."""
    return json.loads(json.dumps(value))


@dataclass
class _StudentData:
    facts: rules.StudentFacts
    thresholds: rules.Thresholds
    flags: list[InterventionFlag]


def _load(
    student_ids: Sequence[int],
    *,
    today: date,
    changes_by_student: Mapping[int, Iterable[MasteryChange]],
) -> dict[int, _StudentData]:
    """The rules' facts for the students, blank rows derived: twenty queries at most whatever their
    number, the lock included."""
    students = list(
        User.objects.select_for_update().filter(id__in=student_ids).values_list("id", "district_id")
    )
    district_ids = {district_id for _, district_id in students if district_id}
    thresholds = {
        row.district_id: thresholds_for(row)
        for row in FlagThresholds.objects.filter(district_id__in=district_ids)
    }

    enrollments = list(
        Enrollment.objects.filter(
            user_id__in=student_ids, role=Enrollment.Role.STUDENT, is_active=True, section__is_active=True
        ).values("user_id", "section_id", "section__title", "begin_date", "section__term__start_date")
    )
    section_ids = {row["section_id"] for row in enrollments}
    sections_of: dict[int, list[int]] = defaultdict(list)
    active_since: dict[int, date] = {}
    section_titles: dict[int, str] = {}
    for row in enrollments:
        sections_of[row["user_id"]].append(row["section_id"])
        section_titles[row["section_id"]] = row["section__title"]
        start = row["begin_date"] or row["section__term__start_date"]
        if start and (row["user_id"] not in active_since or start < active_since[row["user_id"]]):
            active_since[row["user_id"]] = start

    targets_of: dict[int, list[dict]] = defaultdict(list)
    for row in PacingTarget.objects.filter(guide__section_id__in=section_ids).values(
        "guide__section_id", "competency_id", "competency__code", "target_date"
    ):
        targets_of[row["guide__section_id"]].append(row)

    classmates: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for row in Enrollment.objects.filter(
        section_id__in=section_ids, role=Enrollment.Role.STUDENT, is_active=True
    ).values("section_id", "user_id", "user__first_name", "user__last_name", "user__username"):
        name = _display_name(row["user__first_name"], row["user__last_name"], row["user__username"])
        classmates[row["section_id"]].append((row["user_id"], name))
    peer_ids = {user_id for rows in classmates.values() for user_id, _ in rows} - set(student_ids)

    working = [rules.READY, rules.IN_PROGRESS]
    masteries = list(
        CompetencyMastery.objects.filter(
            Q(student_id__in=student_ids) | Q(student_id__in=peer_ids, state__in=working)
        )
        .annotate(has_children=Exists(Competency.objects.filter(parent_id=OuterRef("competency_id"))))
        .values(
            "student_id",
            "competency_id",
            "competency__code",
            "competency__framework_id",
            "competency__framework__mastery_scale_id",
            "state",
            "score",
            "level_points",
            "mastered_at",
            "first_activity_at",
            "is_overridden",
            "has_children",
        )
    )
    # Blank rows (``progress.grid``) are not stored: derived for every competency of the frameworks a
    # student is concerned by (``services.mastery_recompute``: stored rows, evidence, pacing guides).
    own_ids = set(student_ids)
    frameworks: dict[int, set[int]] = defaultdict(set)
    for row in masteries:
        if row["student_id"] in own_ids:
            frameworks[row["student_id"]].add(row["competency__framework_id"])
    for student_id, framework_id in (
        Evidence.objects.filter(student_id__in=student_ids)
        .values_list("student_id", "competency__framework_id")
        .distinct()
        .order_by()
    ):
        frameworks[student_id].add(framework_id)
    for student_id, framework_id in Enrollment.objects.filter(
        user_id__in=student_ids, role=Enrollment.Role.STUDENT, is_active=True
    ).values_list("user_id", "section__pacing_guide__framework_id"):
        if framework_id is not None:
            frameworks[student_id].add(framework_id)
    catalogue = {
        row["id"]: row
        for row in Competency.objects.filter(
            framework_id__in={framework for values in frameworks.values() for framework in values}
        )
        .annotate(has_children=Exists(Competency.objects.filter(parent_id=OuterRef("pk"))))
        .values("id", "code", "framework_id", "framework__mastery_scale_id", "has_children")
    }
    blanks = {
        pair: state
        for pair, state in grid.blank_states(
            student_ids=student_ids,
            competency_ids=sorted(catalogue),
            stored={
                (row["student_id"], row["competency_id"]): row["state"]
                for row in masteries
                if row["student_id"] in own_ids
            },
        ).items()
        if catalogue[pair[1]]["framework_id"] in frameworks[pair[0]]
    }

    scale_ids = {row["competency__framework__mastery_scale_id"] for row in masteries} - {None}
    scale_ids |= {row["framework__mastery_scale_id"] for row in catalogue.values()} - {None}
    mastery_points = dict(
        MasteryLevel.objects.filter(scale_id__in=scale_ids, is_mastery=True).values_list("scale_id", "points")
    )
    own_competency_ids = {row["competency_id"] for row in masteries if row["student_id"] in student_ids}
    own_competency_ids |= {competency_id for _, competency_id in blanks}
    prerequisites_of: dict[int, list[int]] = defaultdict(list)
    for competency_id, prerequisite_id in Prerequisite.objects.filter(
        competency_id__in=own_competency_ids
    ).values_list("competency_id", "prerequisite_id"):
        prerequisites_of[competency_id].append(prerequisite_id)
    target_ids = {row["competency_id"] for rows in targets_of.values() for row in rows}
    lessons: dict[int, rules.Lesson] = {}
    for competency_id, title, url in LearningResource.objects.filter(
        competency_id__in=own_competency_ids | target_ids
    ).values_list("competency_id", "title", "url"):  # ordered by competency, position, pk
        lessons.setdefault(competency_id, rules.Lesson(title, url))

    failed: dict[tuple[int, int], list[date]] = defaultdict(list)
    for student_id, competency_id, observed_at in Evidence.objects.filter(
        student_id__in=[*student_ids, *peer_ids],
        source=Evidence.Source.ATTEMPT,
        is_summative=True,
        is_correct=False,
    ).values_list("student_id", "competency_id", "observed_at"):
        failed[(student_id, competency_id)].append(timezone.localdate(observed_at))
    last_activity: dict[int, datetime] = dict(
        Evidence.objects.filter(student_id__in=student_ids)
        .exclude(source=Evidence.Source.OVERRIDE)
        .values("student_id")
        .annotate(last=Max("observed_at"))
        .values_list("student_id", "last")
    )
    for student_id, viewed_at in (
        ResourceView.objects.filter(student_id__in=student_ids)
        .values("student_id")
        .annotate(last=Max("last_viewed_at"))
        .values_list("student_id", "last")
    ):
        if student_id not in last_activity or viewed_at > last_activity[student_id]:
            last_activity[student_id] = viewed_at

    flags_of: dict[int, list[InterventionFlag]] = defaultdict(list)
    for flag in InterventionFlag.objects.filter(student_id__in=student_ids).filter(
        ~Q(status=Status.RESOLVED) | Q(is_auto_resolved=False)
    ):
        flags_of[flag.student_id].append(flag)

    own: dict[int, dict[int, rules.CompetencyFacts]] = defaultdict(dict)
    peer_rows: dict[int, list[rules.PeerFacts]] = defaultdict(list)
    names = {user_id: name for rows in classmates.values() for user_id, name in rows}
    for row in masteries:
        student_id, competency_id = row["student_id"], row["competency_id"]
        if row["state"] in working:
            peer_rows[student_id].append(
                rules.PeerFacts(
                    student_id=student_id,
                    name=names.get(student_id, str(student_id)),
                    competency_id=competency_id,
                    state=row["state"],
                    failed_checks=len(failed.get((student_id, competency_id), ())),
                    first_activity_on=_local_date(row["first_activity_at"]),
                )
            )
        if student_id not in own_ids:
            continue
        own[student_id][competency_id] = rules.CompetencyFacts(
            id=competency_id,
            code=row["competency__code"] or str(competency_id),
            state=row["state"],
            score=row["score"],
            level_points=row["level_points"],
            mastery_points=mastery_points.get(row["competency__framework__mastery_scale_id"]),
            mastered_on=_local_date(row["mastered_at"]),
            first_activity_on=_local_date(row["first_activity_at"]),
            is_overridden=row["is_overridden"],
            is_leaf=not row["has_children"],
            failed_check_dates=tuple(sorted(failed.get((student_id, competency_id), ()))),
            prerequisite_ids=tuple(prerequisites_of.get(competency_id, ())),
            lesson=lessons.get(competency_id),
        )
    for (student_id, competency_id), state in sorted(blanks.items()):
        item = catalogue[competency_id]
        own[student_id][competency_id] = rules.CompetencyFacts(
            id=competency_id,
            code=item["code"] or str(competency_id),
            state=state,
            mastery_points=mastery_points.get(item["framework__mastery_scale_id"]),
            is_leaf=not item["has_children"],
            prerequisite_ids=tuple(prerequisites_of.get(competency_id, ())),
            lesson=lessons.get(competency_id),
        )
    for student_id, competencies in own.items():
        own[student_id] = dict(sorted(competencies.items()))

    data: dict[int, _StudentData] = {}
    for student_id, district_id in students:
        competencies = own.get(student_id, {})
        pacing = tuple(
            rules.PacingFacts(
                section_id=section_id,
                section_title=section_titles[section_id],
                targets=tuple(
                    rules.PacingTargetFacts(
                        competency_id=row["competency_id"],
                        code=row["competency__code"] or str(row["competency_id"]),
                        target_date=row["target_date"],
                        is_mastered=row["competency_id"] in competencies
                        and competencies[row["competency_id"]].is_mastered,
                        lesson=lessons.get(row["competency_id"]),
                    )
                    for row in targets_of[section_id]
                ),
            )
            for section_id in sorted(sections_of.get(student_id, ()))
            if targets_of.get(section_id)
        )
        peer_ids_of = {
            user_id for section_id in sections_of.get(student_id, ()) for user_id, _ in classmates[section_id]
        } - {student_id}
        flags = flags_of.get(student_id, [])
        open_regressions = {}
        for flag in flags:
            if flag.kind == rules.REGRESSED and flag.status != Status.RESOLVED and flag.competency_id:
                try:
                    open_regressions[flag.competency_id] = Decimal(str(flag.evidence.get("from_level")))
                except (InvalidOperation, ValueError):
                    continue
        drops = tuple(
            rules.LevelDrop(change.competency_id, change.old_level_points, change.new_level_points)
            for change in changes_by_student.get(student_id) or ()
        )
        data[student_id] = _StudentData(
            facts=rules.StudentFacts(
                student_id=student_id,
                today=today,
                competencies=competencies,
                last_activity_on=_local_date(last_activity.get(student_id)),
                active_since=active_since.get(student_id),
                pacing=pacing,
                peers=tuple(peer for peer_id in sorted(peer_ids_of) for peer in peer_rows.get(peer_id, ())),
                level_drops=drops,
                open_regressions=open_regressions,
            ),
            thresholds=thresholds.get(district_id, rules.Thresholds()),
            flags=flags,
        )
    return data


def refresh(
    *,
    student_ids: Sequence[int],
    changes_by_student: Mapping[int, Iterable[MasteryChange]],
    now: datetime,
    result: FlagRefreshResult,
) -> FlagRefreshResult:
    """Raise, update and clear the students' flags (``flag_services.flags_refresh_for_students``)."""
    today = timezone.localdate(now)
    with transaction.atomic():
        data = _load(student_ids, today=today, changes_by_student=changes_by_student)
        to_create: list[InterventionFlag] = []
        to_update: list[InterventionFlag] = []
        for student_id, student in data.items():
            created, updated = _reconcile(student_id, student, now=now, today=today, result=result)
            to_create += created
            to_update += updated
        if to_create:
            created_rows = bulk_create_with_history(to_create, InterventionFlag, batch_size=500)
            result.opened += [flag.pk for flag in created_rows]
        if to_update:
            bulk_update_with_history(to_update, InterventionFlag, _UPDATED_FIELDS, batch_size=500)
    return result


def _reconcile(
    student_id: int, student: _StudentData, *, now: datetime, today: date, result: FlagRefreshResult
) -> tuple[list[InterventionFlag], list[InterventionFlag]]:
    due = {spec.key: spec for spec in rules.flags_due(student.facts, student.thresholds)}
    current = {
        (flag.kind, flag.competency_id): flag for flag in student.flags if flag.status != Status.RESOLVED
    }
    dismissed = {
        (flag.kind, flag.competency_id, flag.evidence.get("signature"))
        for flag in student.flags
        if flag.status == Status.RESOLVED
    }
    created, updated = [], []
    for key, spec in due.items():
        evidence = _json({**spec.evidence, "signature": spec.signature})
        suggestion_data = _json(spec.suggestion_data)
        flag = current.get(key)
        if flag is None:
            if (spec.kind, spec.competency_id, spec.signature) in dismissed:
                continue  # a teacher resolved it by hand and nothing new has happened since
            created.append(
                InterventionFlag(
                    student_id=student_id,
                    competency_id=spec.competency_id,
                    kind=spec.kind,
                    status=Status.OPEN,
                    reason=spec.reason,
                    evidence=evidence,
                    suggestion=spec.suggestion,
                    suggestion_data=suggestion_data,
                    opened_at=now,
                )
            )
            continue
        changed = False
        if flag.status == Status.SNOOZED and flag.snoozed_until is not None and flag.snoozed_until < today:
            flag.status, flag.snoozed_until = Status.OPEN, None
            result.reopened.append(flag.pk)
            changed = True
        new_values = {
            "reason": spec.reason,
            "evidence": evidence,
            "suggestion": spec.suggestion,
            "suggestion_data": suggestion_data,
        }
        for name, value in new_values.items():
            if getattr(flag, name) != value:
                setattr(flag, name, value)
                changed = True
        if changed:
            flag.updated_at = timezone.now()
            updated.append(flag)
            result.updated.append(flag.pk)
    for key, flag in current.items():
        if key in due:
            continue
        flag.status = Status.RESOLVED
        flag.snoozed_until = None
        flag.resolved_at = now
        flag.resolved_by = None
        flag.is_auto_resolved = True
        flag.resolution_note = rules.clearance_note(flag.kind, flag.competency_id, student.facts)
        flag.updated_at = timezone.now()
        updated.append(flag)
        result.resolved.append(flag.pk)
    return created, updated
