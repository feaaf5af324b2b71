"""Reads of the catalog that cross relations, with their query budgets.

The CASE builders here turn stored rows into CASE 1.1 JSON for the export and the CASE provider; they
fill what CASE requires (uri, lastChangeDateTime) from what is stored, or build it from CASE_BASE_URI.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from competencies.case_format import format_datetime, link, omit_empty
from competencies.models import CaseAssociation, Competency, Framework, Prerequisite

DEFAULT_CASE_BASE_URI = "http://127.0.0.1:8000/ims/case/v1p0"


def case_base_uri() -> str:
    configured = getattr(settings, "CASE_BASE_URI", None) or os.environ.get("CASE_BASE_URI")
    return (configured or DEFAULT_CASE_BASE_URI).rstrip("/")


def _built_uri(kind: str, identifier: Any) -> str:
    return f"{case_base_uri()}/{kind}/{identifier}"


# ---------------------------------------------------------------- lookups


def framework_list_published() -> QuerySet[Framework]:
    """Published frameworks. Budget: 1 query."""
    return Framework.objects.filter(status=Framework.Status.PUBLISHED).order_by("title", "pk")


def framework_get_published(*, identifier: uuid.UUID | str) -> Framework | None:
    """Budget: 1 query."""
    return framework_list_published().filter(identifier=identifier).first()


def competency_get_published(*, identifier: uuid.UUID | str) -> Competency | None:
    """A competency of a published framework, with its framework. Budget: 1 query."""
    return (
        Competency.objects.select_related("framework", "parent")
        .filter(identifier=identifier, framework__status=Framework.Status.PUBLISHED)
        .first()
    )


def framework_competencies_in_tree_order(*, framework: Framework) -> list[Competency]:
    """Every competency of the framework in depth-first order, siblings by position. Budget: 1 query."""
    return list(
        Competency.objects.with_tree_fields()
        .tree_filter(framework=framework)
        .order_siblings_by("position", "pk")
        .select_related("parent")
    )


# ---------------------------------------------------------------- CASE JSON


def case_document_json(framework: Framework) -> dict[str, Any]:
    extra = {key: value for key, value in framework.case_extra.items() if key != "CFDefinitions"}
    required = {
        "identifier": str(framework.identifier),
        "uri": framework.uri or _built_uri("CFDocuments", framework.identifier),
        "creator": framework.creator,
        "title": framework.title,
        "lastChangeDateTime": format_datetime(framework.last_change_date_time or framework.updated_at),
    }
    optional = omit_empty(
        {
            "publisher": framework.publisher,
            "description": framework.description,
            "subject": framework.subject,
            "language": framework.language,
            "version": framework.version,
            "adoptionStatus": framework.adoption_status,
            "officialSourceURL": framework.official_source_url,
            "notes": framework.notes,
            "statusStartDate": framework.status_start_date.isoformat()
            if framework.status_start_date
            else None,
            "statusEndDate": framework.status_end_date.isoformat() if framework.status_end_date else None,
        }
    )
    return {**required, "caseVersion": "1.1", **optional, **extra}


def _item_uri(competency: Competency) -> str:
    return competency.uri or _built_uri("CFItems", competency.identifier)


def _item_title(competency: Competency) -> str:
    return competency.code or competency.statement[:100]


def case_item_json(competency: Competency) -> dict[str, Any]:
    extra = {key: value for key, value in competency.case_extra.items() if not key.startswith("isChildOf")}
    required = {
        "identifier": str(competency.identifier),
        "fullStatement": competency.statement,
        "uri": _item_uri(competency),
        "lastChangeDateTime": format_datetime(competency.last_change_date_time or competency.updated_at),
    }
    optional = omit_empty(
        {
            "humanCodingScheme": competency.code,
            "abbreviatedStatement": competency.abbreviated_statement,
            "CFItemType": competency.item_type,
            "educationLevel": competency.education_levels,
            "listEnumeration": competency.list_enumeration,
            "language": competency.language,
            "notes": competency.notes,
        }
    )
    return {**required, **optional, **extra}


def case_child_association_json(
    competency: Competency, framework: Framework, sequence_number: int | None
) -> dict[str, Any]:
    """The isChildOf association that places ``competency`` under its parent (or the document)."""
    parent = competency.parent
    destination = (
        link(parent.identifier, _item_uri(parent), _item_title(parent))
        if parent is not None
        else link(
            framework.identifier,
            framework.uri or _built_uri("CFDocuments", framework.identifier),
            framework.title,
        )
    )
    association = {
        "identifier": str(competency.child_association_identifier),
        "associationType": "isChildOf",
        "uri": competency.case_extra.get("isChildOfURI")
        or _built_uri("CFAssociations", competency.child_association_identifier),
        "originNodeURI": link(competency.identifier, _item_uri(competency), _item_title(competency)),
        "destinationNodeURI": destination,
        "lastChangeDateTime": competency.case_extra.get("isChildOfLastChangeDateTime")
        or format_datetime(competency.last_change_date_time or competency.updated_at),
    }
    if sequence_number is not None:
        association["sequenceNumber"] = sequence_number
    return association


def case_precedes_json(edge: Prerequisite) -> dict[str, Any]:
    before, after = edge.prerequisite, edge.competency
    return {
        "identifier": str(edge.identifier),
        "associationType": "precedes",
        "uri": _built_uri("CFAssociations", edge.identifier),
        "originNodeURI": link(before.identifier, _item_uri(before), _item_title(before)),
        "destinationNodeURI": link(after.identifier, _item_uri(after), _item_title(after)),
        "lastChangeDateTime": format_datetime(edge.created_at),
    }


def _endpoint_uri(identifier: str, uri: str) -> str:
    if uri:
        return uri
    return _built_uri("CFItems", identifier) if _is_uuid(identifier) else identifier


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def case_association_json(association: CaseAssociation, framework: Framework) -> dict[str, Any]:
    data: dict[str, Any] = {
        "identifier": str(association.identifier),
        "associationType": association.association_type,
        "uri": association.uri or _built_uri("CFAssociations", association.identifier),
        "originNodeURI": link(
            association.origin_identifier,
            _endpoint_uri(association.origin_identifier, association.origin_uri),
            association.origin_title,
        ),
        "destinationNodeURI": link(
            association.destination_identifier,
            _endpoint_uri(association.destination_identifier, association.destination_uri),
            association.destination_title,
        ),
        "lastChangeDateTime": format_datetime(
            association.last_change_date_time or framework.last_change_date_time or framework.updated_at
        ),
    }
    if association.sequence_number is not None:
        data["sequenceNumber"] = association.sequence_number
    return {**data, **association.case_extra}


def _sequence_numbers(competencies: list[Competency]) -> dict[int, int]:
    """1-based rank among siblings, in the stored sibling order."""
    ranks: dict[int | None, int] = {}
    numbers: dict[int, int] = {}
    for competency in sorted(competencies, key=lambda competency: (competency.position, competency.pk)):
        ranks[competency.parent_id] = ranks.get(competency.parent_id, 0) + 1
        numbers[competency.pk] = ranks[competency.parent_id]
    return numbers


def _framework_prerequisites(framework: Framework) -> QuerySet[Prerequisite]:
    return (
        Prerequisite.objects.filter(Q(competency__framework=framework) | Q(prerequisite__framework=framework))
        .select_related("prerequisite", "competency")
        .order_by("pk")
    )


def case_package_build(*, framework: Framework) -> dict[str, Any]:
    """The CFPackage of a framework (not validated: see services.framework_export_case).

    Budget: 3 queries (competencies, prerequisites, other associations) after the framework.
    """
    competencies = framework_competencies_in_tree_order(framework=framework)
    sequence_numbers = _sequence_numbers(competencies)
    associations = [
        case_child_association_json(competency, framework, sequence_numbers[competency.pk])
        for competency in competencies
    ]
    associations += [case_precedes_json(edge) for edge in _framework_prerequisites(framework)]
    associations += [
        case_association_json(association, framework)
        for association in framework.associations.order_by("association_type", "identifier")
    ]
    return {
        "CFDocument": case_document_json(framework),
        "CFItems": [case_item_json(competency) for competency in competencies],
        "CFAssociations": associations,
        "CFDefinitions": framework.case_extra.get("CFDefinitions") or {},
    }


def case_association_get_published(*, identifier: uuid.UUID) -> dict[str, Any] | None:
    """Any association of a published framework as CASE JSON. Budget: 3 queries."""
    published = Framework.Status.PUBLISHED
    child = (
        Competency.objects.select_related("framework", "parent")
        .filter(child_association_identifier=identifier, framework__status=published)
        .first()
    )
    if child is not None:
        return case_child_association_json(child, child.framework, _sibling_rank(child))
    edge = (
        Prerequisite.objects.select_related("prerequisite", "competency")
        .filter(identifier=identifier, competency__framework__status=published)
        .first()
    )
    if edge is not None:
        return case_precedes_json(edge)
    association = (
        CaseAssociation.objects.select_related("framework")
        .filter(identifier=identifier, framework__status=published)
        .first()
    )
    return case_association_json(association, association.framework) if association else None


def _sibling_rank(competency: Competency) -> int:
    # Stored positions are sibling ranks after an import; the provider does not spend a query on gaps.
    return competency.position + 1


def case_item_associations_get_published(*, identifier: uuid.UUID) -> dict[str, Any] | None:
    """A published item with every association that starts or ends at it. Budget: 4 queries."""
    competency = competency_get_published(identifier=identifier)
    if competency is None:
        return None
    framework = competency.framework
    associations = [case_child_association_json(competency, framework, _sibling_rank(competency))]
    associations += [
        case_child_association_json(child, framework, _sibling_rank(child))
        for child in Competency.objects.filter(parent=competency)
        .select_related("parent")
        .order_by("position", "pk")
    ]
    associations += [
        case_precedes_json(edge)
        for edge in Prerequisite.objects.filter(Q(prerequisite=competency) | Q(competency=competency))
        .select_related("prerequisite", "competency")
        .order_by("pk")
    ]
    key = str(competency.identifier)
    associations += [
        case_association_json(association, framework)
        for association in CaseAssociation.objects.filter(
            Q(origin_identifier=key) | Q(destination_identifier=key), framework=framework
        ).order_by("association_type", "identifier")
    ]
    return {"CFItem": case_item_json(competency), "CFAssociations": associations}
