"""Hostile OneRoster packages fed to ``oneroster_import``: random bytes, broken zips, and the valid
district package with random cells, rows, files and headers broken. Every one imports or is refused
with ``RosterImportError`` messages naming the file (and row), and a refused one writes nothing."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roster import services
from roster.services import RosterImportError
from tests.faults.hostile import TRIED, assert_clear, row_counts

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

DATA = Path(__file__).resolve().parents[1] / "data" / "oneroster" / "district_bulk"
FILES = {path.name: path.read_text(encoding="utf-8-sig") for path in sorted(DATA.glob("*.csv"))}
RECORDS = {name: list(csv.reader(io.StringIO(text))) for name, text in FILES.items()}
NAMES = sorted(FILES)

hostile_cells = st.sampled_from(
    [
        "",
        "tobedeleted",
        "active",
        "student",
        "teacher",
        "administrator",
        "2027-02-30",
        "2026-08-24",
        "not a date",
        "true",
        "maybe",
        "usr-t-001",
        "cls-math7-p1",
        "org-rms",
        "as-2027-t1",
        "as-2027-t1,missing-term",
        "=cmd|' /C calc'!A0",
        "<img src=x onerror=alert(1)>",
        "x" * 3000,
        "bulk",
        "delta",
        "absent",
    ]
) | st.text(max_size=30)


def package(records: dict[str, list[list[str]]], raw: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, rows in records.items():
            text = io.StringIO()
            csv.writer(text).writerows(rows)
            archive.writestr(name, text.getvalue())
        for name, data in (raw or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def import_or_refuse(source: bytes, label: str) -> str:
    before = row_counts()
    try:
        services.oneroster_import(source=source, source_name="fuzz.zip")
    except RosterImportError as error:
        assert_clear(error.messages)
        assert row_counts() == before  # never a partial import
        outcome = "refused"
    else:
        outcome = "imported"
    TRIED[(f"OneRoster ({label})", outcome)] += 1
    return outcome


edits = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        st.integers(0, 1000),
        st.integers(0, 1000),
        st.sampled_from(["cell", "cell", "cell", "drop row", "duplicate row", "short row", "drop file"]),
        hostile_cells,
    ),
    min_size=1,
    max_size=6,
)


def edited(edit_list) -> dict[str, list[list[str]]]:
    records = {name: [list(row) for row in rows] for name, rows in RECORDS.items()}
    for name, row_pick, column_pick, operation, value in edit_list:
        rows = records.get(name)
        if not rows:
            continue
        row = rows[row_pick % len(rows)]
        if operation == "cell" and row:
            row[column_pick % len(row)] = value
        elif operation == "drop row":
            rows.pop(row_pick % len(rows))
        elif operation == "duplicate row":
            rows.append(list(row))
        elif operation == "short row" and row:
            del row[column_pick % len(row) :]
        elif operation == "drop file":
            del records[name]
    return records


@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused_as_not_a_zip(data):
    assert import_or_refuse(data, "random bytes") == "refused"


@given(edit_list=edits)
def test_the_district_package_with_random_edits_imports_or_is_refused_cleanly(edit_list):
    import_or_refuse(package(edited(edit_list)), "edited package")


@given(name=st.sampled_from(NAMES), data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_one_file_replaced_by_random_bytes_is_refused_or_imported_cleanly(name, data):
    records = {key: rows for key, rows in RECORDS.items() if key != name}
    import_or_refuse(package(records, raw={name: data}), "random file")


@given(cut=st.integers(1, 2000))
def test_a_truncated_zip_is_refused(cut):
    data = package(RECORDS)
    assert import_or_refuse(data[: cut % len(data)], "truncated zip") == "refused"


def test_an_enrollment_of_an_unknown_user_is_refused_naming_the_file_and_row():
    records = {name: [list(row) for row in rows] for name, rows in RECORDS.items()}
    header = records["enrollments.csv"][0]
    records["enrollments.csv"][2][header.index("userSourcedId")] = "usr-nobody"
    before = row_counts()
    with pytest.raises(RosterImportError) as refused:
        services.oneroster_import(source=package(records), source_name="fuzz.zip")
    assert any(
        "enrollments.csv row 3" in message and "usr-nobody" in message for message in refused.value.messages
    )
    assert row_counts() == before
