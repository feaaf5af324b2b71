"""Reading OneRoster 1.1 CSV packages (roster.oneroster) and the import_oneroster command."""

from __future__ import annotations

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import connections

from roster import oneroster
from roster.oneroster import OneRosterError, parse_package
from roster.services import RosterImportError, oneroster_import
from tests.roster.oneroster_helpers import (
    BULK,
    copy_package,
    read_rows,
    set_cell,
    snapshot,
    table_counts,
    write_rows,
    zip_bytes,
    zip_folder,
)


def messages_for(source) -> list[str]:
    with pytest.raises(OneRosterError) as raised:
        parse_package(source)
    return raised.value.messages


def test_the_bulk_fixture_parses_with_bom_and_metadata_columns():
    assert (BULK / "orgs.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    package = parse_package(BULK)

    assert package.modes == dict.fromkeys(oneroster.FILE_NAMES, "bulk")
    assert [org.row.sourced_id for org in package.orgs] == ["org-rusd", "org-rms", "org-rhs"]
    assert package.orgs[2].row.is_deleted is False  # blank status means active
    assert package.classes[0].row.values["metadata.extra"] == "flipped pilot"
    assert package.classes[1].term_sourced_id == "as-2027-t1"
    assert package.users[-1].role == "guardian"
    assert package.enrollments[-1].row.is_deleted is True
    assert package.enrollments[0].row.number == 2  # the header is row 1


def test_header_names_and_enumerations_are_read_leniently(tmp_path):
    package_dir = copy_package(tmp_path)
    rows = read_rows(package_dir, "users.csv")
    rows[0] = [f" {column.upper()} " for column in rows[0]]
    rows[1][rows[0].index(" ROLE ")] = "Teacher"
    write_rows(package_dir, "users.csv", rows)

    package = parse_package(package_dir)

    assert package.users[0].role == "teacher"
    assert package.users[0].username == "mgarcia"


def test_a_zip_with_files_in_a_top_folder(tmp_path):
    package = parse_package(zip_folder(BULK, tmp_path / "export.zip", top_folder="riverbend-2026"))
    assert len(package.users) == 17


def test_a_missing_manifest(tmp_path):
    package_dir = copy_package(tmp_path)
    (package_dir / "manifest.csv").unlink()
    assert messages_for(package_dir) == ["manifest.csv: missing required file"]


def test_a_missing_required_file(tmp_path):
    package_dir = copy_package(tmp_path)
    (package_dir / "enrollments.csv").unlink()
    assert messages_for(package_dir) == [
        "enrollments.csv: missing required file (manifest.csv says file.enrollments is bulk)"
    ]


def test_a_missing_required_column(tmp_path):
    package_dir = copy_package(tmp_path)
    rows = read_rows(package_dir, "classes.csv")
    column = rows[0].index("schoolSourcedId")
    write_rows(package_dir, "classes.csv", [row[:column] + row[column + 1 :] for row in rows])
    assert messages_for(package_dir) == ["classes.csv: missing required column 'schoolSourcedId'"]


def test_an_invalid_date(tmp_path):
    package_dir = copy_package(tmp_path)
    set_cell(package_dir, "academicSessions.csv", 3, "startDate", "2026-02-30")
    set_cell(package_dir, "enrollments.csv", 2, "beginDate", "08/24/2026")
    assert messages_for(package_dir) == [
        "academicSessions.csv row 3: invalid date '2026-02-30' in startDate (expected YYYY-MM-DD)",
        "enrollments.csv row 2: invalid date '08/24/2026' in beginDate (expected YYYY-MM-DD)",
    ]


def test_an_unknown_role(tmp_path):
    package_dir = copy_package(tmp_path)
    set_cell(package_dir, "users.csv", 5, "role", "janitor")
    set_cell(package_dir, "enrollments.csv", 3, "role", "aide")
    assert messages_for(package_dir) == [
        "users.csv row 5: unknown role 'janitor' (expected one of administrator, aide, guardian, parent, "
        "proctor, relative, student, teacher)",
        "enrollments.csv row 3: unknown enrollment role 'aide' (expected one of administrator, proctor, "
        "student, teacher)",
    ]


def test_values_that_cannot_be_read(tmp_path):
    package_dir = copy_package(tmp_path)
    set_cell(package_dir, "academicSessions.csv", 2, "endDate", "2026-08-01")
    set_cell(package_dir, "academicSessions.csv", 3, "type", "quarter")
    set_cell(package_dir, "users.csv", 2, "enabledUser", "maybe")
    set_cell(package_dir, "users.csv", 3, "status", "inactive")
    set_cell(package_dir, "classes.csv", 2, "title", "")
    assert messages_for(package_dir) == [
        "users.csv row 3: status 'inactive' is not active or tobedeleted",
        "academicSessions.csv row 2: endDate 2026-08-01 is before startDate 2026-08-24",
        "academicSessions.csv row 3: unknown session type 'quarter' (expected one of schoolYear, semester, term, "
        "gradingPeriod)",
        "classes.csv row 2: title is blank",
        "users.csv row 2: enabledUser 'maybe' is not true or false",
    ]


def test_a_duplicate_sourced_id_in_one_file(tmp_path):
    package_dir = copy_package(tmp_path)
    set_cell(package_dir, "courses.csv", 3, "sourcedId", "crs-math7")
    assert messages_for(package_dir) == [
        "courses.csv row 3: duplicate sourcedId 'crs-math7' (first on row 2)"
    ]


def test_a_broken_zip(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(zip_bytes(BULK)[:200])
    assert messages_for(broken)[0].startswith("broken.zip: not a valid zip file")
    assert messages_for(b"not a zip at all")[0].startswith("the uploaded file: not a valid zip file")


def test_text_that_is_not_utf8(tmp_path):
    package_dir = copy_package(tmp_path)
    (package_dir / "courses.csv").write_bytes(
        (BULK / "courses.csv").read_bytes().replace(b"Biology", b"Biolog\xeda")
    )
    assert messages_for(package_dir) == ["courses.csv: not UTF-8 text (byte 270)"]


def test_a_delta_manifest_reads_only_its_files(tmp_path):
    package = parse_package(BULK.parent / "district_delta")
    assert package.modes["users"] == "delta"
    assert package.modes["orgs"] == "absent"
    assert package.orgs == []
    assert package.classes[0].row.is_deleted is True


@pytest.mark.django_db
def test_bad_input_through_the_service_writes_nothing(tmp_path):
    package_dir = copy_package(tmp_path)
    set_cell(package_dir, "users.csv", 5, "role", "janitor")
    before = table_counts()
    with pytest.raises(RosterImportError) as raised:
        oneroster_import(source=package_dir)
    assert raised.value.messages[0].startswith("users.csv row 5: unknown role 'janitor'")
    assert table_counts() == before


# The command -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_command_prints_the_counts(capsys):
    call_command("import_oneroster", str(BULK))
    output = capsys.readouterr().out
    assert "users: 16 created, 0 updated, 0 unchanged, 0 deactivated" in output
    assert "enrollments: 16 created, 0 updated, 0 unchanged, 0 deactivated" in output
    assert "Import applied." in output
    assert table_counts()["Enrollment"] == 16


@pytest.mark.django_db
def test_command_dry_run_writes_nothing(capsys):
    before = snapshot()
    call_command("import_oneroster", str(BULK), "--dry-run")
    output = capsys.readouterr().out
    assert "sections: 3 created, 0 updated, 0 unchanged, 0 deactivated" in output
    assert "Dry run: nothing was written." in output
    assert snapshot() == before


@pytest.mark.django_db
def test_command_bad_input_raises_command_error_listing_messages(tmp_path):
    package_dir = copy_package(tmp_path)
    set_cell(package_dir, "enrollments.csv", 4, "classSourcedId", "cls-999")
    before = table_counts()

    with pytest.raises(CommandError) as raised:
        call_command("import_oneroster", str(package_dir))

    assert str(raised.value) == (
        "district_bulk: nothing was imported. Rows are numbered with the header as row 1, so the first data "
        "row is row 2.\n  enrollments.csv row 4: class 'cls-999' does not exist"
    )
    assert table_counts() == before


@pytest.mark.django_db
def test_command_exit_code_is_1_on_bad_input(tmp_path, capsys, monkeypatch):
    package_dir = copy_package(tmp_path)
    set_cell(package_dir, "enrollments.csv", 4, "classSourcedId", "cls-999")
    # run_from_argv closes the connections when it ends; the test's transaction still needs its own.
    monkeypatch.setattr(connections, "close_all", lambda: None)

    with pytest.raises(SystemExit) as raised:
        ManagementUtility(["manage.py", "import_oneroster", str(package_dir)]).execute()

    assert raised.value.code == 1
    assert "enrollments.csv row 4: class 'cls-999' does not exist" in capsys.readouterr().err
    assert table_counts()["User"] == 0
