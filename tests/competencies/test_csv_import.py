"""Framework CSV import: lenient headers, parents by code or identifier, errors by row number."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from competencies.models import Competency, Prerequisite
from competencies.services import CatalogImportError, framework_export_case, framework_import_csv
from roster.models import ImportRun
from tests.competencies.test_case_import import CASE_DIR, database_snapshot
from tests.factories import FrameworkFactory

pytestmark = pytest.mark.django_db
DOCS_SAMPLE = "opensalt_docs-sample_case.csv"
CHILDREN = "opensalt_test-fixture_csv_children.csv"
CCSSO = "opensalt_test-fixture_csv_ccsso_ela_item.csv"


def csv_bytes(name: str) -> bytes:
    return (CASE_DIR / name).read_bytes()


def data_rows(name: str) -> list[dict]:
    text = csv_bytes(name).decode("utf-8-sig", errors="replace")
    return [
        row
        for row in csv.DictReader(io.StringIO(text))
        if any(value.strip() for value in row.values() if value)
    ]


@pytest.mark.parametrize(("name", "rows"), [(DOCS_SAMPLE, 10), (CHILDREN, 4), (CCSSO, 1189)])
def test_every_row_becomes_one_competency_and_reimport_changes_nothing(name, rows):
    assert len(data_rows(name)) == rows
    framework = FrameworkFactory()

    report = framework_import_csv(source=csv_bytes(name), framework=framework, source_name=name)

    assert framework.competencies.count() == rows
    assert report.counts["competencies"] == {"created": rows, "updated": 0, "unchanged": 0}
    run = ImportRun.objects.get()
    assert (run.kind, run.status, run.source_name) == ("framework_csv", "applied", name)

    again = framework_import_csv(source=csv_bytes(name), framework=framework)
    assert (again.created, again.updated) == (0, 0)
    assert again.counts["competencies"]["unchanged"] == rows


def test_docs_sample_parents_by_code_and_order_by_sequence_number():
    framework = FrameworkFactory()
    framework_import_csv(source=csv_bytes(DOCS_SAMPLE), framework=framework)

    parent_codes = dict(Competency.objects.filter(framework=framework).values_list("code", "parent__code"))
    assert parent_codes == {
        "M": None,
        "M.F": "M",
        "M.F.1-2": "M.F",
        "M.F.1-2.S1": "M.F.1-2",
        "M.F.1-2.S1a": "M.F.1-2.S1",
        "M.F.1-2.S1b": "M.F.1-2.S1",
        "M.F.C2": "M.F",
        "M.F.C2.S1": "M.F.C2",
        "M.E": None,
        "M.E.C1": None,
    }
    fractions = Competency.objects.get(framework=framework, code="M.F")
    assert list(fractions.children.order_by("position").values_list("code", flat=True)) == [
        "M.F.1-2",
        "M.F.C2",
    ]
    top = Competency.objects.get(framework=framework, code="M")
    assert (top.statement, top.notes) == ("Everything about math", "Math")
    # "Math" is not a UUID: a stable one is derived, so the export is still valid CASE.
    framework_export_case(framework=framework)


def test_ccsso_file_uses_smart_level_and_lenient_values():
    framework = FrameworkFactory()
    framework_import_csv(source=csv_bytes(CCSSO), framework=framework)
    item = Competency.objects.get(identifier="7fbbd2fa-885d-11e7-a99d-449ef607a326")
    assert item.code == "L.1.4"
    assert item.item_type == "Standard"
    assert item.education_levels == ["01"]
    assert item.last_change_date_time.isoformat() == "2017-08-23T23:48:01+00:00"
    two_grades = Competency.objects.get(identifier="92443fb6-885d-11e7-bf5c-33321b943ced")
    assert two_grades.education_levels == ["09", "10"]
    rows = data_rows(CCSSO)
    smart_levels = {row["smartLevel"]: row["identifier"] for row in rows}
    expected_children = sum(
        1 for row in rows if "." in row["smartLevel"] and row["smartLevel"].rsplit(".", 1)[0] in smart_levels
    )
    assert expected_children == 1177  # twelve top-level rows (one per grade band) have no parent
    assert Competency.objects.filter(framework=framework).exclude(parent=None).count() == expected_children


def test_header_spellings_and_prerequisites_column():
    source = (
        "humanCodingScheme,fullStatement,Is Child Of,Sequence Number,Prerequisites\n"
        "A,Unit A,,1,\n"
        "A.2,Second,A,2,A.1\n"
        "A.1,First,A,1,\n"
    )
    framework = FrameworkFactory()
    report = framework_import_csv(source=source, framework=framework)
    assert report.counts["prerequisites"]["created"] == 1
    edge = Prerequisite.objects.get()
    assert (edge.prerequisite.code, edge.competency.code) == ("A.1", "A.2")
    unit = Competency.objects.get(code="A")
    assert list(unit.children.order_by("position").values_list("code", flat=True)) == ["A.1", "A.2"]
    # Keyed on the code when there is no identifier column: a re-import updates in place.
    again = framework_import_csv(source=source.replace("Second", "Second revised"), framework=framework)
    assert again.counts["competencies"] == {"created": 0, "updated": 1, "unchanged": 2}
    assert again.counts["prerequisites"] == {"created": 0, "updated": 0, "unchanged": 1}


def test_bad_rows_are_all_reported_by_number_and_nothing_is_written():
    source = (
        "Human Coding Scheme,fullStatement,Is Child Of\n"
        "M,Math,\n"
        "M.1,Fine,M\n"
        "M.2,,M\n"
        "M.3,Orphan,M.X\n"
        "M.4,Also fine,M\n"
        "M.5,Another orphan,M.Y\n"
    )
    framework = FrameworkFactory()
    before = database_snapshot()
    with pytest.raises(CatalogImportError) as error:
        framework_import_csv(source=source, framework=framework)
    assert error.value.messages == [
        "row 4: fullStatement is empty",
        "row 5: parent 'M.X' not found",
        "row 7: parent 'M.Y' not found",
    ]
    assert database_snapshot() == before


def test_prerequisite_cycle_in_csv_is_refused():
    source = "code,fullStatement,Prerequisites\nA,First,B\nB,Second,A\n"
    with pytest.raises(CatalogImportError) as error:
        framework_import_csv(source=source, framework=FrameworkFactory())
    assert "would form a cycle" in error.value.messages[0]
    assert "row 2" in error.value.messages[0] and "row 3" in error.value.messages[0]


def test_dry_run_counts_and_writes_nothing():
    framework = FrameworkFactory()
    before = database_snapshot()
    report = framework_import_csv(source=csv_bytes(DOCS_SAMPLE), framework=framework, dry_run=True)
    assert report.counts["competencies"]["created"] == 10
    assert database_snapshot() == before


def test_command_imports_and_reports_bad_rows(tmp_path, capsys):
    framework = FrameworkFactory()
    call_command(
        "import_framework_csv", str(CASE_DIR / DOCS_SAMPLE), "--framework", str(framework.identifier)
    )
    assert "competencies: 10 created" in capsys.readouterr().out

    bad = tmp_path / "bad.csv"
    bad.write_text("code,fullStatement,Is Child Of\nA,First,\nB,Second,Z\n")
    before = database_snapshot()
    with pytest.raises(CommandError) as error:
        call_command("import_framework_csv", str(bad), "--framework", str(framework.identifier))
    assert error.value.returncode == 1
    assert "row 3: parent 'Z' not found" in str(error.value)
    assert database_snapshot() == before
