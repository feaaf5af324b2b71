"""roster.services.oneroster_import: counts, idempotence, deltas, deactivation, dry runs, query counts."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from roster.models import Course, District, Enrollment, ImportRun, School, Section, Term, User
from roster.services import RosterImportError, oneroster_import
from tests.factories import StaffFactory, StudentFactory
from tests.roster.oneroster_helpers import (
    BULK,
    DELTA,
    add_students,
    copy_package,
    set_cell,
    snapshot,
    table_counts,
    zip_bytes,
    zip_folder,
)

pytestmark = pytest.mark.django_db


def counts(created=0, updated=0, unchanged=0, deactivated=0):
    return {"created": created, "updated": updated, "unchanged": unchanged, "deactivated": deactivated}


FIRST_IMPORT = {
    "districts": counts(created=1),
    "schools": counts(created=2),
    "terms": counts(created=3),
    "courses": counts(created=2),
    "sections": counts(created=3),
    "users": counts(created=16),
    "enrollments": counts(created=16),
}
SECOND_IMPORT = {
    "districts": counts(unchanged=1),
    "schools": counts(unchanged=2),
    "terms": counts(unchanged=3),
    "courses": counts(unchanged=2),
    "sections": counts(unchanged=3),
    "users": counts(unchanged=16),
    "enrollments": counts(unchanged=16),
}
FIRST_WARNINGS = [
    "users.csv row 18: user 'usr-g-001' was skipped (role guardian: guardians, parents and relatives are not imported)",
    "enrollments.csv row 18: 'enr-s-008-old' is tobedeleted but was never imported; skipped",
]


def test_first_import_counts_and_rows():
    staff = StaffFactory()
    report = oneroster_import(source=BULK, user=staff)

    assert report.counts == FIRST_IMPORT
    assert report.warnings == FIRST_WARNINGS
    assert report.dry_run is False
    district = District.objects.get(sourced_id="org-rusd")
    assert district.name == "Riverbend Unified School District"
    assert report.district == district
    assert set(School.objects.values_list("sourced_id", "district__sourced_id", "identifier")) == {
        ("org-rms", "org-rusd", "041"),
        ("org-rhs", "org-rusd", "042"),
    }
    fall = Term.objects.get(sourced_id="as-2027-t1")
    assert (fall.kind, fall.start_date, fall.parent.sourced_id, fall.school_year) == (
        Term.Kind.TERM,
        datetime.date(2026, 8, 24),
        "as-2027",
        2027,
    )
    assert Term.objects.get(sourced_id="as-2027").kind == Term.Kind.SCHOOL_YEAR
    biology = Course.objects.get(sourced_id="crs-bio")
    assert (biology.school.sourced_id, biology.grades, biology.subjects) == (
        "org-rhs",
        ["09", "10"],
        ["Science"],
    )
    assert Course.objects.get(sourced_id="crs-math7").school is None
    period_three = Section.objects.get(sourced_id="cls-math7-p3")
    # the first of termSourcedIds is the section's term
    assert (period_three.term.sourced_id, period_three.code, period_three.location) == (
        "as-2027-t1",
        "MATH7-03",
        "Room 112",
    )

    roles = dict(User.objects.exclude(pk=staff.pk).values_list("sourced_id", "role"))
    assert roles["usr-t-001"] == roles["usr-t-003"] == User.Role.TEACHER  # teacher and aide
    assert roles["usr-a-001"] == User.Role.DISTRICT_STAFF
    assert sum(role == User.Role.STUDENT for role in roles.values()) == 12
    assert "usr-g-001" not in roles
    administrator = User.objects.get(sourced_id="usr-a-001")
    assert (administrator.is_staff, administrator.is_superuser, administrator.has_usable_password()) == (
        False,
        False,
        False,
    )
    assert User.objects.get(sourced_id="usr-s-012").username == "usr-s-012"  # blank username
    assert User.objects.get(sourced_id="usr-s-011").is_active is False  # enabledUser false
    student = User.objects.get(sourced_id="usr-s-001")
    assert (student.username, student.first_name, student.last_name, student.grades, student.district) == (
        "ava.johnson",
        "Ava",
        "Johnson",
        ["07"],
        district,
    )
    assert student.history.count() == 1

    aide = Enrollment.objects.get(sourced_id="enr-t-003-p1")
    assert (aide.role, aide.is_primary, aide.section.sourced_id) == ("teacher", False, "cls-math7-p1")
    assert Enrollment.objects.get(sourced_id="enr-t-001-p1").end_date == datetime.date(2027, 6, 11)
    assert not Enrollment.objects.filter(sourced_id="enr-s-008-old").exists()

    run = ImportRun.objects.get()
    assert (run.kind, run.status, run.source_name, run.started_by, run.district) == (
        ImportRun.Kind.ONEROSTER,
        ImportRun.Status.APPLIED,
        "district_bulk",
        staff,
        district,
    )
    assert run.counts == FIRST_IMPORT
    assert run.warnings == FIRST_WARNINGS
    assert report.import_run == run


def test_second_import_of_the_same_package_changes_nothing():
    oneroster_import(source=BULK)
    runs_before = ImportRun.objects.count()
    before = {name: rows for name, rows in snapshot().items() if name != "ImportRun"}

    report = oneroster_import(source=BULK)

    assert report.counts == SECOND_IMPORT
    after = {name: rows for name, rows in snapshot().items() if name != "ImportRun"}
    assert after == before
    assert ImportRun.objects.count() == runs_before + 1


def test_zip_path_zip_bytes_and_a_top_folder_import_alike(tmp_path):
    path_report = oneroster_import(source=zip_folder(BULK, tmp_path / "roster.zip"), dry_run=True)
    bytes_report = oneroster_import(source=zip_bytes(BULK, top_folder="export-2026-07-01"), dry_run=True)

    assert path_report.counts == bytes_report.counts == FIRST_IMPORT
    assert path_report.source_name == "roster.zip"


def test_delta_updates_only_the_rows_present():
    oneroster_import(source=BULK)

    report = oneroster_import(source=DELTA)

    assert report.counts == {
        "districts": counts(),
        "schools": counts(),
        "terms": counts(),
        "courses": counts(),
        "sections": counts(deactivated=1),
        "users": counts(updated=1),
        "enrollments": counts(created=1),
    }
    assert report.warnings == []
    renamed = User.objects.get(sourced_id="usr-s-003")
    assert renamed.last_name == "Brown-Keller"
    assert renamed.history.count() == 2
    period_three = Section.objects.get(sourced_id="cls-math7-p3")
    assert period_three.is_active is False
    assert period_three.enrollments.count() == 5  # deactivated, never deleted
    assert Enrollment.objects.get(sourced_id="enr-s-005-p1").section.sourced_id == "cls-math7-p1"
    assert User.objects.filter(sourced_id__isnull=False).count() == 16

    assert oneroster_import(source=DELTA).counts["sections"] == counts(unchanged=1)


def test_tobedeleted_deactivates_and_an_active_row_reactivates(tmp_path):
    oneroster_import(source=BULK)
    package = copy_package(tmp_path)
    set_cell(package, "enrollments.csv", 6, "status", "tobedeleted")  # enr-s-001
    set_cell(package, "users.csv", 6, "status", "tobedeleted")  # usr-s-001

    report = oneroster_import(source=package)

    assert report.counts["enrollments"] == counts(unchanged=15, deactivated=1)
    assert report.counts["users"] == counts(unchanged=15, deactivated=1)
    assert Enrollment.objects.get(sourced_id="enr-s-001").is_active is False
    assert User.objects.get(sourced_id="usr-s-001").is_active is False
    assert Enrollment.objects.count() == 16

    report = oneroster_import(source=BULK)
    assert report.counts["enrollments"] == counts(updated=1, unchanged=15)
    assert Enrollment.objects.get(sourced_id="enr-s-001").is_active is True


def test_administrator_access_is_not_touched_by_a_re_import():
    oneroster_import(source=BULK)
    User.objects.filter(sourced_id="usr-a-001").update(is_staff=True)

    report = oneroster_import(source=BULK)

    assert report.counts["users"] == counts(unchanged=16)
    assert User.objects.get(sourced_id="usr-a-001").is_staff is True


def test_dry_run_reports_the_real_counts_and_writes_nothing():
    before = snapshot()

    dry = oneroster_import(source=BULK, dry_run=True)

    assert snapshot() == before
    assert dry.dry_run is True
    assert dry.import_run is None
    assert dry.counts == FIRST_IMPORT
    assert dry.counts == oneroster_import(source=BULK).counts


def test_dry_run_of_a_delta_matches_the_applied_delta():
    oneroster_import(source=BULK)
    before = snapshot()

    dry = oneroster_import(source=DELTA, dry_run=True)

    assert snapshot() == before
    assert dry.counts == oneroster_import(source=DELTA).counts


def test_unknown_class_names_file_and_row_and_writes_nothing(tmp_path):
    package = copy_package(tmp_path)
    set_cell(package, "enrollments.csv", 4, "classSourcedId", "cls-999")
    before = table_counts()

    with pytest.raises(RosterImportError) as raised:
        oneroster_import(source=package)

    assert raised.value.messages == ["enrollments.csv row 4: class 'cls-999' does not exist"]
    assert table_counts() == before


def test_every_bad_row_is_reported_at_once(tmp_path):
    package = copy_package(tmp_path)
    set_cell(package, "enrollments.csv", 4, "classSourcedId", "cls-999")
    set_cell(package, "enrollments.csv", 7, "userSourcedId", "usr-nobody")
    set_cell(package, "enrollments.csv", 8, "userSourcedId", "usr-g-001")
    set_cell(package, "classes.csv", 3, "courseSourcedId", "crs-none")

    with pytest.raises(RosterImportError) as raised:
        oneroster_import(source=package)

    assert raised.value.messages == [
        "classes.csv row 3: course 'crs-none' does not exist",
        "enrollments.csv row 4: class 'cls-999' does not exist",
        "enrollments.csv row 7: user 'usr-nobody' does not exist",
        "enrollments.csv row 8: user 'usr-g-001' is a guardian, who is not imported",
    ]
    assert table_counts()["User"] == 0


def test_a_username_taken_by_another_person_is_refused(tmp_path):
    StudentFactory(username="mgarcia")
    before = table_counts()

    with pytest.raises(RosterImportError) as raised:
        oneroster_import(source=BULK)

    assert raised.value.messages == ["users.csv row 2: username 'mgarcia' belongs to another user"]
    assert table_counts() == before


def test_an_enrollment_repeating_a_stored_one_is_refused(tmp_path):
    oneroster_import(source=BULK)
    package = copy_package(tmp_path)
    set_cell(package, "enrollments.csv", 6, "sourcedId", "enr-s-001-again")

    with pytest.raises(RosterImportError) as raised:
        oneroster_import(source=package)

    assert raised.value.messages == [
        "enrollments.csv row 6: user 'usr-s-001' is already enrolled in class 'cls-math7-p1' as student "
        "(enrollment 'enr-s-001')"
    ]


def test_a_package_without_a_district_org_reuses_the_only_district(tmp_path):
    package = copy_package(tmp_path)
    set_cell(package, "orgs.csv", 2, "type", "local")
    existing = District.objects.create(name="Riverbend USD")

    report = oneroster_import(source=package)

    assert report.counts["districts"] == counts()
    assert set(School.objects.values_list("district", flat=True)) == {existing.pk}
    assert User.objects.get(sourced_id="usr-a-001").district == existing
    assert report.district == existing
    assert any("no district org" in warning for warning in report.warnings)


def test_a_package_without_any_district_creates_one_named_after_the_source(tmp_path):
    package = copy_package(tmp_path)
    set_cell(package, "orgs.csv", 2, "type", "local")
    District.objects.create(name="Elsewhere")
    District.objects.create(name="Somewhere else")

    report = oneroster_import(source=package, source_name="riverbend.zip")
    again = oneroster_import(source=package, source_name="riverbend.zip")

    assert report.counts["districts"] == counts(created=1)
    assert again.counts["districts"] == counts()
    assert report.district == again.district
    assert report.district.name == "riverbend"


@pytest.mark.parametrize("extra_students", [0, 24])
def test_import_query_count_does_not_grow_with_rows(django_assert_num_queries, tmp_path, extra_students):
    """12 or 36 students: the same queries. Bound: one more write per table per 500 rows (a batch)."""
    package = copy_package(tmp_path)
    add_students(package, extra_students)
    # 7 lookups by sourcedId and 1 username check, one bulk write per table (terms: one per level of the
    # session tree; users: + their history), the ImportRun, and the savepoints around them.
    with django_assert_num_queries(FIRST_IMPORT_QUERIES[connection.vendor]):
        oneroster_import(source=package)
    # The same package again: the lookups, the ImportRun, its audit event and the savepoints only.
    with django_assert_num_queries(SECOND_IMPORT_QUERIES[connection.vendor]):
        oneroster_import(source=package)


FIRST_IMPORT_QUERIES = {"sqlite": 21, "postgresql": 21}
SECOND_IMPORT_QUERIES = {"sqlite": 12, "postgresql": 12}
