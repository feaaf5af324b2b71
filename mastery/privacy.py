"""Privacy: what the platform holds about one student, exported on request, forgotten on request, and the
retention purge of old raw responses (PRIVACY.md says the same in words).

This is the top layer: it reads every app. The interfaces are the commands ``student_export``,
``student_forget`` and ``purge_responses``, the user admin's actions (``mastery/admin.py``) and the
nightly task ``mastery.tasks.responses_purge_nightly``.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import TruncDate
from django.utils import timezone
from rest_framework.authtoken.models import Token

from assessments.models import Attempt, AttemptCompetencyScore, Response, ResponseScoreChange
from progress.models import CompetencyMastery, Evidence, InterventionFlag, ResourceView
from roster.audit import audit_record
from roster.models import AuditEvent, Enrollment, Term, User

#: The export's format version, written into every export.
EXPORT_VERSION = 1
TEXT_ITEM_TYPES = ("short_text", "extended_text")


class PrivacyError(Exception):
    """A request the privacy services refuse (not a student, unknown student)."""


@dataclass(frozen=True)
class Table:
    """One table of the export: its rows for one student, the columns, the columns left out."""

    name: str
    model: type[models.Model]
    rows: Callable[[User], models.QuerySet]
    exclude: tuple[str, ...] = ()

    def columns(self) -> list[str]:
        return [
            field.attname
            for field in self.model._meta.concrete_fields
            if field.attname not in self.exclude and field.name not in self.exclude
        ]


def _user_content_type_id() -> int:
    return ContentType.objects.get_for_model(User).pk


#: Everything held about a student, one table each: their account and its history, their classes,
#: their work, their mastery and flags, what the audit log says about them, their sign-in records.
TABLES: tuple[Table, ...] = (
    Table("student", User, lambda student: User.objects.filter(pk=student.pk), exclude=("password",)),
    Table(
        "student_history",
        User.history.model,
        lambda student: User.history.filter(id=student.pk).order_by("history_date", "history_id"),
    ),
    Table("enrollments", Enrollment, lambda student: Enrollment.objects.filter(user=student).order_by("pk")),
    Table("attempts", Attempt, lambda student: Attempt.objects.filter(student=student).order_by("pk")),
    Table(
        "responses",
        Response,
        lambda student: Response.objects.filter(attempt__student=student).order_by("attempt_id", "item_id"),
    ),
    Table(
        "response_score_changes",
        ResponseScoreChange,
        lambda student: ResponseScoreChange.objects.filter(response__attempt__student=student).order_by("pk"),
    ),
    Table(
        "attempt_competency_scores",
        AttemptCompetencyScore,
        lambda student: AttemptCompetencyScore.objects.filter(attempt__student=student).order_by("pk"),
    ),
    Table("evidence", Evidence, lambda student: Evidence.objects.filter(student=student).order_by("pk")),
    Table(
        "evidence_history",
        Evidence.history.model,
        lambda student: Evidence.history.filter(student_id=student.pk).order_by("history_id"),
    ),
    Table(
        "masteries",
        CompetencyMastery,
        lambda student: CompetencyMastery.objects.filter(student=student).order_by("competency_id"),
    ),
    Table(
        "mastery_history",
        CompetencyMastery.history.model,
        lambda student: CompetencyMastery.history.filter(student_id=student.pk).order_by("history_id"),
    ),
    Table(
        "flags",
        InterventionFlag,
        lambda student: InterventionFlag.objects.filter(student=student).order_by("pk"),
    ),
    Table(
        "flag_history",
        InterventionFlag.history.model,
        lambda student: InterventionFlag.history.filter(student_id=student.pk).order_by("history_id"),
    ),
    Table(
        "resource_views",
        ResourceView,
        lambda student: ResourceView.objects.filter(student=student).order_by("pk"),
    ),
    Table(
        "audit_events",
        AuditEvent,
        lambda student: AuditEvent.objects.filter(subject_id=student.pk).order_by("pk"),
    ),
    Table(
        "admin_log",
        LogEntry,
        lambda student: LogEntry.objects.filter(
            content_type_id=_user_content_type_id(), object_id=str(student.pk)
        ).order_by("pk"),
    ),
    Table(
        "login_attempts",
        AccessAttempt,
        lambda student: AccessAttempt.objects.filter(username=student.username).order_by("pk"),
    ),
    Table(
        "logins",
        AccessLog,
        lambda student: AccessLog.objects.filter(username=student.username).order_by("pk"),
    ),
    Table(
        "login_failures",
        AccessFailureLog,
        lambda student: AccessFailureLog.objects.filter(username=student.username).order_by("pk"),
    ),
)


def _get_student(student: User | str) -> User:
    if isinstance(student, str):
        user = User.objects.filter(username=student).first()
        if user is None:
            raise PrivacyError(f"No user with the username {student!r}.")
        student = user
    if student.role != User.Role.STUDENT:
        raise PrivacyError(f"{student.username!r} is not a student ({student.get_role_display()}).")
    return student


# --- export --------------------------------------------------------------------------------------------


def student_export_data(*, student: User) -> dict[str, Any]:
    """Every row held about ``student``, table by table (one query per table, whatever the volume)."""
    student = _get_student(student)
    tables = {table.name: list(table.rows(student).values(*table.columns())) for table in TABLES}
    return {
        "format": "mastery-student-export",
        "version": EXPORT_VERSION,
        "student_id": student.pk,
        "tables": tables,
    }


def export_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, cls=DjangoJSONEncoder, indent=2, sort_keys=True).encode()


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return "" if value is None else value


def export_csv_zip(data: dict[str, Any]) -> bytes:
    """One CSV per table (header row always, even when empty) in a zip, and the JSON beside them."""
    buffer = io.BytesIO()
    columns = {table.name: table.columns() for table in TABLES}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, rows in data["tables"].items():
            text = io.StringIO()
            writer = csv.writer(text)
            writer.writerow(columns[name])
            for row in rows:
                writer.writerow([_csv_value(row[column]) for column in columns[name]])
            archive.writestr(f"{name}.csv", text.getvalue())
    return buffer.getvalue()


def student_export(*, student: User | str, actor: User | None, export_format: str = "json") -> bytes:
    """The export of one student, as JSON or as a zip of CSV files; the audit log records it."""
    student = _get_student(student)
    if export_format not in ("json", "csv"):
        raise PrivacyError(f"Unknown format {export_format!r}: json or csv.")
    data = student_export_data(student=student)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.STUDENT_EXPORT,
        target=student,
        after={"format": export_format},
        district=student.district_id,
    )
    return export_json(data) if export_format == "json" else export_csv_zip(data)


def students_export_zip(*, students: Iterable[User], actor: User | None) -> bytes:
    """The admin action's download: for each student ``<username>.json`` and ``<username>-csv.zip``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for student in students:
            archive.writestr(f"{student.username}.json", student_export(student=student, actor=actor))
            archive.writestr(
                f"{student.username}-csv.zip",
                student_export(student=student, actor=actor, export_format="csv"),
            )
    return buffer.getvalue()


# --- forget ----------------------------------------------------------------------------------------------


def _forget_sign_in_records(username: str, user_id: int) -> None:
    AccessAttempt.objects.filter(username=username).delete()
    AccessLog.objects.filter(username=username).delete()
    AccessFailureLog.objects.filter(username=username).delete()
    LogEntry.objects.filter(content_type_id=_user_content_type_id(), object_id=str(user_id)).delete()
    Token.objects.filter(user_id=user_id).delete()


def student_forget(*, student: User | str, actor: User | None, delete: bool = False) -> int:
    """Forget a student on request; returns the student's id.

    Anonymise (the default): the account keeps its id and its learning records (attempts and their
    scores, evidence, mastery: the class's statistics and the item statistics stay true), but loses
    everything that identifies the person: name, username, e-mail, SIS id, grades, password, the
    account's history, free-text answers, teachers' notes, sign-in records; it is deactivated and
    leaves its classes. ``delete=True`` removes the account and every row about it instead.
    Either way the audit log records the request, by id only.
    """
    student = _get_student(student)
    student_id, username = student.pk, student.username
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditEvent.Action.STUDENT_DELETE if delete else AuditEvent.Action.STUDENT_ANONYMISE,
            target=student,
            district=student.district_id,
        )
        _forget_sign_in_records(username, student_id)
        if delete:
            student.delete()
        else:
            _anonymise(student)
        # History rows (including those the deletion itself just wrote) hold the old names and notes.
        User.history.filter(id=student_id).delete()
        if delete:
            Evidence.history.filter(student_id=student_id).delete()
            CompetencyMastery.history.filter(student_id=student_id).delete()
            InterventionFlag.history.filter(student_id=student_id).delete()
        else:
            Evidence.history.filter(student_id=student_id).update(note="")
            InterventionFlag.history.filter(student_id=student_id).update(resolution_note="")
    return student_id


def _anonymise(student: User) -> None:
    student.username = f"forgotten-{student.pk}"
    student.first_name = ""
    student.last_name = ""
    student.email = ""
    student.sourced_id = None
    student.grades = []
    student.is_active = False
    student.set_unusable_password()
    student.skip_history_when_saving = True  # type: ignore[attr-defined]
    student.save()
    Enrollment.objects.filter(user=student).update(
        sourced_id=None, is_active=False, updated_at=timezone.now()
    )
    Response.objects.filter(attempt__student=student, item__type__in=TEXT_ITEM_TYPES).update(answer=None)
    Response.objects.filter(attempt__student=student).exclude(feedback="").update(feedback="")
    Evidence.objects.filter(student=student).exclude(note="").update(note="")
    InterventionFlag.objects.filter(student=student).exclude(resolution_note="").update(resolution_note="")


# --- retention ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime.date
    terms: int
    responses: int


def responses_purge(
    *, years: int | None = None, today: datetime.date | None = None, dry_run: bool = False
) -> PurgeResult:
    """Delete the raw responses (the answers) of attempts made during terms that ended more than
    ``years`` (default ``MASTERY_RESPONSE_RETENTION_YEARS``) years ago, by students enrolled in a section
    of that term. Attempts (their totals and per-competency scores), evidence and mastery stay.
    Set-based: one DELETE, whatever the volume."""
    years = settings.MASTERY_RESPONSE_RETENTION_YEARS if years is None else years
    if years < 1:
        raise PrivacyError("The retention period is at least one year.")
    today = today or timezone.localdate()
    try:
        cutoff = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        cutoff = today.replace(year=today.year - years, day=28)
    ended_terms = Term.objects.filter(end_date__lt=cutoff)
    in_ended_term = Enrollment.objects.filter(
        user_id=OuterRef("attempt__student_id"),
        role=Enrollment.Role.STUDENT,
        section__term__end_date__lt=cutoff,
        section__term__start_date__lte=OuterRef("attempt_day"),
        section__term__end_date__gte=OuterRef("attempt_day"),
    )
    responses = Response.objects.annotate(attempt_day=TruncDate("attempt__started_at")).filter(
        Exists(in_ended_term)
    )
    with transaction.atomic():
        term_count = ended_terms.count()
        if dry_run:
            return PurgeResult(cutoff=cutoff, terms=term_count, responses=responses.count())
        purged = Response.objects.filter(pk__in=responses.values("pk"))
        ResponseScoreChange.objects.filter(response__in=purged.values("pk"))._raw_delete(
            ResponseScoreChange.objects.db
        )
        deleted = purged._raw_delete(Response.objects.db)
        if deleted:
            audit_record(
                actor=None,
                action=AuditEvent.Action.RESPONSES_PURGE,
                after={"cutoff": cutoff, "years": years, "terms": term_count, "responses": deleted},
            )
    return PurgeResult(cutoff=cutoff, terms=term_count, responses=deleted)


__all__ = [
    "TABLES",
    "PrivacyError",
    "PurgeResult",
    "responses_purge",
    "student_export",
    "student_export_data",
    "student_forget",
]
