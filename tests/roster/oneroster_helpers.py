"""Helpers for OneRoster tests: copy the fixture packages, edit one file, zip a folder, count rows."""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from pathlib import Path

from roster.models import Course, District, Enrollment, ImportRun, School, Section, Term, User

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "oneroster"
BULK = FIXTURES / "district_bulk"
DELTA = FIXTURES / "district_delta"


def copy_package(tmp_path: Path, name: str = "district_bulk") -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def read_rows(folder: Path, file_name: str) -> list[list[str]]:
    text = (folder / file_name).read_bytes().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline="")))


def write_rows(folder: Path, file_name: str, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    (folder / file_name).write_text(buffer.getvalue(), encoding="utf-8")


def set_cell(folder: Path, file_name: str, row_number: int, column: str, value: str) -> None:
    """Set one cell; ``row_number`` counts the header as row 1."""
    rows = read_rows(folder, file_name)
    rows[row_number - 1][rows[0].index(column)] = value
    write_rows(folder, file_name, rows)


def zip_folder(folder: Path, target: Path, *, top_folder: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for child in sorted(folder.iterdir()):
            archive.write(child, f"{top_folder}/{child.name}" if top_folder else child.name)
    return target


def zip_bytes(folder: Path, *, top_folder: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for child in sorted(folder.iterdir()):
            archive.write(child, f"{top_folder}/{child.name}" if top_folder else child.name)
    return buffer.getvalue()


def table_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            District,
            School,
            Term,
            Course,
            Section,
            User,
            Enrollment,
            ImportRun,
            User.history.model,
        )
    }


def snapshot() -> dict[str, list[tuple]]:
    """Every roster row's stored values, to compare the database before and after."""
    return {
        model.__name__: sorted(model.objects.values_list(), key=repr)
        for model in (
            District,
            School,
            Term,
            Course,
            Section,
            User,
            Enrollment,
            ImportRun,
            User.history.model,
        )
    }


def add_students(folder: Path, count: int) -> None:
    """Add ``count`` students to the first class of the package, with their enrollments."""
    users = read_rows(folder, "users.csv")
    enrollments = read_rows(folder, "enrollments.csv")
    user_header, enrollment_header = users[0], enrollments[0]
    for number in range(count):
        sourced_id = f"usr-extra-{number:04d}"
        user = dict.fromkeys(user_header, "")
        user.update(
            sourcedId=sourced_id,
            status="active",
            enabledUser="true",
            orgSourcedIds="org-rms",
            role="student",
            username=f"extra.student{number}",
            givenName="Extra",
            familyName=f"Student {number}",
            grades="07",
        )
        users.append([user[column] for column in user_header])
        enrollment = dict.fromkeys(enrollment_header, "")
        enrollment.update(
            sourcedId=f"enr-extra-{number:04d}",
            status="active",
            classSourcedId="cls-math7-p1",
            schoolSourcedId="org-rms",
            userSourcedId=sourced_id,
            role="student",
            primary="false",
        )
        enrollments.append([enrollment[column] for column in enrollment_header])
    write_rows(folder, "users.csv", users)
    write_rows(folder, "enrollments.csv", enrollments)
