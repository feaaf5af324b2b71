"""Hostile CASE packages: random JSON, broken bytes, and valid packages with random edits, fed to
``framework_import_case``. Every one imports or is refused with ``CatalogImportError`` listing clear
messages, and a refused one writes nothing (every table's row count unchanged)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from competencies import services
from competencies.services import CatalogImportError
from tests.factories import DistrictFactory
from tests.faults.hostile import TRIED, as_source, assert_clear, json_values, mutated, row_counts

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

DATA = Path(__file__).resolve().parents[1] / "data" / "case"
VALID = json.loads((DATA / "opensalt_test-fixture_SmartLevelFramework_14items.json").read_text())
SMALL = json.loads((DATA / "opensalt_test-fixture_MarkdownFramework_2items.json").read_text())


def import_or_refuse(source, label: str, district) -> str:
    before = row_counts()
    try:
        services.framework_import_case(source=source, district=district, source_name="fuzz")
    except CatalogImportError as error:
        assert_clear(error.messages)
        assert row_counts() == before  # never a partial import
        outcome = "refused"
    else:
        outcome = "imported"
    TRIED[(f"CASE JSON ({label})", outcome)] += 1
    return outcome


@given(value=json_values, encoding=st.sampled_from(["dict", "str", "bytes"]))
def test_random_json_is_refused_cleanly(value, encoding):
    outcome = import_or_refuse(as_source(value, encoding), "random JSON", DistrictFactory())
    if not isinstance(value, dict):
        assert outcome == "refused"


@given(data=st.binary(max_size=200) | st.text(max_size=200))
def test_random_bytes_and_text_are_refused_cleanly(data):
    assert import_or_refuse(data, "random bytes", DistrictFactory()) == "refused"


@given(document=mutated(VALID), encoding=st.sampled_from(["dict", "bytes"]))
def test_a_valid_package_with_random_edits_imports_or_is_refused_cleanly(document, encoding):
    import_or_refuse(as_source(document, encoding), "edited package", DistrictFactory())


@given(document=mutated({"CFPackage": SMALL}))
def test_a_wrapped_package_with_random_edits_imports_or_is_refused_cleanly(document):
    import_or_refuse(document if isinstance(document, dict) else json.dumps(document), "wrapped", None)


@given(cut=st.integers(1, len(json.dumps(VALID)) - 1))
def test_a_truncated_file_is_refused_naming_the_json_error(cut):
    with pytest.raises(CatalogImportError) as refused:
        services.framework_import_case(source=json.dumps(VALID)[:cut].encode())
    assert refused.value.messages[0].startswith("the file is not valid JSON")
    TRIED[("CASE JSON (truncated)", "refused")] += 1


def test_a_package_whose_items_form_a_cycle_is_refused_naming_the_cycle():
    package = json.loads(json.dumps(SMALL))
    first, second = (item["identifier"] for item in package["CFItems"])

    def precedes(identifier: str, origin: str, destination: str) -> dict:
        return {
            "identifier": identifier,
            "uri": f"urn:{identifier}",
            "lastChangeDateTime": "2017-10-24T17:20:35+00:00",
            "associationType": "precedes",
            "originNodeURI": {"title": "x", "identifier": origin, "uri": f"urn:{origin}"},
            "destinationNodeURI": {"title": "y", "identifier": destination, "uri": f"urn:{destination}"},
        }

    package["CFAssociations"] += [
        precedes("e0000000-0000-0000-0000-000000000001", first, second),
        precedes("e0000000-0000-0000-0000-000000000002", second, first),
    ]
    before = row_counts()
    with pytest.raises(CatalogImportError) as refused:
        services.framework_import_case(source=package)
    assert [message for message in refused.value.messages if message.startswith("precedes cycle")] == [
        "precedes cycle: MD.Table -> MD.Math -> MD.Table would form a cycle"
    ]
    assert row_counts() == before
