"""Writes of intervention flags: raise and clear them from the stored mastery, the nightly sweep, the
teacher's actions (acknowledge, snooze, resolve) and the daily teacher digest.

The conditions are ``progress.rules`` (pure). Here the facts for a set of students are loaded in a
constant number of queries, the rules say which flags should be open, and the difference is written
set-based: new flags in one bulk insert, changed and cleared ones in one bulk update, both with history.

Idempotent: a refresh recomputes from the source of truth (evidence, stored mastery, pacing guides) and
writes only what differs, so running it twice changes nothing. One flag that is not resolved per
student, kind and competency: the database says so (two partial unique constraints) and the refresh
locks the students' rows while it reads and writes their flags, so two refreshes never race.

A flag whose condition clears resolves itself (``is_auto_resolved``, with a note saying why). A flag a
teacher resolved by hand is not raised again while its facts (``evidence["signature"]``) are unchanged:
another failed check, or falling further behind, raises it again. A snoozed flag whose date has passed
reopens on the next refresh if its condition still holds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from competencies.models import Competency, LearningResource, MasteryLevel, PacingTarget, Prerequisite
from progress import rules, services
from progress.models import CompetencyMastery, Evidence, FlagThresholds, InterventionFlag, ResourceView
from roster.audit import audit_record
from roster.models import AuditEvent, Enrollment, User

Status = InterventionFlag.Status
SWEEP_CHUNK_SIZE = 200
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


@dataclass
class FlagRefreshResult:
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)

    def merge(self, other: FlagRefreshResult) -> None:
        self.opened += other.opened
        self.resolved += other.resolved
        self.reopened += other.reopened
        self.updated += other.updated


@dataclass(frozen=True)
class SweepResult:
    students: int
    masteries_changed: int
    flags_opened: int
    flags_resolved: int


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
    changes_by_student: Mapping[int, Iterable[services.MasteryChange]],
) -> dict[int, _StudentData]:
    """The rules' facts for the students: thirteen queries whatever their number, the lock included."""
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
    scale_ids = {row["competency__framework__mastery_scale_id"] for row in masteries} - {None}
    mastery_points = dict(
        MasteryLevel.objects.filter(scale_id__in=scale_ids, is_mastery=True).values_list("scale_id", "points")
    )
    own_competency_ids = {row["competency_id"] for row in masteries if row["student_id"] in student_ids}
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

    own_ids = set(student_ids)
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


def flags_refresh_for_students(
    *,
    student_ids: Iterable[int],
    changes_by_student: Mapping[int, Iterable[services.MasteryChange]] | None = None,
    now: datetime | None = None,
) -> FlagRefreshResult:
    """Raise, update and clear the students' flags from their stored mastery (see the module docstring).

    ``changes_by_student``: the ``MasteryChange`` list of each student's last recompute; a lowered level
    raises a regressed flag. Thirteen reads whatever the number of students, then at most one bulk
    insert and one bulk update (each with its history rows).
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    student_ids = sorted(set(student_ids))
    result = FlagRefreshResult()
    if not student_ids:
        return result
    with transaction.atomic():
        data = _load(student_ids, today=today, changes_by_student=changes_by_student or {})
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


def flags_refresh_for_student(
    *, student_id: int, changes: Iterable[services.MasteryChange] | None = None, now: datetime | None = None
) -> FlagRefreshResult:
    """Raise and clear one student's flags after a recompute (``changes``: its ``MasteryChange`` list)."""
    return flags_refresh_for_students(
        student_ids=[student_id], changes_by_student={student_id: list(changes or ())}, now=now
    )


def flags_sweep(
    *, section_id: int | None = None, now: datetime | None = None, chunk_size: int = SWEEP_CHUNK_SIZE
) -> SweepResult:
    """The nightly job: recompute every active student's mastery (reconciling missed events), then
    their flags, in chunks of students (one flag refresh per chunk)."""
    students = User.objects.filter(role=User.Role.STUDENT, is_active=True)
    if section_id is not None:
        students = students.filter(
            enrollments__section_id=section_id,
            enrollments__role=Enrollment.Role.STUDENT,
            enrollments__is_active=True,
        )
    student_ids = list(students.order_by("pk").values_list("pk", flat=True).distinct())
    if section_id is None and connection.vendor == "postgresql":
        return _flags_sweep_district(student_ids, now=now, chunk_size=chunk_size)
    masteries_changed = 0
    total = FlagRefreshResult()
    for start in range(0, len(student_ids), chunk_size):
        chunk = student_ids[start : start + chunk_size]
        changes_by_student: dict[int, list[services.MasteryChange]] = {}
        for student_id in chunk:
            # Attempt evidence first (catches lost events and rescores), then the stored mastery.
            services.evidence_reconcile_for_student(student_id=student_id)
            changes_by_student[student_id] = services.mastery_recompute(student_id=student_id, now=now)
            masteries_changed += len(changes_by_student[student_id])
        total.merge(
            flags_refresh_for_students(student_ids=chunk, changes_by_student=changes_by_student, now=now)
        )
    return SweepResult(
        students=len(student_ids),
        masteries_changed=masteries_changed,
        flags_opened=len(total.opened),
        flags_resolved=len(total.resolved),
    )


def _flags_sweep_district(student_ids: list[int], *, now: datetime | None, chunk_size: int) -> SweepResult:
    """The whole district's sweep on PostgreSQL, set-based: every student's attempt evidence reconciled
    at once, every student's mastery recomputed at once (``progress.district``), then the flags in
    chunks of students with the changes the recompute reported."""
    from progress import district  # district imports services; loaded on use, as services loads this

    district.evidence_reconcile_all()
    recomputed = district.district_recompute(now=now, collect_changes=True)
    total = FlagRefreshResult()
    for start in range(0, len(student_ids), chunk_size):
        chunk = student_ids[start : start + chunk_size]
        changes = {student_id: recomputed.changes.get(student_id, []) for student_id in chunk}
        total.merge(flags_refresh_for_students(student_ids=chunk, changes_by_student=changes, now=now))
    return SweepResult(
        students=len(student_ids),
        masteries_changed=recomputed.inserted + sum(len(rows) for rows in recomputed.changes.values()),
        flags_opened=len(total.opened),
        flags_resolved=len(total.resolved),
    )


# --- a teacher's actions ----------------------------------------------------------------------------


def _act(flag: InterventionFlag, *, user: User, note: str, fields: dict[str, Any]) -> InterventionFlag:
    with transaction.atomic():
        flag = InterventionFlag.objects.select_for_update().get(pk=flag.pk)
        if flag.status == Status.RESOLVED:
            raise ValidationError("This flag is already resolved.")
        before = {"status": flag.status, "snoozed_until": flag.snoozed_until}
        for name, value in fields.items():
            setattr(flag, name, value)
        flag.resolved_by = user
        flag.resolution_note = note
        flag._history_user = user  # the history row names who acted
        flag.save()
        audit_record(
            actor=user,
            action=_FLAG_AUDIT_ACTIONS[flag.status],
            target=flag,
            before=before,
            after={"status": flag.status, "snoozed_until": flag.snoozed_until},
            note=note,
            district=user.district_id,
        )
    return flag


_FLAG_AUDIT_ACTIONS = {
    Status.ACKNOWLEDGED: AuditEvent.Action.FLAG_ACKNOWLEDGE,
    Status.SNOOZED: AuditEvent.Action.FLAG_SNOOZE,
    Status.RESOLVED: AuditEvent.Action.FLAG_RESOLVE,
}


def flag_acknowledge(*, flag: InterventionFlag, user: User, note: str = "") -> InterventionFlag:
    """The teacher has seen the flag and is on it; it stays until its condition clears or is resolved."""
    return _act(flag, user=user, note=note, fields={"status": Status.ACKNOWLEDGED, "snoozed_until": None})


def flag_snooze(
    *, flag: InterventionFlag, user: User, until: date, note: str = "", now: datetime | None = None
) -> InterventionFlag:
    """Hide the flag until a date; the first refresh after that date reopens it if it still holds."""
    today = timezone.localdate(now or timezone.now())
    if until <= today:
        raise ValidationError("Snooze until a date after today.")
    return _act(flag, user=user, note=note, fields={"status": Status.SNOOZED, "snoozed_until": until})


def flag_resolve(
    *, flag: InterventionFlag, user: User, note: str = "", now: datetime | None = None
) -> InterventionFlag:
    """The teacher closes the flag; it is raised again only when something new happens."""
    return _act(
        flag,
        user=user,
        note=note,
        fields={
            "status": Status.RESOLVED,
            "snoozed_until": None,
            "resolved_at": now or timezone.now(),
            "is_auto_resolved": False,
        },
    )


# --- the daily digest -------------------------------------------------------------------------------


def teacher_digest_send(*, now: datetime | None = None, since: datetime | None = None) -> int:
    """Email each teacher the flags opened on their students since the last digest; returns emails sent.

    The digest runs once a day (beat, 06:00), so "since the last digest" is the 24 hours before ``now``
    unless ``since`` says otherwise. Teachers with no new flag, or no email address, get nothing.
    Four queries and one SMTP connection whatever the number of teachers.
    """
    now = now or timezone.now()
    since = since or now - timedelta(days=1)
    flags = list(
        InterventionFlag.objects.filter(status=Status.OPEN, opened_at__gt=since, opened_at__lte=now)
        .select_related("student", "competency")
        .order_by("opened_at", "pk")
    )
    if not flags:
        return 0
    sections_of: dict[int, set[int]] = defaultdict(set)
    for user_id, section_id in Enrollment.objects.filter(
        user_id__in={flag.student_id for flag in flags},
        role=Enrollment.Role.STUDENT,
        is_active=True,
        section__is_active=True,
    ).values_list("user_id", "section_id"):
        sections_of[user_id].add(section_id)
    teachers: dict[int, User] = {}
    teaching: dict[int, set[int]] = defaultdict(set)
    for enrollment in Enrollment.objects.filter(
        section_id__in={section for sections in sections_of.values() for section in sections},
        role=Enrollment.Role.TEACHER,
        is_active=True,
        user__is_active=True,
    ).select_related("user"):
        teachers[enrollment.user_id] = enrollment.user
        teaching[enrollment.user_id].add(enrollment.section_id)
    messages = []
    for teacher_id, teacher in sorted(teachers.items()):
        mine = [flag for flag in flags if sections_of[flag.student_id] & teaching[teacher_id]]
        if not mine or not teacher.email:
            continue
        messages.append(
            mail.EmailMessage(
                subject=f"{len(mine)} new intervention flag{'s' if len(mine) != 1 else ''} "
                f"({rules.day_label(timezone.localdate(now))})",
                body=_digest_body(teacher, mine),
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[teacher.email],
            )
        )
    if messages:
        with mail.get_connection() as connection:
            connection.send_messages(messages)
    return len(messages)


def _digest_body(teacher: User, flags: Sequence[InterventionFlag]) -> str:
    lines = [f"Good morning {teacher.get_full_name() or teacher.username},", "", "New since yesterday:", ""]
    for flag in flags:
        about = f" on {flag.competency.code}" if flag.competency_id else ""
        lines += [
            f"- {flag.student.get_full_name() or flag.student.username}: {flag.get_kind_display()}{about}",
            f"  Why: {flag.reason}",
            f"  Next: {flag.suggestion}",
            "",
        ]
    return "\n".join(lines)
