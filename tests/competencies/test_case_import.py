"""CASE import: exact counts per fixture, idempotent re-import, round trip, lenient reading, bad files.

The helpers at the top are shared with the other catalog test modules.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError

from competencies.models import CaseAssociation, Competency, Framework, Prerequisite
from competencies.services import CatalogImportError, framework_export_case, framework_import_case
from roster.models import ImportRun
from tests.factories import DistrictFactory, StaffFactory

CASE_DIR = Path(__file__).resolve().parent.parent / "data" / "case"
CASE_FIXTURES = sorted(path.name for path in CASE_DIR.glob("*.json"))
SAMPLE_16 = "opensalt_docs-sample_what-standards-could-be_16items.json"
ACT_28 = "opensalt_test-fixture_ACT-holistic-math-Ordering_28items.json"
SMART_14 = "opensalt_test-fixture_SmartLevelFramework_14items.json"
MARKDOWN_2 = "opensalt_test-fixture_MarkdownFramework_2items.json"
# items, isChildOf associations, precedes associations: the numbers in the fixture README.
EXPECTED_COUNTS = {SAMPLE_16: (16, 16, 3), ACT_28: (28, 28, 0), SMART_14: (14, 14, 0), MARKDOWN_2: (2, 2, 0)}


def fixture_bytes(name: str) -> bytes:
    return (CASE_DIR / name).read_bytes()


def load_fixture(name: str) -> dict:
    return json.loads(fixture_bytes(name))


def database_snapshot() -> dict[str, int]:
    """Row counts of every catalog table (history tables included) and of import runs."""
    counts = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_app_config("competencies").get_models()
    }
    counts["roster.ImportRun"] = ImportRun.objects.count()
    return counts


def file_counts(package: dict) -> tuple[int, int, int, int]:
    """(items, isChildOf, precedes, precedes between two items of the package) counted from a file."""
    package = package.get("CFPackage", package)
    items = {item["identifier"] for item in package["CFItems"]}
    associations = package["CFAssociations"]
    precedes = [association for association in associations if association["associationType"] == "precedes"]
    internal = [
        association
        for association in precedes
        if association["originNodeURI"]["identifier"] in items
        and association["destinationNodeURI"]["identifier"] in items
    ]
    child_of = sum(1 for association in associations if association["associationType"] == "isChildOf")
    return len(package["CFItems"]), child_of, len(precedes), len(internal)


def competency_rows(framework: Framework) -> list[tuple]:
    return list(
        Competency.objects.filter(framework=framework)
        .order_by("identifier")
        .values_list(
            "identifier",
            "parent__identifier",
            "position",
            "code",
            "statement",
            "abbreviated_statement",
            "item_type",
            "education_levels",
            "list_enumeration",
            "language",
            "notes",
            "uri",
            "last_change_date_time",
            "child_association_identifier",
            "case_extra",
        )
    )


def catalog_rows(framework: Framework) -> dict[str, list]:
    framework.refresh_from_db()
    return {
        "framework": [
            (
                framework.identifier,
                framework.title,
                framework.uri,
                framework.creator,
                framework.case_extra,
                framework.last_change_date_time,
                framework.adoption_status,
            )
        ],
        "competencies": competency_rows(framework),
        "prerequisites": sorted(
            Prerequisite.objects.filter(competency__framework=framework).values_list(
                "identifier", "prerequisite__identifier", "competency__identifier"
            )
        ),
        "associations": sorted(
            CaseAssociation.objects.filter(framework=framework).values_list(
                "identifier",
                "association_type",
                "origin_identifier",
                "origin_uri",
                "origin_title",
                "destination_identifier",
                "destination_uri",
                "destination_title",
                "sequence_number",
                "last_change_date_time",
                "case_extra",
                "uri",
            )
        ),
    }


pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", CASE_FIXTURES)
def test_import_stores_exactly_the_file(name):
    items, child_of, precedes, internal_precedes = file_counts(load_fixture(name))
    assert (items, child_of, precedes) == EXPECTED_COUNTS[name]

    report = framework_import_case(source=fixture_bytes(name), source_name=name)

    framework = report.framework
    assert Competency.objects.filter(framework=framework).count() == items
    assert (
        Competency.objects.filter(framework=framework).exclude(child_association_identifier=None).count()
        == child_of
    )
    assert Prerequisite.objects.filter(competency__framework=framework).count() == internal_precedes
    external_precedes = CaseAssociation.objects.filter(
        framework=framework, association_type="precedes"
    ).count()
    assert internal_precedes + external_precedes == precedes
    assert report.counts["competencies"] == {"created": items, "updated": 0, "unchanged": 0}
    assert report.counts["prerequisites"]["created"] == internal_precedes
    run = ImportRun.objects.get()
    assert (run.kind, run.status, run.source_name) == ("case", "applied", name)
    assert run.counts == report.counts


def test_sample_16_literal_numbers():
    report = framework_import_case(source=fixture_bytes(SAMPLE_16))
    framework = report.framework
    assert framework.title == "What Standards Could Be"
    assert framework.competencies.count() == 16
    # Two precedes join items of the package; the third points outside it and is kept as a reference.
    assert Prerequisite.objects.filter(competency__framework=framework).count() == 2
    by_type = {
        kind: CaseAssociation.objects.filter(framework=framework, association_type=kind).count()
        for kind in ("exactMatchOf", "precedes", "exemplar", "isRelatedTo", "isChildOf")
    }
    assert by_type == {"exactMatchOf": 16, "precedes": 1, "exemplar": 2, "isRelatedTo": 2, "isChildOf": 0}
    external = CaseAssociation.objects.get(identifier="74cf8429-f361-42a9-ad7b-c313ce9a38b9")
    assert external.destination_identifier == "61a66013-f85c-59c7-bdba-a2c9030e1c21"
    edge = Prerequisite.objects.get(identifier="a8710e99-67e8-4516-85b6-4ae8cc6dfc24")
    assert (edge.prerequisite.code, edge.competency.code) == (
        "CCSS.Math.Content.6.RP.A.3",
        "CCSS.Math.Content.7.RP.A.3",
    )
    # Lenient reading: legacy educationalLevel, naive datetimes read as UTC, definitions kept.
    cluster = Competency.objects.get(identifier="edfce0e7-dbbf-40d5-af1a-baccabef85e9")
    assert cluster.education_levels == ["06"]
    assert cluster.last_change_date_time.isoformat() == "2017-05-25T18:05:33+00:00"
    assert [entry["title"] for entry in framework.case_extra["CFDefinitions"]["CFItemTypes"]] == [
        "Cluster",
        "Standard",
        "Component",
    ]
    assert report.counts["associations"] == {"created": 21, "updated": 0, "unchanged": 0}


@pytest.mark.parametrize("name", CASE_FIXTURES)
def test_second_import_changes_nothing(name):
    framework_import_case(source=fixture_bytes(name))
    rows_before = catalog_rows(Framework.objects.get())

    report = framework_import_case(source=fixture_bytes(name))

    assert (report.created, report.updated) == (0, 0)
    assert (
        report.unchanged
        == 1
        + sum(1 for _ in Competency.objects.all())
        + Prerequisite.objects.count()
        + CaseAssociation.objects.count()
    )
    assert catalog_rows(Framework.objects.get()) == rows_before
    assert ImportRun.objects.count() == 2


@pytest.mark.parametrize("name", CASE_FIXTURES)
def test_import_export_import_round_trips(name):
    framework = framework_import_case(source=fixture_bytes(name)).framework
    rows_before = catalog_rows(framework)
    history_before = database_snapshot()

    exported = framework_export_case(framework=framework)
    report = framework_import_case(source=json.dumps(exported))

    assert (report.created, report.updated) == (0, 0)
    assert catalog_rows(framework) == rows_before
    history_after = database_snapshot()
    history_after["roster.ImportRun"] -= 1
    assert history_after == history_before


@pytest.mark.parametrize(("name", "max_depth"), [(SAMPLE_16, 3), (ACT_28, 5), (SMART_14, 2), (MARKDOWN_2, 1)])
def test_tree_depth_and_sibling_order_follow_the_file(name, max_depth):
    package = load_fixture(name)
    framework = framework_import_case(source=package).framework

    tree = list(
        Competency.objects.with_tree_fields()
        .tree_filter(framework=framework)
        .order_siblings_by("position", "pk")
    )
    # tree_depth counts from 0 at the roots; the README counts levels below the document.
    assert max(node.tree_depth for node in tree) + 1 == max_depth

    parent_of = {}
    sequence_of = {}
    document = package["CFDocument"]["identifier"]
    for index, association in enumerate(package["CFAssociations"]):
        if association["associationType"] == "isChildOf":
            parent = association["destinationNodeURI"]["identifier"]
            child = association["originNodeURI"]["identifier"]
            parent_of[child] = None if parent == document else parent
            number = association.get("sequenceNumber")
            sequence_of[child] = (0, int(number), index) if number not in (None, "") else (1, 0, index)
    for node in tree:
        expected_parent = parent_of[str(node.identifier)]
        assert (str(node.parent.identifier) if node.parent else None) == expected_parent
    siblings: dict = {}
    for node in tree:
        siblings.setdefault(node.parent_id, []).append(node)
    for group in siblings.values():
        assert [node.position for node in group] == list(range(len(group)))
        assert [str(node.identifier) for node in group] == sorted(
            (str(node.identifier) for node in group), key=lambda identifier: sequence_of[identifier]
        )


def test_sequence_numbers_order_siblings_and_unnumbered_follow_in_file_order():
    package = load_fixture(SAMPLE_16)
    framework = framework_import_case(source=package).framework
    roots = list(Competency.objects.filter(framework=framework, parent=None).order_by("position"))
    # "1" and "2" as strings in the file.
    assert [root.code for root in roots] == ["CCSS.Math.Content.6.RP.A", "CCSS.Math.Content.7.RP.A"]
    children = list(roots[0].children.order_by("position").values_list("code", flat=True))
    assert children == [
        "CCSS.Math.Content.6.RP.A.1",
        "CCSS.Math.Content.6.RP.A.2",
        "CCSS.Math.Content.6.RP.A.3",
    ]


def test_sequence_number_reorders_siblings_on_reimport():
    package = load_fixture(SMART_14)
    framework = framework_import_case(source=package).framework
    roots_before = list(Competency.objects.filter(framework=framework, parent=None).order_by("position"))
    child_of = [a for a in package["CFAssociations"] if a["associationType"] == "isChildOf"]
    root_links = [
        a for a in child_of if a["destinationNodeURI"]["identifier"] == package["CFDocument"]["identifier"]
    ]
    assert len(root_links) >= 2
    # Number the roots in reverse file order.
    for number, association in enumerate(reversed(root_links), start=1):
        association["sequenceNumber"] = number
    report = framework_import_case(source=package)
    roots_after = list(Competency.objects.filter(framework=framework, parent=None).order_by("position"))
    assert [root.pk for root in roots_after] == [root.pk for root in reversed(roots_before)]
    moved = sum(1 for index in range(len(root_links)) if index != len(root_links) - 1 - index)
    assert report.counts["competencies"]["updated"] == moved


def test_wrapped_package_and_lenient_fields():
    package = load_fixture(MARKDOWN_2)
    item = package["CFItems"][0]
    item["educationLevel"] = "07, 08"
    item["lastChangeDateTime"] = "2017-08-23 23:48:01"
    for association in package["CFAssociations"]:
        association["originNodeURI"] = association["originNodeURI"]["uri"]
        association["sequenceNumber"] = "3"
    package["CFItems"][1].pop("humanCodingScheme")
    extra = {
        "identifier": str(uuid.uuid4()),
        "uri": "local:ref",
        "associationType": "ext:hasLesson",
        "originNodeURI": {"title": "MD.Table", "identifier": item["identifier"], "uri": item["uri"]},
        "destinationNodeURI": "urn:lesson:42",
        "lastChangeDateTime": "2020-01-01T00:00:00",
    }
    package["CFAssociations"].append(extra)

    report = framework_import_case(source={"CFPackage": package})

    competency = Competency.objects.get(identifier=item["identifier"])
    assert competency.education_levels == ["07", "08"]
    assert competency.last_change_date_time.isoformat() == "2017-08-23T23:48:01+00:00"
    assert Competency.objects.filter(parent=None).count() == 2
    kept = CaseAssociation.objects.get(identifier=extra["identifier"])
    assert (kept.association_type, kept.destination_identifier, kept.destination_uri) == (
        "ext:hasLesson",
        "urn:lesson:42",
        "urn:lesson:42",
    )
    assert any("no humanCodingScheme" in warning for warning in report.warnings)
    # Exported and re-imported, the external reference survives unchanged.
    again = framework_import_case(source=framework_export_case(framework=report.framework))
    assert (again.created, again.updated) == (0, 0)


def test_document_uri_as_object_or_string_and_wrapped_bytes():
    package = load_fixture(ACT_28)  # CFDocumentURI objects
    report = framework_import_case(source=json.dumps({"CFPackage": package}).encode())
    assert report.framework.competencies.count() == 28


def test_dry_run_counts_exactly_and_writes_nothing():
    before = database_snapshot()
    report = framework_import_case(source=fixture_bytes(SAMPLE_16), dry_run=True)
    assert report.dry_run is True
    assert report.framework is None
    assert report.counts["competencies"] == {"created": 16, "updated": 0, "unchanged": 0}
    assert report.counts["associations"]["created"] == 21
    assert database_snapshot() == before

    framework_import_case(source=fixture_bytes(SAMPLE_16))
    after_import = database_snapshot()
    changed = load_fixture(SAMPLE_16)
    changed["CFItems"][0]["fullStatement"] = "A new statement."
    report = framework_import_case(source=changed, dry_run=True)
    assert report.framework == Framework.objects.get()
    assert report.counts["competencies"] == {"created": 0, "updated": 1, "unchanged": 15}
    assert database_snapshot() == after_import


def test_import_run_records_user_and_district_and_history_user():
    staff = StaffFactory()
    district = DistrictFactory()
    report = framework_import_case(source=fixture_bytes(MARKDOWN_2), user=staff, district=district)
    run = ImportRun.objects.get()
    assert (run.started_by, run.district) == (staff, district)
    assert report.framework.district == district
    history = Competency.history.filter(identifier="a5eafca0-b8df-11e7-8d17-8dc52d8205bc").get()
    assert history.history_user == staff
    assert history.history_type == "+"


def test_reimport_of_a_newer_version_updates_in_place_and_keeps_absent_items():
    framework = framework_import_case(source=fixture_bytes(SAMPLE_16)).framework
    pks = dict(Competency.objects.values_list("identifier", "pk"))
    newer = load_fixture(SAMPLE_16)
    newer["CFItems"][0]["fullStatement"] = "Understand ratio concepts (2nd edition)."
    removed = newer["CFItems"].pop()
    newer["CFAssociations"] = [
        association
        for association in newer["CFAssociations"]
        if removed["identifier"]
        not in (association["originNodeURI"]["identifier"], association["destinationNodeURI"]["identifier"])
    ]

    report = framework_import_case(source=newer)

    assert report.counts["competencies"] == {"created": 0, "updated": 1, "unchanged": 14}
    assert dict(Competency.objects.values_list("identifier", "pk")) == pks
    assert Competency.objects.get(identifier=newer["CFItems"][0]["identifier"]).statement.endswith(
        "(2nd edition)."
    )
    assert any("not in the file and were kept" in warning for warning in report.warnings)
    assert framework.competencies.count() == 16
    updated_history = Competency.history.filter(identifier=newer["CFItems"][0]["identifier"]).order_by(
        "history_id"
    )
    assert [entry.history_type for entry in updated_history] == ["+", "~"]


def _bad_sample_with_precedes_cycle() -> dict:
    package = load_fixture(SAMPLE_16)
    reverse = {
        "identifier": "11111111-2222-4333-8444-555555555555",
        "uri": "http://example.org/cycle",
        "associationType": "precedes",
        # 7.RP.A.3 before 6.RP.A.3, while the file already says 6.RP.A.3 precedes 7.RP.A.3.
        "originNodeURI": {"title": "x", "identifier": "693cfbbf-26bc-4e91-87ef-1badd646b720", "uri": "x"},
        "destinationNodeURI": {
            "title": "y",
            "identifier": "d83a65ed-770c-4dbe-a505-11e5e17a9a79",
            "uri": "y",
        },
        "lastChangeDateTime": "2017-06-06T19:42:36",
    }
    package["CFAssociations"].append(reverse)
    return package


def _bad_missing_parent() -> dict:
    package = load_fixture(ACT_28)
    package["CFAssociations"][3]["destinationNodeURI"]["identifier"] = "99999999-9999-4999-8999-999999999999"
    return package


def _bad_item_without_statement() -> dict:
    package = load_fixture(SMART_14)
    package["CFItems"][4]["fullStatement"] = ""
    return package


def _bad_non_uuid_identifier() -> dict:
    package = load_fixture(MARKDOWN_2)
    package["CFItems"][0]["identifier"] = "MD-TABLE-1"
    return package


def _bad_no_document() -> dict:
    package = load_fixture(MARKDOWN_2)
    del package["CFDocument"]
    return package


def _bad_child_of_cycle() -> dict:
    package = load_fixture(SMART_14)
    items = package["CFItems"]
    first, second = items[0], items[1]
    for association in package["CFAssociations"]:
        origin = association["originNodeURI"]["identifier"]
        if origin == first["identifier"]:
            association["destinationNodeURI"] = {"title": "", "identifier": second["identifier"], "uri": ""}
        elif origin == second["identifier"]:
            association["destinationNodeURI"] = {"title": "", "identifier": first["identifier"], "uri": ""}
    return package


def _bad_document_identifier_and_parent() -> dict:
    """Neither the document's identifier nor an isChildOf parent is a UUID (found by hypothesis: the
    two unreadable identifiers compared equal and the import crashed instead of refusing)."""
    package = load_fixture(ACT_28)
    package["CFDocument"]["identifier"] = "DOC"
    package["CFAssociations"][3]["destinationNodeURI"]["identifier"] = "PARENT"
    return package


BAD_FILES = {
    "document and parent not uuids": (_bad_document_identifier_and_parent, "'PARENT'"),
    "broken json": (lambda: fixture_bytes(SAMPLE_16)[:-200], "not valid JSON"),
    "precedes cycle": (
        _bad_sample_with_precedes_cycle,
        "CCSS.Math.Content.6.RP.A.3 -> CCSS.Math.Content.7.RP.A.3 -> CCSS.Math.Content.6.RP.A.3",
    ),
    "missing parent": (_bad_missing_parent, "99999999-9999-4999-8999-999999999999"),
    "item without statement": (_bad_item_without_statement, "00000000-0000-0000-0000-000000000005"),
    "non-uuid identifier": (_bad_non_uuid_identifier, "MD-TABLE-1"),
    "no document": (_bad_no_document, "no CFDocument"),
    "isChildOf cycle": (_bad_child_of_cycle, "isChildOf cycle"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_naming_the_object_and_writes_nothing(case):
    framework_import_case(source=fixture_bytes(MARKDOWN_2))  # something already in the database
    before = database_snapshot()
    build, expected = BAD_FILES[case]
    source = build()

    with pytest.raises(CatalogImportError) as error:
        framework_import_case(source=source)

    assert any(expected in message for message in error.value.messages), error.value.messages
    assert database_snapshot() == before


def test_missing_parent_message_names_the_item():
    with pytest.raises(CatalogImportError) as error:
        framework_import_case(source=_bad_missing_parent())
    message = error.value.messages[0]
    assert "isChildOf association" in message
    assert "neither the CFDocument nor an item of the package" in message


def test_identifier_owned_by_another_framework_is_an_error():
    framework_import_case(source=fixture_bytes(MARKDOWN_2))
    before = database_snapshot()
    other = load_fixture(MARKDOWN_2)
    other["CFDocument"]["identifier"] = "dddddddd-0000-4000-8000-000000000000"
    for association in other["CFAssociations"]:
        association["destinationNodeURI"]["identifier"] = "dddddddd-0000-4000-8000-000000000000"
    with pytest.raises(CatalogImportError) as error:
        framework_import_case(source=other)
    assert (
        "CFItem a5eafca0-b8df-11e7-8d17-8dc52d8205bc (MD.Math): the identifier already belongs to framework"
        in error.value.messages[0]
    )
    assert database_snapshot() == before


def test_precedes_cycle_with_kept_prerequisite_is_refused():
    """An edge kept from an earlier version counts: the new file may not close a cycle through it."""
    framework_import_case(source=fixture_bytes(SAMPLE_16))
    newer = load_fixture(SAMPLE_16)
    newer["CFAssociations"] = [
        association
        for association in newer["CFAssociations"]
        if association["identifier"] != "a8710e99-67e8-4516-85b6-4ae8cc6dfc24"
    ]
    newer["CFAssociations"].append(copy.deepcopy(_bad_sample_with_precedes_cycle()["CFAssociations"][-1]))
    before = database_snapshot()
    with pytest.raises(CatalogImportError) as error:
        framework_import_case(source=newer)
    assert "would form a cycle" in error.value.messages[0]
    assert "CCSS.Math.Content.7.RP.A.3" in error.value.messages[0]
    assert database_snapshot() == before


def test_command_prints_counts(capsys):
    call_command("import_case", str(CASE_DIR / SAMPLE_16))
    output = capsys.readouterr().out
    assert "competencies: 16 created, 0 updated, 0 unchanged" in output
    call_command("import_case", str(CASE_DIR / SAMPLE_16))
    output = capsys.readouterr().out
    assert "competencies: 0 created, 0 updated, 16 unchanged" in output
    assert "total: 0 created, 0 updated" in output


def test_command_dry_run_writes_nothing(capsys):
    before = database_snapshot()
    call_command("import_case", str(CASE_DIR / ACT_28), "--dry-run")
    assert "competencies: 28 created" in capsys.readouterr().out
    assert database_snapshot() == before


def test_command_on_bad_file_exits_1_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_bad_item_without_statement()))
    before = database_snapshot()
    with pytest.raises(CommandError) as error:
        call_command("import_case", str(bad))
    assert error.value.returncode == 1
    assert "00000000-0000-0000-0000-000000000005" in str(error.value)
    assert "no fullStatement" in str(error.value)
    assert database_snapshot() == before
