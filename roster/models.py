"""Who is in the district: the district, its schools, terms, courses, sections, people and enrollments.

Rows that come from the student information system carry its OneRoster ``sourced_id``; a re-import
updates them in place, and a ``tobedeleted`` row is deactivated, never deleted, so that nothing a
student did is lost.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class SourcedModel(models.Model):
    """Common columns of a row that a OneRoster import may own."""

    sourced_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class District(SourcedModel):
    """One school district: the tenant that owns schools, people and frameworks."""

    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """One person who signs in: district staff, a teacher or a student, in one district."""

    class Role(models.TextChoices):
        DISTRICT_STAFF = "district_staff", "District staff"
        TEACHER = "teacher", "Teacher"
        STUDENT = "student", "Student"

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.STUDENT)
    district = models.ForeignKey(
        District, on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )
    sourced_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    grades = models.JSONField(default=list, blank=True, help_text="CEDS grade codes, e.g. ['07'].")
    history = HistoricalRecords(excluded_fields=["password", "last_login"])

    class Meta:
        ordering = ["last_name", "first_name", "username"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["district_staff", "teacher", "student"]), name="user_role_valid"
            )
        ]

    def __str__(self) -> str:
        full_name = self.get_full_name()
        return full_name or self.username

    @property
    def is_district_staff(self) -> bool:
        return self.role == self.Role.DISTRICT_STAFF

    @property
    def is_teacher(self) -> bool:
        return self.role == self.Role.TEACHER

    @property
    def is_student(self) -> bool:
        return self.role == self.Role.STUDENT


class School(SourcedModel):
    """One school of a district."""

    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="schools")
    name = models.CharField(max_length=255)
    identifier = models.CharField(max_length=255, blank=True, help_text="The school's own code.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Term(SourcedModel):
    """One academic session: a school year, semester, term or grading period."""

    class Kind(models.TextChoices):
        SCHOOL_YEAR = "schoolYear", "School year"
        SEMESTER = "semester", "Semester"
        TERM = "term", "Term"
        GRADING_PERIOD = "gradingPeriod", "Grading period"

    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="terms")
    title = models.CharField(max_length=255)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TERM)
    start_date = models.DateField()
    end_date = models.DateField()
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    school_year = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-start_date", "title"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")), name="term_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return self.title


class Course(SourcedModel):
    """One course of the catalog (e.g. Grade 7 Mathematics); sections are its classes."""

    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="courses")
    school = models.ForeignKey(
        School, on_delete=models.PROTECT, null=True, blank=True, related_name="courses"
    )
    title = models.CharField(max_length=255)
    code = models.CharField(max_length=255, blank=True)
    grades = models.JSONField(default=list, blank=True)
    subjects = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Section(SourcedModel):
    """One class that meets: its school, term and course, with teachers and students enrolled."""

    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="sections")
    term = models.ForeignKey(Term, on_delete=models.PROTECT, null=True, blank=True, related_name="sections")
    course = models.ForeignKey(
        Course, on_delete=models.PROTECT, null=True, blank=True, related_name="sections"
    )
    title = models.CharField(max_length=255)
    code = models.CharField(max_length=255, blank=True)
    grades = models.JSONField(default=list, blank=True)
    location = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Enrollment(SourcedModel):
    """One person's place in one section, as student or teacher."""

    class Role(models.TextChoices):
        STUDENT = "student", "Student"
        TEACHER = "teacher", "Teacher"
        ADMINISTRATOR = "administrator", "Administrator"
        PROCTOR = "proctor", "Proctor"

    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="enrollments")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="enrollments")
    role = models.CharField(max_length=20, choices=Role.choices)
    is_primary = models.BooleanField(default=False)
    begin_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["section", "role", "user"]
        constraints = [
            models.UniqueConstraint(fields=["section", "user", "role"], name="enrollment_unique_role")
        ]
        indexes = [models.Index(fields=["user", "role", "is_active"], name="enrollment_user_role")]

    def __str__(self) -> str:
        return f"{self.user} in {self.section} ({self.role})"


class ImportRun(models.Model):
    """One run of an importer (OneRoster, CASE, CSV): who ran it, on what, and what it did."""

    class Kind(models.TextChoices):
        ONEROSTER = "oneroster", "OneRoster"
        CASE = "case", "CASE"
        FRAMEWORK_CSV = "framework_csv", "Framework CSV"

    class Status(models.TextChoices):
        DRY_RUN = "dry_run", "Dry run"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices)
    source_name = models.CharField(max_length=255)
    started_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="import_runs"
    )
    district = models.ForeignKey(
        District, on_delete=models.SET_NULL, null=True, blank=True, related_name="import_runs"
    )
    counts = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.source_name} ({self.get_status_display()})"


class AuditEventQuerySet(models.QuerySet):
    """The audit log is append-only: a queryset refuses bulk updates and deletes as well."""

    def update(self, **kwargs):
        raise AuditLogIsAppendOnly("Audit events cannot be changed.")

    def delete(self):
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")


class AuditLogIsAppendOnly(Exception):
    """Raised on any attempt to change or delete an audit event."""


class AuditEvent(models.Model):
    """One audited decision: who did what to which object, when, with the state before and after.

    Append-only: the model refuses save() of an existing row and delete(), and on PostgreSQL a trigger
    refuses UPDATE and DELETE, so not even raw SQL rewrites history. People are held
    by id, not by foreign key (deleting a person must not rewrite the log), and a student appears only
    as an id (``subject_id``), never by name, so that forgetting a student leaves nothing to scrub here.
    """

    class Action(models.TextChoices):
        MASTERY_OVERRIDE = "mastery_override", "Mastery override"
        MASTERY_UNLOCK = "mastery_unlock", "Competency unlocked"
        RESCORE_JOB_CREATED = "rescore_job_created", "Rescoring job created"
        FLAG_ACKNOWLEDGE = "flag_acknowledge", "Flag acknowledged"
        FLAG_SNOOZE = "flag_snooze", "Flag snoozed"
        FLAG_RESOLVE = "flag_resolve", "Flag resolved"
        IMPORT_CASE = "import_case", "CASE import"
        IMPORT_FRAMEWORK_CSV = "import_framework_csv", "Framework CSV import"
        IMPORT_ONEROSTER = "import_oneroster", "OneRoster import"
        ROLE_CHANGE = "role_change", "Role change"
        STUDENT_EXPORT = "student_export", "Student data exported"
        STUDENT_ANONYMISE = "student_anonymise", "Student anonymised"
        STUDENT_DELETE = "student_delete", "Student deleted"
        RESPONSES_PURGE = "responses_purge", "Old responses purged"

    created_at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    actor_id = models.BigIntegerField(
        null=True, blank=True, help_text="The user who acted (empty: the system)."
    )
    actor_username = models.CharField(max_length=150, blank=True)
    district_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    target_type = models.CharField(max_length=100, blank=True, help_text="app_label.model of the object.")
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    subject_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="The student the event is about, if any."
    )
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    note = models.TextField(blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["action", "-created_at"], name="audit_action_created")]

    def __str__(self) -> str:
        who = self.actor_username or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M} {who}: {self.get_action_display()} {self.target_repr}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")
