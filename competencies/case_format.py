"""Reading and writing 1EdTech CASE packages, with no Django import.

Real exports break the official JSON Schema (strings for numbers, datetimes without a zone, legacy field
names, endpoints outside the package), so reading is lenient: everything is normalised into the plain
dataclasses below, and only what would make the framework wrong (no document, a non-UUID identifier, an
item without a statement, a broken tree, a prerequisite cycle) is an error. Writing is strict: every
object is conformed to the CASE 1.1 schema and the whole package is validated before it leaves.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).parent / "schemas" / "case-v1p1-cfpackage.schema.json"

ITEM_EXTRA_KEYS = (
    "alternativeLabel",
    "conceptKeywords",
    "conceptKeywordsURI",
    "subject",
    "subjectURI",
    "CFItemTypeURI",
    "licenseURI",
    "statusStartDate",
    "statusEndDate",
    "extensions",
)
DOCUMENT_EXTRA_KEYS = ("frameworkType", "subjectURI", "licenseURI", "extensions")
ASSOCIATION_EXTRA_KEYS = ("CFAssociationGroupingURI", "notes", "extensions")
DEFINITION_KINDS = {
    "CFConcepts": "CFConcept",
    "CFSubjects": "CFSubject",
    "CFLicenses": "CFLicense",
    "CFItemTypes": "CFItemType",
    "CFAssociationGroupings": "CFAssociationGrouping",
}


class CaseFormatError(Exception):
    """The package cannot be imported; each message names the offending object."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass
class DocumentData:
    identifier: uuid.UUID
    title: str
    uri: str = ""
    creator: str = ""
    publisher: str = ""
    description: str = ""
    subject: list[str] = field(default_factory=list)
    language: str = ""
    version: str = ""
    adoption_status: str = ""
    official_source_url: str = ""
    notes: str = ""
    status_start_date: dt.date | None = None
    status_end_date: dt.date | None = None
    last_change_date_time: dt.datetime | None = None
    case_extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ItemData:
    identifier: uuid.UUID
    statement: str
    uri: str = ""
    code: str = ""
    abbreviated_statement: str = ""
    item_type: str = ""
    education_levels: list[str] = field(default_factory=list)
    list_enumeration: str = ""
    language: str = ""
    notes: str = ""
    last_change_date_time: dt.datetime | None = None
    case_extra: dict[str, Any] = field(default_factory=dict)
    # Filled by the tree pass: None is a root (child of the document).
    parent_identifier: uuid.UUID | None = None
    position: int = 0
    child_association_identifier: uuid.UUID | None = None

    @property
    def label(self) -> str:
        return f"CFItem {self.identifier} ({self.code})" if self.code else f"CFItem {self.identifier}"


@dataclass
class EdgeData:
    """A ``precedes`` edge between two items of the package: prerequisite comes before competency."""

    identifier: uuid.UUID | None
    prerequisite_identifier: uuid.UUID
    competency_identifier: uuid.UUID


@dataclass
class AssociationData:
    identifier: uuid.UUID
    association_type: str
    origin_identifier: str
    destination_identifier: str
    uri: str = ""
    origin_uri: str = ""
    origin_title: str = ""
    destination_uri: str = ""
    destination_title: str = ""
    sequence_number: int | None = None
    last_change_date_time: dt.datetime | None = None
    case_extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PackageData:
    document: DocumentData | None
    items: list[ItemData]
    edges: list[EdgeData]
    associations: list[AssociationData]
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- lenient scalars


def parse_datetime(value: Any) -> dt.datetime | None:
    """ISO 8601 with or without a zone, or ``2017-08-23 23:48:01``; a missing zone means UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def parse_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def parse_int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(float(str(value).strip()))
    except ValueError:
        return None


def parse_uuid(value: Any) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return None


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(text(part) for part in value)
    return str(value).strip() if not isinstance(value, str) else value


def text_list(value: Any) -> list[str]:
    """A list, or a comma/semicolon separated string, as a list of non-empty strings."""
    if value in (None, ""):
        return []
    parts = value if isinstance(value, list) else re.split(r"[,;|]", str(value))
    return [str(part).strip() for part in parts if str(part).strip()]


def format_datetime(value: dt.datetime) -> str:
    """Strict ISO 8601 in UTC with a ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    timespec = "microseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def link_parts(value: Any) -> tuple[str, str, str]:
    """(identifier, uri, title) of a CASE link, given as an object or, in some exports, a bare string."""
    if isinstance(value, dict):
        identifier = text(value.get("identifier")).strip()
        uri = text(value.get("uri")).strip()
        title = text(value.get("title"))
        if not identifier and uri:
            identifier = _identifier_from_uri(uri)
        return identifier, uri, title
    if value in (None, ""):
        return "", "", ""
    raw = str(value).strip()
    return _identifier_from_uri(raw), raw, ""


def _identifier_from_uri(uri: str) -> str:
    match = re.search(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", uri)
    return match.group(0).lower() if match else uri


# ---------------------------------------------------------------- reading


def load_package(source: bytes | str | dict) -> dict:
    """The CFPackage object of ``source``, bare or wrapped in ``{"CFPackage": ...}``."""
    if isinstance(source, dict):
        data: Any = source
    else:
        try:
            data = json.loads(source.decode("utf-8-sig") if isinstance(source, bytes) else source)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CaseFormatError([f"the file is not valid JSON: {error}"]) from error
    if isinstance(data, dict) and isinstance(data.get("CFPackage"), dict):
        data = data["CFPackage"]
    if not isinstance(data, dict):
        raise CaseFormatError(["the file is not a CASE CFPackage (expected a JSON object)"])
    return data


def parse_package(data: dict) -> PackageData:
    """Normalise a CFPackage; raise CaseFormatError listing every problem found."""
    errors: list[str] = []
    warnings: list[str] = []
    document = _parse_document(data.get("CFDocument"), errors, warnings)
    if "CFDefinitions" in data and document is not None:
        document.case_extra["CFDefinitions"] = conform_definitions(
            data.get("CFDefinitions"), warnings, fallback_datetime=document.last_change_date_time
        )
    raw_items = data.get("CFItems") or []
    raw_associations = data.get("CFAssociations") or []
    if not isinstance(raw_items, list) or not isinstance(raw_associations, list):
        errors.append("CFItems and CFAssociations must be lists")
        raise CaseFormatError(errors)

    items: dict[uuid.UUID, ItemData] = {}
    for index, raw in enumerate(raw_items):
        item = _parse_item(raw, index, errors, warnings)
        if item is None:
            continue
        if item.identifier in items:
            errors.append(f"{item.label}: the identifier appears twice in CFItems")
            continue
        items[item.identifier] = item
    _warn_duplicate_codes(items.values(), warnings)

    document_identifier = document.identifier if document else None
    child_links: list[tuple[AssociationData, int | None, int]] = []
    edges: list[EdgeData] = []
    associations: list[AssociationData] = []
    seen_associations: set[uuid.UUID] = set()
    for index, raw in enumerate(raw_associations):
        association = _parse_association(raw, index, errors)
        if association is None:
            continue
        if association.identifier in seen_associations:
            errors.append(f"CFAssociation {association.identifier}: the identifier appears twice")
            continue
        seen_associations.add(association.identifier)
        origin = parse_uuid(association.origin_identifier)
        destination = parse_uuid(association.destination_identifier)
        if association.association_type == "isChildOf":
            if origin not in items:
                warnings.append(
                    f"isChildOf association {association.identifier}: child {association.origin_identifier} "
                    "is not an item of the package; kept as an external association"
                )
                associations.append(association)
                continue
            if destination is None or (destination != document_identifier and destination not in items):
                errors.append(
                    f"isChildOf association {association.identifier}: the parent "
                    f"{association.destination_identifier!r} of {items[origin].label} is neither the "
                    "CFDocument nor an item of the package"
                )
                continue
            child_links.append((association, association.sequence_number, index))
        elif association.association_type == "precedes" and origin in items and destination in items:
            if origin == destination:
                errors.append(
                    f"precedes association {association.identifier}: {items[origin].label} precedes itself"
                )
                continue
            edges.append(EdgeData(association.identifier, origin, destination))
        else:
            associations.append(association)

    _place_items(items, child_links, document_identifier, associations, errors, warnings)
    edges = _dedupe_edges(edges, items, warnings)
    cycle = find_cycle((edge.prerequisite_identifier, edge.competency_identifier) for edge in edges)
    if cycle:
        errors.append(f"precedes cycle: {describe_cycle(cycle, items)} would form a cycle")
    if document is None:
        errors.insert(0, "the package has no CFDocument")
    if errors:
        raise CaseFormatError(errors)
    return PackageData(document, list(items.values()), edges, associations, warnings)


def _parse_document(raw: Any, errors: list[str], warnings: list[str]) -> DocumentData | None:
    if not isinstance(raw, dict):
        return None
    identifier = parse_uuid(raw.get("identifier"))
    if identifier is None:
        errors.append(f"CFDocument {raw.get('identifier')!r}: the identifier is not a UUID")
        return None
    title = text(raw.get("title")).strip()
    if not title:
        errors.append(f"CFDocument {identifier}: it has no title")
    uri = link_parts(raw.get("uri"))[1]
    extra = conform_object(
        {key: raw[key] for key in DOCUMENT_EXTRA_KEYS if key in raw}, "CFPckgDocument", warnings
    )
    return DocumentData(
        identifier=identifier,
        title=title,
        uri=uri,
        creator=text(raw.get("creator")),
        publisher=text(raw.get("publisher")),
        description=text(raw.get("description")),
        subject=text_list(raw.get("subject")),
        language=text(raw.get("language")),
        version=text(raw.get("version")),
        adoption_status=text(raw.get("adoptionStatus")),
        official_source_url=text(raw.get("officialSourceURL")),
        notes=text(raw.get("notes")),
        status_start_date=parse_date(raw.get("statusStartDate")),
        status_end_date=parse_date(raw.get("statusEndDate")),
        last_change_date_time=parse_datetime(raw.get("lastChangeDateTime")),
        case_extra=extra,
    )


def _parse_item(raw: Any, index: int, errors: list[str], warnings: list[str]) -> ItemData | None:
    if not isinstance(raw, dict):
        errors.append(f"CFItems[{index}]: not an object")
        return None
    identifier = parse_uuid(raw.get("identifier"))
    if identifier is None:
        errors.append(f"CFItem {raw.get('identifier')!r} (CFItems[{index}]): the identifier is not a UUID")
        return None
    statement = text(raw.get("fullStatement")).strip()
    code = text(raw.get("humanCodingScheme")).strip()
    item = ItemData(identifier=identifier, statement=statement, code=code)
    if not statement:
        errors.append(f"{item.label}: it has no fullStatement")
        return None
    levels = raw.get("educationLevel", raw.get("educationalLevel"))
    item.uri = link_parts(raw.get("uri"))[1]
    item.abbreviated_statement = text(raw.get("abbreviatedStatement"))
    item.item_type = text(raw.get("CFItemType"))
    item.education_levels = text_list(levels)
    item.list_enumeration = text(raw.get("listEnumeration"))
    item.language = text(raw.get("language"))
    item.notes = text(raw.get("notes"))
    item.last_change_date_time = parse_datetime(raw.get("lastChangeDateTime"))
    item.case_extra = conform_object(
        {key: raw[key] for key in ITEM_EXTRA_KEYS if key in raw}, "CFPckgItem", warnings
    )
    return item


def _parse_association(raw: Any, index: int, errors: list[str]) -> AssociationData | None:
    if not isinstance(raw, dict):
        errors.append(f"CFAssociations[{index}]: not an object")
        return None
    identifier = parse_uuid(raw.get("identifier"))
    if identifier is None:
        errors.append(
            f"CFAssociation {raw.get('identifier')!r} (CFAssociations[{index}]): the identifier is not a UUID"
        )
        return None
    association_type = text(raw.get("associationType")).strip()
    origin_identifier, origin_uri, origin_title = link_parts(raw.get("originNodeURI"))
    destination_identifier, destination_uri, destination_title = link_parts(raw.get("destinationNodeURI"))
    if not association_type or not origin_identifier or not destination_identifier:
        errors.append(f"CFAssociation {identifier}: it needs an associationType, an origin and a destination")
        return None
    return AssociationData(
        identifier=identifier,
        association_type=association_type,
        origin_identifier=origin_identifier,
        destination_identifier=destination_identifier,
        uri=link_parts(raw.get("uri"))[1],
        origin_uri=origin_uri,
        origin_title=origin_title,
        destination_uri=destination_uri,
        destination_title=destination_title,
        sequence_number=parse_int(raw.get("sequenceNumber")),
        last_change_date_time=parse_datetime(raw.get("lastChangeDateTime")),
        case_extra=conform_object(
            {key: raw[key] for key in ASSOCIATION_EXTRA_KEYS if key in raw}, "CFPckgAssociation", []
        ),
    )


def _warn_duplicate_codes(items: Iterable[ItemData], warnings: list[str]) -> None:
    by_code: dict[str, int] = defaultdict(int)
    missing = 0
    for item in items:
        if item.code:
            by_code[item.code] += 1
        else:
            missing += 1
    duplicates = sorted(code for code, count in by_code.items() if count > 1)
    if duplicates:
        warnings.append(f"humanCodingScheme used by more than one item: {', '.join(duplicates)}")
    if missing:
        warnings.append(f"{missing} item(s) have no humanCodingScheme")


def _place_items(
    items: dict[uuid.UUID, ItemData],
    child_links: list[tuple[AssociationData, int | None, int]],
    document_identifier: uuid.UUID | None,
    associations: list[AssociationData],
    errors: list[str],
    warnings: list[str],
) -> None:
    """Give every item its parent and sibling position from the isChildOf associations."""
    children: dict[uuid.UUID | None, list[tuple[tuple, uuid.UUID]]] = defaultdict(list)
    placed: set[uuid.UUID] = set()
    for association, sequence_number, index in child_links:
        # Both were checked when the link was kept (an item's identifier and the parent's).
        child = parse_uuid(association.origin_identifier)
        parent = parse_uuid(association.destination_identifier)
        if child in placed:
            # The product keeps one place per item; a second parent is kept as a plain association.
            warnings.append(
                f"{items[child].label} has more than one isChildOf parent; "
                f"association {association.identifier} is kept but not used for the tree"
            )
            associations.append(association)
            continue
        placed.add(child)
        item = items[child]
        item.parent_identifier = None if parent == document_identifier else parent
        item.child_association_identifier = association.identifier
        if association.uri:
            item.case_extra["isChildOfURI"] = association.uri
        if association.last_change_date_time:
            item.case_extra["isChildOfLastChangeDateTime"] = format_datetime(
                association.last_change_date_time
            )
        # Numbered siblings first in number order, then the unnumbered ones in file order.
        sort_key = (0, sequence_number, index) if sequence_number is not None else (1, 0, index)
        children[item.parent_identifier].append((sort_key, child))
    unplaced = [identifier for identifier in items if identifier not in placed]
    if unplaced:
        warnings.append(
            f"{len(unplaced)} item(s) have no isChildOf association and are placed at the top level"
        )
        for offset, identifier in enumerate(unplaced):
            children[None].append(((2, 0, offset), identifier))
    for siblings in children.values():
        for position, (_, identifier) in enumerate(sorted(siblings)):
            items[identifier].position = position
    cycle = find_cycle(
        (item.identifier, item.parent_identifier) for item in items.values() if item.parent_identifier
    )
    if cycle:
        errors.append(f"isChildOf cycle: {describe_cycle(cycle, items)}")


def _dedupe_edges(
    edges: list[EdgeData], items: dict[uuid.UUID, ItemData], warnings: list[str]
) -> list[EdgeData]:
    unique: dict[tuple[uuid.UUID, uuid.UUID], EdgeData] = {}
    for edge in edges:
        pair = (edge.prerequisite_identifier, edge.competency_identifier)
        if pair in unique:
            warnings.append(
                f"precedes association {edge.identifier} repeats {items[pair[0]].label} -> "
                f"{items[pair[1]].label}; the repeat is ignored"
            )
            continue
        unique[pair] = edge
    return list(unique.values())


# ---------------------------------------------------------------- graphs


def find_cycle(edges: Iterable[tuple[Hashable, Hashable]]) -> list | None:
    """A cycle of the directed graph as a closed path [a, b, ..., a], or None when it is acyclic."""
    graph: dict[Hashable, list[Hashable]] = defaultdict(list)
    for source, target in edges:
        graph[source].append(target)
    state: dict[Hashable, int] = {}  # 1: on the current path, 2: finished
    for start in list(graph):
        if start in state:
            continue
        path = [start]
        iterators = [iter(graph[start])]
        state[start] = 1
        while iterators:
            node = next(iterators[-1], None)
            if node is None:
                state[path.pop()] = 2
                iterators.pop()
                continue
            if state.get(node) == 1:
                return [*path[path.index(node) :], node]
            if node not in state:
                state[node] = 1
                path.append(node)
                iterators.append(iter(graph.get(node, ())))
    return None


def describe_cycle(cycle: list, items: dict[uuid.UUID, ItemData] | None = None) -> str:
    def name(identifier: Any) -> str:
        item = (items or {}).get(identifier)
        return (item.code or str(item.identifier)) if item else str(identifier)

    return " -> ".join(name(node) for node in cycle)


# ---------------------------------------------------------------- strict writing


@cache
def package_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()

    # jsonschema only checks date-time with an optional extra package; the rule we need is simple.
    @checker.checks("date-time", raises=ValueError)
    def is_datetime(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
            raise ValueError(f"{value!r} is not an ISO 8601 date-time with a zone")
        return True

    return checker


def validate_package(package: dict) -> None:
    """Raise CaseFormatError listing every way ``package`` breaks the CASE 1.1 CFPackage schema."""
    validator = jsonschema.Draft201909Validator(package_schema(), format_checker=_format_checker())
    problems = [
        f"{'/'.join(str(part) for part in error.absolute_path) or 'package'}: {error.message}"
        for error in validator.iter_errors(package)
    ]
    if problems:
        raise CaseFormatError(problems)


def conform_object(value: dict, definition: str, warnings: list[str]) -> dict:
    """The keys of ``value`` that ``definition`` allows, each conformed to its schema (lenient in, strict out)."""
    schema = package_schema()["$defs"][definition]
    conformed = _conform(value, {"type": "object", "properties": schema["properties"]}, warnings)
    return conformed or {}


def conform_definitions(raw: Any, warnings: list[str], fallback_datetime: dt.datetime | None) -> dict:
    """CFDefinitions made schema-valid, so that what is stored is exactly what is exported later."""
    if not isinstance(raw, dict):
        return {}
    result: dict[str, list] = {}
    for kind, definition in DEFINITION_KINDS.items():
        entries = raw.get(kind)
        if not isinstance(entries, list):
            continue
        conformed_entries = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            entry = dict(entry)
            if not entry.get("lastChangeDateTime") and fallback_datetime:
                entry["lastChangeDateTime"] = format_datetime(fallback_datetime)
            conformed = _conform(entry, {"$ref": f"#/$defs/{definition}"}, warnings)
            if conformed is None:
                warnings.append(f"{kind}: entry {entry.get('identifier')!r} is incomplete and was dropped")
                continue
            conformed_entries.append(conformed)
        result[kind] = conformed_entries
    return result


def _conform(value: Any, schema: dict, warnings: list[str]) -> Any:
    """``value`` made to fit ``schema``, or None when it cannot be (missing identifier, bad date...)."""
    if "$ref" in schema:
        schema = package_schema()["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if "oneOf" in schema:
        return text(value) or None
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return None
        properties = schema.get("properties")
        if properties is None or (schema.get("additionalProperties") is True and not properties):
            return value
        result = {}
        for key, item in value.items():
            if key in properties and item is not None:
                conformed = _conform(item, properties[key], warnings)
                if conformed is not None:
                    result[key] = conformed
        for key in schema.get("required", []):
            if key in result:
                continue
            required_schema = properties.get(key, {"type": "string"})
            if required_schema.get("type", "string") == "string" and "format" not in required_schema:
                result[key] = ""
            else:
                return None
        return result
    if kind == "array":
        values = value if isinstance(value, list) else text_list(value)
        conformed_values = [_conform(item, schema.get("items", {}), warnings) for item in values]
        return [item for item in conformed_values if item is not None]
    if kind == "integer":
        return parse_int(value)
    if kind == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    string_format = schema.get("format")
    if string_format == "uuid":
        parsed = parse_uuid(value)
        return str(parsed) if parsed else None
    if string_format == "date-time":
        parsed_datetime = parse_datetime(value)
        return format_datetime(parsed_datetime) if parsed_datetime else None
    if string_format == "date":
        parsed_date = parse_date(value)
        return parsed_date.isoformat() if parsed_date else None
    if isinstance(value, dict | list):
        return None
    return text(value)


def link(identifier: Any, uri: str, title: str) -> dict[str, str]:
    return {"title": title or "", "identifier": str(identifier), "uri": uri}


def omit_empty(data: dict[str, Any]) -> dict[str, Any]:
    """Optional CASE properties are left out rather than written empty."""
    return {key: value for key, value in data.items() if value not in (None, "", [], {})}
