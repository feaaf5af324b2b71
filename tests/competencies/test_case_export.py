"""CASE export: strict CASE 1.1 that validates against the official schema, for every fixture."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from competencies.case_format import CaseFormatError, package_schema, validate_package
from competencies.services import framework_export_case, framework_import_case, prerequisite_add
from tests.competencies.test_case_import import (
    CASE_FIXTURES,
    SAMPLE_16,
    file_counts,
    fixture_bytes,
    load_fixture,
)
from tests.factories import CompetencyFactory, FrameworkFactory

pytestmark = pytest.mark.django_db
ZONED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _datetimes(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "lastChangeDateTime":
                yield item
            else:
                yield from _datetimes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _datetimes(item)


@pytest.mark.parametrize("name", CASE_FIXTURES)
def test_export_of_every_fixture_validates_against_the_schema(name):
    framework = framework_import_case(source=fixture_bytes(name)).framework
    package = framework_export_case(framework=framework)

    validator = jsonschema.Draft201909Validator(package_schema(), format_checker=jsonschema.FormatChecker())
    assert list(validator.iter_errors(package)) == []
    validate_package(package)  # our own checker also requires a zone on every date-time
    datetimes = list(_datetimes(package))
    assert datetimes and all(ZONED.match(value) for value in datetimes)

    items, child_of, precedes, _ = file_counts(load_fixture(name))
    exported_items, exported_child_of, exported_precedes, _ = file_counts(package)
    assert (exported_items, exported_child_of, exported_precedes) == (items, child_of, precedes)
    assert all(item["uri"] for item in package["CFItems"])
    assert all(association["uri"] for association in package["CFAssociations"])
    assert package["CFDocument"]["caseVersion"] == "1.1"


def test_export_keeps_the_stored_uris_and_identifiers():
    original = load_fixture(SAMPLE_16)
    framework = framework_import_case(source=original).framework
    package = framework_export_case(framework=framework)

    assert package["CFDocument"]["uri"] == original["CFDocument"]["uri"]
    assert {item["identifier"]: item["uri"] for item in package["CFItems"]} == {
        item["identifier"]: item["uri"] for item in original["CFItems"]
    }
    assert {association["identifier"] for association in package["CFAssociations"]} == {
        association["identifier"] for association in original["CFAssociations"]
    }
    item_types = package["CFDefinitions"]["CFItemTypes"]
    assert [entry["description"] for entry in item_types] == ["", "", ""]  # null in the file, a string here
    assert item_types[0]["lastChangeDateTime"] == "2017-02-14T20:34:39Z"


def test_export_items_in_tree_order_with_sequence_numbers():
    framework = framework_import_case(source=fixture_bytes(SAMPLE_16)).framework
    package = framework_export_case(framework=framework)
    codes = [item.get("humanCodingScheme") for item in package["CFItems"]]
    assert codes[:4] == [
        "CCSS.Math.Content.6.RP.A",
        "CCSS.Math.Content.6.RP.A.1",
        "CCSS.Math.Content.6.RP.A.2",
        "CCSS.Math.Content.6.RP.A.3",
    ]
    roots = [
        association
        for association in package["CFAssociations"]
        if association["associationType"] == "isChildOf"
        and association["destinationNodeURI"]["identifier"] == package["CFDocument"]["identifier"]
    ]
    assert [root["sequenceNumber"] for root in roots] == [1, 2]


def test_export_of_a_hand_built_framework_builds_uris_from_the_base(settings):
    settings.CASE_BASE_URI = "https://mastery.example.org/ims/case/v1p0"
    framework = FrameworkFactory(title="Hand built")
    first = CompetencyFactory(framework=framework, code="H.1")
    second = CompetencyFactory(framework=framework, code="H.2", parent=first)
    edge = prerequisite_add(prerequisite=first, competency=second)

    package = framework_export_case(framework=framework)

    assert (
        package["CFDocument"]["uri"]
        == f"https://mastery.example.org/ims/case/v1p0/CFDocuments/{framework.identifier}"
    )
    assert package["CFDocument"]["creator"] == ""
    precedes = [a for a in package["CFAssociations"] if a["associationType"] == "precedes"]
    assert precedes[0]["identifier"] == str(edge.identifier)
    assert precedes[0]["originNodeURI"]["identifier"] == str(first.identifier)
    assert ZONED.match(precedes[0]["lastChangeDateTime"])


def test_validate_package_rejects_a_raw_real_world_file():
    """The fixtures themselves break the schema: that is why reading is lenient and writing strict."""
    with pytest.raises(CaseFormatError) as error:
        validate_package(load_fixture(SAMPLE_16))
    assert any("sequenceNumber" in message or "CFDocumentURI" in message for message in error.value.messages)


def test_export_command_writes_the_file(tmp_path, capsys):
    framework = framework_import_case(source=fixture_bytes(SAMPLE_16)).framework
    output = tmp_path / "out.json"
    call_command("export_case", str(framework.identifier), "--output", str(output))
    written = json.loads(output.read_text())
    validate_package(written)
    assert len(written["CFItems"]) == 16

    call_command("export_case", str(framework.identifier))
    assert json.loads(capsys.readouterr().out)["CFDocument"]["identifier"] == str(framework.identifier)


def test_export_command_unknown_identifier_exits_1():
    with pytest.raises(CommandError) as error:
        call_command("export_case", "00000000-0000-4000-8000-000000000000")
    assert error.value.returncode == 1
