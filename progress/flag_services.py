"""Writes of intervention flags: raise and clear them from the stored mastery, the nightly sweep, the
teacher's actions (acknowledge, snooze, resolve) and the daily teacher digest.

The conditions are ``progress.rules`` (pure). The facts for a set of students are loaded in a constant
number of queries, the rules say which flags should be open, and the difference is written set-based
(``progress.flag_sweep_sql``: only what the rules read is loaded; new flags in one insert, changed ones
in one update, cleared ones in another, each statement writing its history rows). The same code serves
one student after a submit and the whole district at night.

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

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from progress import flag_portable, flag_sweep_sql, rules, services
from progress.models import InterventionFlag
from roster.audit import audit_record
from roster.models import AuditEvent, Enrollment, User

Status = InterventionFlag.Status
#: students per flag refresh of the sweep (one transaction each: their rows stay locked meanwhile)
SWEEP_CHUNK_SIZE = 2000


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


def flags_refresh_for_students(
    *,
    student_ids: Iterable[int],
    changes_by_student: Mapping[int, Iterable[services.MasteryChange]] | None = None,
    now: datetime | None = None,
    memo: flag_sweep_sql.Memo | None = None,
) -> FlagRefreshResult:
    """Raise, update and clear the students' flags from their stored mastery (see the module docstring).

    ``changes_by_student``: the ``MasteryChange`` list of each student's last recompute; a lowered level
    raises a regressed flag. On PostgreSQL, ``progress.flag_sweep_sql``: seven reads whatever the number
    of students (an eighth, the classmates, when one is stuck), then at most one insert, one update and
    one resolve statement per batch, each writing its history rows; ``memo`` carries what students share
    across calls (the sweep's chunks). As its own transaction, one setting more (no synchronous commit);
    inside a caller's, no savepoint (an error aborts the caller's transaction, as it would the
    refresh's). Elsewhere (SQLite in development), ``progress.flag_portable``: the same flags, one ORM
    query per kind of fact.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    student_ids = sorted(set(student_ids))
    result = FlagRefreshResult()
    if not student_ids:
        return result
    if connection.vendor != "postgresql":
        return flag_portable.refresh(
            student_ids=student_ids, changes_by_student=changes_by_student or {}, now=now, result=result
        )
    memo = memo or flag_sweep_sql.Memo()
    own_transaction = not connection.in_atomic_block
    with transaction.atomic(savepoint=False):
        if own_transaction:
            # Flags are derived: a crash may lose the last refreshes' writes, which the next refresh
            # makes again (it is idempotent), so the commit (megabytes for a sweep's chunk) need not
            # wait for its WAL to reach the disk. Inside a caller's transaction the caller decides
            # (``services.student_progress_refresh`` does the same); teachers' actions keep the default.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        states = flag_sweep_sql.load(
            student_ids, today=today, changes_by_student=changes_by_student or {}, memo=memo
        )
        written = flag_sweep_sql.write(states, now=now, memo=memo)
    result.opened, result.resolved = written.opened, written.resolved
    result.reopened, result.updated = written.reopened, written.updated
    return result


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
    memo = flag_sweep_sql.Memo()  # the guides and pacing flags students share, across the chunks
    for start in range(0, len(student_ids), chunk_size):
        chunk = student_ids[start : start + chunk_size]
        changes = {student_id: recomputed.changes.get(student_id, []) for student_id in chunk}
        total.merge(
            flags_refresh_for_students(student_ids=chunk, changes_by_student=changes, now=now, memo=memo)
        )
    if total.opened or total.resolved or recomputed.written:
        # The sweep can rewrite a large part of both tables: fresh statistics keep the teachers' flag
        # queue on its index the next morning (stale ones gave a 2 s plan instead of 3 ms at full size),
        # without waiting for autovacuum.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE progress_interventionflag, progress_competencymastery")
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
