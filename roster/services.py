"""Writes to the roster: the OneRoster 1.1 CSV import.

``oneroster_import`` reads a package with ``roster.oneroster``, resolves every reference against the
package and the database, and only then writes, table by table, with ``bulk_create``/``bulk_update`` in
batches: one lookup query per table (per 2,000 referenced ids) and one write query per batch, never a
save per row. The whole import is one ``transaction.atomic``: it writes everything or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from roster import oneroster
from roster.audit import audit_record
from roster.models import AuditEvent, Course, District, Enrollment, ImportRun, School, Section, Term, User

ENTITIES = ("districts", "schools", "terms", "courses", "sections", "users", "enrollments")
OUTCOMES = ("created", "updated", "unchanged", "deactivated")
BATCH_SIZE = 500
LOOKUP_CHUNK = 2000

# OneRoster users.role -> User.role. Guardians, parents and relatives do not sign in here: skipped.
# An administrator becomes district staff, but is_staff (admin access) is granted by a person, never
# by the student information system's feed.
USER_ROLE_MAP = {
    "student": User.Role.STUDENT,
    "teacher": User.Role.TEACHER,
    "aide": User.Role.TEACHER,
    "proctor": User.Role.TEACHER,
    "administrator": User.Role.DISTRICT_STAFF,
}
SKIPPED_USER_ROLES = ("guardian", "parent", "relative")


class RosterImportError(Exception):
    """The import was refused and nothing was written; ``messages`` names each file and row."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


@dataclass
class RosterImportReport:
    """What an import did (or, for a dry run, would do)."""

    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {entity: dict.fromkeys(OUTCOMES, 0) for entity in ENTITIES}
    )
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False
    source_name: str = ""
    district: District | None = None
    import_run: ImportRun | None = None

    def summary(self) -> str:
        lines = [f"{'Dry run' if self.dry_run else 'Imported'}: {self.source_name or 'OneRoster package'}"]
        for entity in ENTITIES:
            numbers = ", ".join(f"{self.counts[entity][outcome]} {outcome}" for outcome in OUTCOMES)
            lines.append(f"{entity}: {numbers}")
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines.extend(f"  - {warning}" for warning in self.warnings)
        return "\n".join(lines)


class _DryRunRollback(Exception):
    """Raised inside the import's transaction to roll a dry run back."""


def oneroster_import(
    *,
    source: Path | str | bytes,
    dry_run: bool = False,
    user: User | None = None,
    source_name: str = "",
) -> RosterImportReport:
    """Import a OneRoster 1.1 CSV package: a folder, a .zip path, or the bytes of an uploaded zip.

    Rows are matched on ``sourcedId``: a new one is created, a known one updated in place, and a re-run
    of the same package changes nothing. A ``tobedeleted`` row deactivates (``is_active=False``), never
    deletes. Bulk and delta files are treated alike: only the rows present are touched; a row missing
    from a bulk file is left as it is (deactivating the rest of the district is a person's decision).

    Raises ``RosterImportError`` listing every problem (file and row, the header being row 1) and writes
    nothing. A dry run computes the exact counts by importing in a transaction that is rolled back. An
    applied import records one ``ImportRun``.
    """
    if not source_name:
        source_name = "uploaded file" if isinstance(source, bytes | bytearray) else Path(source).name
    try:
        package = oneroster.parse_package(source)
    except oneroster.OneRosterError as error:
        raise RosterImportError(error.messages) from error

    report = RosterImportReport(dry_run=dry_run, source_name=source_name, warnings=list(package.warnings))
    try:
        with transaction.atomic():
            _Importer(package, report, user=user).run()
            if dry_run:
                raise _DryRunRollback
            report.import_run = ImportRun.objects.create(
                kind=ImportRun.Kind.ONEROSTER,
                status=ImportRun.Status.APPLIED,
                source_name=source_name[:255],
                started_by=user,
                district=report.district,
                counts=report.counts,
                warnings=report.warnings,
            )
            audit_record(
                actor=user,
                action=AuditEvent.Action.IMPORT_ONEROSTER,
                target=report.import_run,
                after={"source_name": report.import_run.source_name, "counts": report.counts},
                district=report.import_run.district_id,
            )
    except _DryRunRollback:
        report.import_run = None
    except IntegrityError as error:
        raise RosterImportError(
            [f"the package conflicts with rows already in the database ({error})"]
        ) from error
    return report


def _by_sourced_id(queryset: models.QuerySet, sourced_ids: Iterable[str]) -> dict[str, Any]:
    """One query per LOOKUP_CHUNK ids: ``{sourced_id: row}``."""
    wanted = sorted({sourced_id for sourced_id in sourced_ids if sourced_id})
    found: dict[str, Any] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        found.update({row.sourced_id: row for row in queryset.filter(sourced_id__in=chunk)})
    return found


@dataclass
class _Planned:
    """One package row, resolved: the values the database row should have."""

    row: oneroster.Row
    values: dict[str, Any]


class _Importer:
    def __init__(self, package: oneroster.Package, report: RosterImportReport, *, user: User | None):
        self.package = package
        self.report = report
        self.user = user
        self.errors: list[str] = []
        self.now = timezone.now()

    # The plan: load, resolve, check ------------------------------------------------------------

    def run(self) -> None:
        package = self.package
        file_orgs = {org.row.sourced_id: org for org in package.orgs}
        org_ids = set(file_orgs)
        org_ids |= {org.parent_sourced_id for org in package.orgs}
        org_ids |= {course.org_sourced_id for course in package.courses}
        org_ids |= {section.school_sourced_id for section in package.classes}
        org_ids |= {org_id for user in package.users for org_id in user.org_sourced_ids}
        org_ids |= {enrollment.school_sourced_id for enrollment in package.enrollments}
        self.districts = _by_sourced_id(District.objects.all(), org_ids)
        self.schools = _by_sourced_id(School.objects.select_related("district"), org_ids)
        self.terms = _by_sourced_id(
            Term.objects.all(),
            [session.row.sourced_id for session in package.sessions]
            + [session.parent_sourced_id for session in package.sessions]
            + [section.term_sourced_id for section in package.classes],
        )
        self.courses = _by_sourced_id(
            Course.objects.all(),
            [course.row.sourced_id for course in package.courses]
            + [section.course_sourced_id for section in package.classes],
        )
        self.sections = _by_sourced_id(
            Section.objects.all(),
            [section.row.sourced_id for section in package.classes]
            + [enrollment.class_sourced_id for enrollment in package.enrollments],
        )
        self.users = _by_sourced_id(
            User.objects.all(),
            [user.row.sourced_id for user in package.users]
            + [enrollment.user_sourced_id for enrollment in package.enrollments],
        )
        self.enrollments = _by_sourced_id(
            Enrollment.objects.all(), [enrollment.row.sourced_id for enrollment in package.enrollments]
        )
        self.file_orgs = file_orgs
        self.sections_before = set(self.sections)
        self.users_before = set(self.users)
        self._check_org_types()
        self.primary_district_key = self._choose_primary_district()
        plan_schools = self._plan_schools()
        self._check_sessions()
        self._check_courses()
        self._check_classes()
        plan_users = self._plan_users()
        self._check_enrollments()
        if self.errors:
            raise RosterImportError(self.errors)

        self._write_districts()
        self._write_schools(plan_schools)
        self._write_terms()
        self._write_courses()
        self._write_sections()
        self._write_users(plan_users)
        self._write_enrollments()
        self.report.district = self._primary_district()

    def _primary_district(self) -> District | None:
        key = self.primary_district_key
        if key == "fallback":
            return getattr(self, "_fallback", None)
        if key.startswith("pk:"):
            return District.objects.filter(pk=int(key[3:])).first()
        return self.districts[key]

    def _error(self, row: oneroster.Row, message: str) -> None:
        self.errors.append(f"{row.where}: {message}")

    def _warn(self, message: str) -> None:
        self.report.warnings.append(message)

    def _check_org_types(self) -> None:
        for org in self.package.orgs:
            sourced_id = org.row.sourced_id
            if org.type == "district" and sourced_id in self.schools:
                self._error(org.row, f"org '{sourced_id}' is a school in the database, not a district")
            elif org.type == "school" and sourced_id in self.districts:
                self._error(org.row, f"org '{sourced_id}' is a district in the database, not a school")
            elif org.type not in ("district", "school") and not org.row.is_deleted:
                self._warn(
                    f"{org.row.where}: org type '{org.type}' is not imported (only district and school)"
                )

    def _is_district(self, sourced_id: str) -> bool:
        org = self.file_orgs.get(sourced_id)
        if org is not None:
            return org.type == "district" and (not org.row.is_deleted or sourced_id in self.districts)
        return sourced_id in self.districts

    def _is_school(self, sourced_id: str) -> bool:
        org = self.file_orgs.get(sourced_id)
        if org is not None:
            return org.type == "school" and (not org.row.is_deleted or sourced_id in self.schools)
        return sourced_id in self.schools

    def _org_exists(self, sourced_id: str) -> bool:
        return sourced_id in self.file_orgs or sourced_id in self.districts or sourced_id in self.schools

    def _district_of_org(self, sourced_id: str) -> str | None:
        """The sourcedId of the district an org belongs to (walking parents), or None."""
        seen: set[str] = set()
        while sourced_id and sourced_id not in seen:
            seen.add(sourced_id)
            if self._is_district(sourced_id):
                return sourced_id
            org = self.file_orgs.get(sourced_id)
            if org is not None:
                sourced_id = org.parent_sourced_id
            elif sourced_id in self.schools:
                return f"pk:{self.schools[sourced_id].district_id}"
            else:
                return None
        return None

    def _choose_primary_district(self) -> str:
        """The district that owns terms and anything without a district of its own, as a key.

        Keys are district sourcedIds, ``pk:<id>`` for a district without one, or ``fallback``.
        """
        file_districts = [
            org.row.sourced_id
            for org in self.package.orgs
            if org.type == "district" and not org.row.is_deleted
        ]
        if file_districts:
            if len(file_districts) > 1:
                self._warn(
                    f"orgs.csv has {len(file_districts)} district orgs; academic sessions were put in the "
                    f"first, '{file_districts[0]}'"
                )
            return file_districts[0]
        for org_id in sorted(self.schools):
            key = self._district_of_org(org_id)
            if key:
                return key
        for district_id in sorted(self.districts):
            return district_id
        return "fallback"

    def _resolve_fallback(self) -> District:
        """No district org: reuse the only district there is, or one named after the source."""
        districts = list(District.objects.order_by("pk")[:2])
        if len(districts) == 1:
            self._warn(
                f"the package has no district org; its schools and sessions were put in '{districts[0]}'"
            )
            return districts[0]
        name = Path(self.report.source_name).stem or "OneRoster import"
        district = District.objects.filter(name=name, sourced_id__isnull=True).first()
        if district is None:
            district = District.objects.create(name=name)
            self.report.counts["districts"]["created"] += 1
        self._warn(f"the package has no district org; its schools and sessions were put in district '{name}'")
        return district

    def _district_pk(self, key: str) -> int:
        if key.startswith("pk:"):
            return int(key[3:])
        if key == "fallback":
            if not hasattr(self, "_fallback"):
                self._fallback = self._resolve_fallback()
            return self._fallback.pk
        return self.districts[key].pk

    def _plan_schools(self) -> list[tuple[oneroster.Org, str]]:
        planned = []
        for org in self.package.orgs:
            if org.row.is_deleted:
                continue
            if org.parent_sourced_id and not self._org_exists(org.parent_sourced_id):
                self._error(org.row, f"parent org '{org.parent_sourced_id}' does not exist")
                continue
            if org.type != "school":
                continue
            key = self._district_of_org(org.parent_sourced_id) if org.parent_sourced_id else None
            if key is None and org.row.sourced_id in self.schools:
                key = f"pk:{self.schools[org.row.sourced_id].district_id}"  # keep the district it has
            elif key is None:
                key = self.primary_district_key
                self._warn(
                    f"{org.row.where}: school '{org.name}' has no parent district; it was put in the package's district"
                )
            planned.append((org, key))
        return planned

    def _check_sessions(self) -> None:
        file_sessions = {session.row.sourced_id for session in self.package.sessions}
        for session in self.package.sessions:
            parent = session.parent_sourced_id
            if session.row.is_deleted or not parent:
                continue
            if parent == session.row.sourced_id:
                self._error(session.row, "parentSourcedId names the session itself")
            elif parent not in file_sessions and parent not in self.terms:
                self._error(session.row, f"parent session '{parent}' does not exist")

    def _check_courses(self) -> None:
        for course in self.package.courses:
            if not course.row.is_deleted and not self._org_exists(course.org_sourced_id):
                self._error(course.row, f"org '{course.org_sourced_id}' does not exist")

    def _check_classes(self) -> None:
        file_terms = {s.row.sourced_id for s in self.package.sessions if not s.row.is_deleted}
        file_courses = {c.row.sourced_id for c in self.package.courses if not c.row.is_deleted}
        for section in self.package.classes:
            if section.row.is_deleted:
                continue
            if not self._org_exists(section.school_sourced_id):
                self._error(section.row, f"school '{section.school_sourced_id}' does not exist")
            elif not self._is_school(section.school_sourced_id):
                self._error(section.row, f"org '{section.school_sourced_id}' is not a school")
            if (
                section.course_sourced_id not in file_courses
                and section.course_sourced_id not in self.courses
            ):
                self._error(section.row, f"course '{section.course_sourced_id}' does not exist")
            term_id = section.term_sourced_id
            if term_id and term_id not in file_terms and term_id not in self.terms:
                self._error(section.row, f"term '{section.term_sourced_id}' does not exist")

    def _plan_users(self) -> list[oneroster.UserRow]:
        planned = []
        self.skipped_users: dict[str, str] = {}
        usernames: dict[str, int] = {}
        for user in self.package.users:
            if user.role in SKIPPED_USER_ROLES:
                self.skipped_users[user.row.sourced_id] = user.role
                if not user.row.is_deleted:
                    self._warn(
                        f"{user.row.where}: user '{user.row.sourced_id}' was skipped "
                        f"(role {user.role}: guardians, parents and relatives are not imported)"
                    )
                continue
            if user.row.is_deleted:
                planned.append(user)
                continue
            for org_id in user.org_sourced_ids:
                if not self._org_exists(org_id):
                    self._error(user.row, f"org '{org_id}' does not exist")
            if len(user.username) > 150:
                self._error(user.row, f"username '{user.username}' is longer than 150 characters")
            elif user.username in usernames:
                self._error(
                    user.row, f"username '{user.username}' is already used on row {usernames[user.username]}"
                )
            usernames.setdefault(user.username, user.row.number)
            planned.append(user)
        taken = {}
        names = sorted(usernames)
        for start in range(0, len(names), LOOKUP_CHUNK):
            taken.update(
                User.objects.filter(username__in=names[start : start + LOOKUP_CHUNK]).values_list(
                    "username", "sourced_id"
                )
            )
        for user in planned:
            if (
                not user.row.is_deleted
                and user.username in taken
                and taken[user.username] != user.row.sourced_id
            ):
                self._error(user.row, f"username '{user.username}' belongs to another user")
        return planned

    def _check_enrollments(self) -> None:
        file_sections = {c.row.sourced_id for c in self.package.classes if not c.row.is_deleted}
        file_users = {
            u.row.sourced_id
            for u in self.package.users
            if not u.row.is_deleted and u.row.sourced_id not in self.skipped_users
        }
        triples: dict[tuple[str, str, str], int] = {}
        for enrollment in self.package.enrollments:
            if enrollment.row.is_deleted:
                continue
            class_id, user_id = enrollment.class_sourced_id, enrollment.user_sourced_id
            if class_id not in file_sections and class_id not in self.sections:
                self._error(enrollment.row, f"class '{class_id}' does not exist")
            if user_id in self.skipped_users:
                self._error(
                    enrollment.row,
                    f"user '{user_id}' is a {self.skipped_users[user_id]}, who is not imported",
                )
            elif user_id not in file_users and user_id not in self.users:
                self._error(enrollment.row, f"user '{user_id}' does not exist")
            if enrollment.school_sourced_id and not self._org_exists(enrollment.school_sourced_id):
                self._error(enrollment.row, f"school '{enrollment.school_sourced_id}' does not exist")
            triple = (class_id, user_id, enrollment.role)
            if triple in triples:
                self._error(
                    enrollment.row,
                    f"user '{user_id}' is already enrolled in class '{class_id}' as {enrollment.role} on row "
                    f"{triples[triple]}",
                )
            triples.setdefault(triple, enrollment.row.number)

    # Writing -----------------------------------------------------------------------------------

    def _upsert(
        self,
        entity: str,
        model: type[models.Model],
        planned: list[_Planned],
        existing: dict[str, Any],
        *,
        with_history: bool = False,
    ) -> None:
        """Create, update or deactivate one table's rows in bulk; count what happened; fill ``existing``."""
        counts = self.report.counts[entity]
        to_create: list[Any] = []
        to_update: list[Any] = []
        changed_fields: set[str] = set()
        for plan in planned:
            sourced_id = plan.row.sourced_id
            current = existing.get(sourced_id)
            if plan.row.is_deleted:
                if current is None:
                    self._warn(
                        f"{plan.row.where}: '{sourced_id}' is tobedeleted but was never imported; skipped"
                    )
                elif current.is_active:
                    current.is_active = False
                    changed_fields.add("is_active")
                    if hasattr(current, "updated_at"):
                        current.updated_at = self.now
                        changed_fields.add("updated_at")
                    to_update.append(current)
                    counts["deactivated"] += 1
                else:
                    counts["unchanged"] += 1
                continue
            values = {"is_active": True, **plan.values}
            if current is None:
                instance = model(sourced_id=sourced_id, **values)
                if isinstance(instance, User):
                    instance.set_unusable_password()
                to_create.append(instance)
                existing[sourced_id] = instance
                counts["created"] += 1
                continue
            differences = [name for name, value in values.items() if getattr(current, name) != value]
            if not differences:
                counts["unchanged"] += 1
                continue
            for name in differences:
                setattr(current, name, values[name])
            if hasattr(current, "updated_at"):
                current.updated_at = self.now
                changed_fields.add("updated_at")
            changed_fields.update(differences)
            to_update.append(current)
            counts["updated"] += 1
        if with_history:
            if to_create:
                bulk_create_with_history(to_create, model, batch_size=BATCH_SIZE, default_user=self.user)
            if to_update:
                bulk_update_with_history(
                    to_update, model, sorted(changed_fields), batch_size=BATCH_SIZE, default_user=self.user
                )
        else:
            if to_create:
                model._default_manager.bulk_create(to_create, batch_size=BATCH_SIZE)
            if to_update:
                model._default_manager.bulk_update(to_update, sorted(changed_fields), batch_size=BATCH_SIZE)

    def _write_districts(self) -> None:
        planned = [
            _Planned(org.row, {"name": org.name})
            for org in self.package.orgs
            if org.type == "district" or (org.row.is_deleted and org.row.sourced_id in self.districts)
        ]
        self._upsert("districts", District, planned, self.districts)

    def _write_schools(self, planned_schools: list[tuple[oneroster.Org, str]]) -> None:
        planned = [
            _Planned(
                org.row,
                {"name": org.name, "identifier": org.identifier, "district_id": self._district_pk(key)},
            )
            for org, key in planned_schools
        ]
        planned += [
            _Planned(org.row, {})
            for org in self.package.orgs
            if org.row.is_deleted and org.row.sourced_id in self.schools
        ]
        self._upsert("schools", School, planned, self.schools)

    def _write_terms(self) -> None:
        sessions = self.package.sessions
        if not sessions:
            return
        district_pk = self._district_pk(self.primary_district_key)
        in_file = {session.row.sourced_id: session for session in sessions if not session.row.is_deleted}
        # Parents before children: one bulk write per level of the (shallow) session tree.
        depth: dict[str, int] = {}

        def level(session: oneroster.Session, seen: frozenset[str] = frozenset()) -> int:
            sourced_id = session.row.sourced_id
            if sourced_id not in depth:
                parent = in_file.get(session.parent_sourced_id)
                if parent is None or parent.row.sourced_id in seen:
                    depth[sourced_id] = 0
                else:
                    depth[sourced_id] = level(parent, seen | {sourced_id}) + 1
            return depth[sourced_id]

        by_level: dict[int, list[_Planned]] = {}
        for session in sessions:
            if session.row.is_deleted:
                by_level.setdefault(0, []).append(_Planned(session.row, {}))
                continue
            by_level.setdefault(level(session), [])
        for current_level in sorted(by_level):
            planned = by_level[current_level]
            for session in sessions:
                if session.row.is_deleted or depth.get(session.row.sourced_id) != current_level:
                    continue
                parent = self.terms.get(session.parent_sourced_id) if session.parent_sourced_id else None
                planned.append(
                    _Planned(
                        session.row,
                        {
                            "district_id": district_pk,
                            "title": session.title,
                            "kind": session.type,
                            "start_date": session.start_date,
                            "end_date": session.end_date,
                            "school_year": session.school_year,
                            "parent_id": parent.pk if parent is not None else None,
                        },
                    )
                )
            self._upsert("terms", Term, planned, self.terms)

    def _org_district_and_school(self, org_id: str) -> tuple[int, int | None]:
        if self._is_school(org_id):
            school = self.schools[org_id]
            return school.district_id, school.pk
        key = self._district_of_org(org_id) or self.primary_district_key
        return self._district_pk(key), None

    def _write_courses(self) -> None:
        planned = []
        for course in self.package.courses:
            if course.row.is_deleted:
                planned.append(_Planned(course.row, {}))
                continue
            district_pk, school_pk = self._org_district_and_school(course.org_sourced_id)
            planned.append(
                _Planned(
                    course.row,
                    {
                        "district_id": district_pk,
                        "school_id": school_pk,
                        "title": course.title,
                        "code": course.code,
                        "grades": course.grades,
                        "subjects": course.subjects,
                    },
                )
            )
        self._upsert("courses", Course, planned, self.courses)

    def _write_sections(self) -> None:
        planned = []
        for section in self.package.classes:
            if section.row.is_deleted:
                planned.append(_Planned(section.row, {}))
                continue
            term = self.terms.get(section.term_sourced_id)
            planned.append(
                _Planned(
                    section.row,
                    {
                        "school_id": self.schools[section.school_sourced_id].pk,
                        "term_id": term.pk if term is not None else None,
                        "course_id": self.courses[section.course_sourced_id].pk,
                        "title": section.title,
                        "code": section.code,
                        "grades": section.grades,
                        "location": section.location,
                    },
                )
            )
        self._upsert("sections", Section, planned, self.sections)

    def _write_users(self, planned_users: list[oneroster.UserRow]) -> None:
        planned = []
        for user in planned_users:
            if user.row.is_deleted:
                planned.append(_Planned(user.row, {}))
                continue
            district_pk = None
            for org_id in user.org_sourced_ids:
                key = self._district_of_org(org_id)
                if key is not None:
                    district_pk = self._district_pk(key)
                    break
            if district_pk is None:
                district_pk = self._district_pk(self.primary_district_key)
            planned.append(
                _Planned(
                    user.row,
                    {
                        "username": user.username,
                        "first_name": user.given_name[:150],
                        "last_name": user.family_name[:150],
                        "email": user.email[:254],
                        "role": USER_ROLE_MAP[user.role],
                        "district_id": district_pk,
                        "grades": user.grades,
                        "is_active": user.is_enabled,
                    },
                )
            )
        self._upsert("users", User, planned, self.users, with_history=True)

    def _check_enrollment_conflicts(self) -> None:
        """A new enrollment must not repeat one already stored under another sourcedId (one query)."""
        candidates = [
            enrollment
            for enrollment in self.package.enrollments
            if not enrollment.row.is_deleted
            and enrollment.row.sourced_id not in self.enrollments
            and enrollment.class_sourced_id in self.sections_before
            and enrollment.user_sourced_id in self.users_before
        ]
        if not candidates:
            return
        stored = {
            (section_id, user_id, role): sourced_id
            for section_id, user_id, role, sourced_id in Enrollment.objects.filter(
                section_id__in={self.sections[e.class_sourced_id].pk for e in candidates},
                user_id__in={self.users[e.user_sourced_id].pk for e in candidates},
            ).values_list("section_id", "user_id", "role", "sourced_id")
        }
        for enrollment in candidates:
            triple = (
                self.sections[enrollment.class_sourced_id].pk,
                self.users[enrollment.user_sourced_id].pk,
                enrollment.role,
            )
            if triple in stored:
                self._error(
                    enrollment.row,
                    f"user '{enrollment.user_sourced_id}' is already enrolled in class "
                    f"'{enrollment.class_sourced_id}' as {enrollment.role} (enrollment '{stored[triple] or 'no sourcedId'}')",
                )
        if self.errors:
            raise RosterImportError(self.errors)

    def _write_enrollments(self) -> None:
        self._check_enrollment_conflicts()
        planned = []
        for enrollment in self.package.enrollments:
            if enrollment.row.is_deleted:
                planned.append(_Planned(enrollment.row, {}))
                continue
            planned.append(
                _Planned(
                    enrollment.row,
                    {
                        "section_id": self.sections[enrollment.class_sourced_id].pk,
                        "user_id": self.users[enrollment.user_sourced_id].pk,
                        "role": enrollment.role,
                        "is_primary": enrollment.is_primary,
                        "begin_date": enrollment.begin_date,
                        "end_date": enrollment.end_date,
                    },
                )
            )
        self._upsert("enrollments", Enrollment, planned, self.enrollments)
