"""Hostile framework spreadsheets fed to ``framework_import_csv``: random bytes and text, and a valid
CSV with random cells, rows and headers broken. Every one imports or is refused with messages naming
the row, and a refused one writes nothing."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from competencies import services
from competencies.services import CatalogImportError
from tests.factories import FrameworkFactory
from tests.faults.hostile import TRIED, assert_clear, row_counts

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

DATA = Path(__file__).resolve().parents[1] / "data" / "case"
VALID = (DATA / "opensalt_test-fixture_csv_children.csv").read_text(encoding="utf-8-sig")
RECORDS = list(csv.reader(io.StringIO(VALID)))
#: What a refusal names: a row (the header is row 1), or the file as a whole.
NAMED = re.compile(r"^(row \d+|rows? |the CSV file|the file|.*row \d+)")

hostile_cells = st.sampled_from(
    [
        "",
        " ",
        '=HYPERLINK("http://evil.example")',
        "+cmd|' /C calc'!A0",
        "<script>alert(1)</script>",
        "A.B",
        "A.B.C",
        "x" * 5000,
        "\ufeffA",
        "a\nb",
        'quo"te',
        "-1",
        "99999999999999999999999",
        "NaN",
        "2017-13-45T99:99:99",
        "00000000-0000-0000-0000-000000000000",
        "not-a-uuid",
    ]
) | st.text(max_size=40)


def import_or_refuse(source, label: str) -> str:
    framework = FrameworkFactory()
    before = row_counts()
    try:
        services.framework_import_csv(source=source, framework=framework, source_name="fuzz")
    except CatalogImportError as error:
        assert_clear(error.messages)
        unnamed = [message for message in error.messages if not NAMED.match(message)]
        assert unnamed == [], error.messages
        assert row_counts() == before  # never a partial import
        outcome = "refused"
    else:
        outcome = "imported"
    TRIED[(f"framework CSV ({label})", outcome)] += 1
    return outcome


def _edit(records: list[list[str]], edits: list[tuple[int, int, str, str]]) -> str:
    records = [list(record) for record in records]
    for row_pick, column_pick, operation, value in edits:
        row = records[row_pick % len(records)] if records else None
        if operation == "cell" and row:
            row[column_pick % len(row)] = value
        elif operation == "drop row" and records:
            records.pop(row_pick % len(records))
        elif operation == "duplicate row" and row is not None:
            records.append(list(row))
        elif operation == "short row" and row:
            del row[column_pick % len(row) :]
        elif operation == "long row" and row is not None:
            row.extend([value] * (column_pick % 5 + 1))
    buffer = io.StringIO()
    csv.writer(buffer).writerows(records)
    return buffer.getvalue()


edits = st.lists(
    st.tuples(
        st.integers(0, 1000),
        st.integers(0, 1000),
        st.sampled_from(["cell", "cell", "cell", "drop row", "duplicate row", "short row", "long row"]),
        hostile_cells,
    ),
    min_size=1,
    max_size=6,
)


@given(data=st.binary(max_size=300) | st.text(max_size=300))
def test_random_bytes_and_text_import_or_are_refused_cleanly(data):
    import_or_refuse(data, "random bytes")


@given(edits=edits, as_bytes=st.booleans())
def test_a_valid_spreadsheet_with_random_edits_imports_or_is_refused_cleanly(edits, as_bytes):
    text = _edit(RECORDS, edits)
    import_or_refuse(text.encode() if as_bytes else text, "edited spreadsheet")


@given(edits=edits)
def test_random_cells_in_the_data_rows_only_are_refused_by_row(edits):
    """The header intact, hostile cells in the data rows: any refusal names a row from 2 on."""
    body = _edit(RECORDS[1:], edits)
    header = io.StringIO()
    csv.writer(header).writerow(RECORDS[0])
    import_or_refuse(header.getvalue() + body, "edited rows")


def test_a_row_without_a_statement_is_refused_naming_its_row():
    records = [list(record) for record in RECORDS]
    records[3][1] = ""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(records)
    framework = FrameworkFactory()
    before = row_counts()
    with pytest.raises(CatalogImportError) as refused:
        services.framework_import_csv(source=buffer.getvalue(), framework=framework)
    assert refused.value.messages == ["row 4: fullStatement is empty"]
    assert row_counts() == before
