"""Every write to the catalog: CASE and CSV imports, prerequisites, the framework life cycle.

Imports are all-or-nothing: the package is checked in full before anything is written, the write runs in
one transaction, and a dry run performs the real write and rolls it back, so that its counts are exact.
Rows are written set-based with their change history (django-simple-history's bulk helpers).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from competencies import case_format, csv_format, selectors
from competencies.case_format import AssociationData, CaseFormatError, DocumentData, EdgeData, ItemData
from competencies.models import CaseAssociation, Competency, Framework, Prerequisite
from roster.audit import audit_record
from roster.models import AuditEvent, District, ImportRun, User

BATCH_SIZE = 500
KINDS = ("framework", "competencies", "prerequisites", "associations")

FRAMEWORK_FIELDS = (
    "uri",
    "title",
    "creator",
    "publisher",
    "description",
    "subject",
    "language",
    "version",
    "adoption_status",
    "official_source_url",
    "notes",
    "status_start_date",
    "status_end_date",
    "last_change_date_time",
    "case_extra",
)
COMPETENCY_FIELDS = (
    "uri",
    "code",
    "statement",
    "abbreviated_statement",
    "item_type",
    "education_levels",
    "list_enumeration",
    "language",
    "notes",
    "last_change_date_time",
    "case_extra",
    "position",
    "child_association_identifier",
    "parent_id",
)
ASSOCIATION_FIELDS = (
    "uri",
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
)


@dataclass
class ImportReport:
    framework: Framework | None
    dry_run: bool
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {kind: {"created": 0, "updated": 0, "unchanged": 0} for kind in KINDS}
    )
    warnings: list[str] = field(default_factory=list)

    def _total(self, outcome: str) -> int:
        return sum(kind_counts[outcome] for kind_counts in self.counts.values())

    @property
    def created(self) -> int:
        return self._total("created")

    @property
    def updated(self) -> int:
        return self._total("updated")

    @property
    def unchanged(self) -> int:
        return self._total("unchanged")

    def summary(self) -> str:
        return "; ".join(
            f"{kind}: {counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged"
            for kind, counts in self.counts.items()
        )

    def count(self, kind: str, outcome: str, number: int = 1) -> None:
        self.counts[kind][outcome] += number


class CatalogImportError(Exception):
    """The file cannot be imported; nothing was written. Each message names the offending object."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


class CatalogExportError(Exception):
    """The framework would export as an invalid CASE package (a bug or bad stored data)."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


class _RollBackDryRun(Exception):
    """Raised inside the import transaction to undo a dry run after its counts are known."""


# ---------------------------------------------------------------- imports


def framework_import_case(
    *,
    source: bytes | str | dict,
    dry_run: bool = False,
    user: User | None = None,
    source_name: str = "",
    district: District | None = None,
) -> ImportReport:
    """Import a CASE CFPackage; a re-import of the same document updates it in place."""
    try:
        package = case_format.parse_package(case_format.load_package(source))
    except CaseFormatError as error:
        raise CatalogImportError(error.messages) from error
    assert package.document is not None  # parse_package refuses a package without one
    document = package.document
    report = ImportReport(framework=None, dry_run=dry_run, warnings=list(package.warnings))

    def write() -> None:
        framework = _write_framework(document=document, district=district, user=user, report=report)
        _write_catalog(framework=framework, package=package, user=user, report=report)
        report.framework = framework

    _run_import(
        write,
        report=report,
        kind=ImportRun.Kind.CASE,
        source_name=source_name or document.title,
        user=user,
        district=district,
    )
    if dry_run:
        report.framework = Framework.objects.filter(identifier=document.identifier).first()
    return report


def framework_import_csv(
    *,
    source: bytes | str,
    framework: Framework,
    dry_run: bool = False,
    user: User | None = None,
    source_name: str = "",
) -> ImportReport:
    """Import one CSV row per competency into ``framework``; errors are listed by row number."""
    try:
        rows, errors = csv_format.read_rows(source)
    except CaseFormatError as error:
        raise CatalogImportError(error.messages) from error
    report = ImportReport(framework=framework, dry_run=dry_run)
    package = _package_from_csv_rows(rows=rows, framework=framework, errors=errors, warnings=report.warnings)
    report.count("framework", "unchanged")

    def write() -> None:
        _write_catalog(framework=framework, package=package, user=user, report=report)

    _run_import(
        write,
        report=report,
        kind=ImportRun.Kind.FRAMEWORK_CSV,
        source_name=source_name or framework.title,
        user=user,
        district=framework.district,
    )
    return report


_IMPORT_AUDIT_ACTIONS = {
    ImportRun.Kind.CASE: AuditEvent.Action.IMPORT_CASE,
    ImportRun.Kind.FRAMEWORK_CSV: AuditEvent.Action.IMPORT_FRAMEWORK_CSV,
}


def _run_import(
    write, *, report: ImportReport, kind: str, source_name: str, user: User | None, district: District | None
) -> None:
    try:
        with transaction.atomic():
            write()
            if report.dry_run:
                raise _RollBackDryRun
            run = ImportRun.objects.create(
                kind=kind,
                status=ImportRun.Status.APPLIED,
                source_name=source_name[:255],
                started_by=user,
                district=district or (report.framework.district if report.framework else None),
                counts=report.counts,
                warnings=report.warnings,
            )
            audit_record(
                actor=user,
                action=_IMPORT_AUDIT_ACTIONS[kind],
                target=run,
                after={
                    "framework_id": report.framework.pk if report.framework else None,
                    "source_name": run.source_name,
                    "counts": report.counts,
                },
                district=run.district_id,
            )
    except _RollBackDryRun:
        pass


def _write_framework(
    *, document: DocumentData, district: District | None, user: User | None, report: ImportReport
) -> Framework:
    framework = Framework.objects.select_for_update().filter(identifier=document.identifier).first()
    values = {name: getattr(document, name) for name in FRAMEWORK_FIELDS}
    if framework is None:
        framework = Framework(identifier=document.identifier, district=district, **values)
        framework._history_user = user  # type: ignore[attr-defined]
        framework.save()
        report.count("framework", "created")
        return framework
    changed = [name for name, value in values.items() if getattr(framework, name) != value]
    if district is not None and framework.district_id != district.pk:
        framework.district = district
        changed.append("district")
    if changed:
        for name in changed:
            if name != "district":
                setattr(framework, name, values[name])
        framework._history_user = user  # type: ignore[attr-defined]
        framework.save()
        report.count("framework", "updated")
    else:
        report.count("framework", "unchanged")
    return framework


def _write_catalog(
    *, framework: Framework, package: case_format.PackageData, user: User | None, report: ImportReport
) -> None:
    pk_by_identifier, label_by_pk = _write_competencies(
        framework=framework, items=package.items, user=user, report=report
    )
    _write_prerequisites(
        framework=framework,
        edges=package.edges,
        pk_by_identifier=pk_by_identifier,
        label_by_pk=label_by_pk,
        user=user,
        report=report,
    )
    _write_associations(framework=framework, associations=package.associations, user=user, report=report)


def _write_competencies(
    *, framework: Framework, items: list[ItemData], user: User | None, report: ImportReport
) -> tuple[dict[uuid.UUID, int], dict[int, str]]:
    identifiers = [item.identifier for item in items]
    owned_elsewhere = (
        Competency.objects.filter(identifier__in=identifiers)
        .exclude(framework=framework)
        .values_list("identifier", "framework__title")
    )
    items_by_identifier = {item.identifier: item for item in items}
    errors = [
        f"{items_by_identifier[identifier].label}: the identifier already belongs to framework {title!r}"
        for identifier, title in owned_elsewhere
    ]
    if errors:
        raise CatalogImportError(errors)

    existing = {
        competency.identifier: competency for competency in Competency.objects.filter(framework=framework)
    }
    pk_by_identifier = {identifier: competency.pk for identifier, competency in existing.items()}
    label_by_pk = {
        competency.pk: competency.code or str(identifier) for identifier, competency in existing.items()
    }
    absent = [
        competency for identifier, competency in existing.items() if identifier not in items_by_identifier
    ]
    if absent:
        codes = ", ".join(competency.code or str(competency.identifier) for competency in absent[:20])
        report.warnings.append(
            f"{len(absent)} competencies of the framework are not in the file and were kept: {codes}"
            + (" ..." if len(absent) > 20 else "")
        )

    # Parents are written before their children, one depth level at a time, so a new child can point at
    # its new parent's primary key without a second pass over the tree.
    depth: dict[uuid.UUID, int] = {}

    def depth_of(item: ItemData) -> int:
        if item.identifier not in depth:
            parent = items_by_identifier.get(item.parent_identifier) if item.parent_identifier else None
            depth[item.identifier] = 0 if parent is None else depth_of(parent) + 1
        return depth[item.identifier]

    levels: dict[int, list[ItemData]] = defaultdict(list)
    for item in items:
        levels[depth_of(item)].append(item)

    to_update: list[Competency] = []
    for level in sorted(levels):
        to_create: list[Competency] = []
        for item in levels[level]:
            values = _competency_values(item, pk_by_identifier, existing.get(item.identifier))
            competency = existing.get(item.identifier)
            if competency is None:
                to_create.append(Competency(framework=framework, identifier=item.identifier, **values))
                continue
            changed = [name for name, value in values.items() if getattr(competency, name) != value]
            if changed:
                for name in changed:
                    setattr(competency, name, values[name])
                to_update.append(competency)
                report.count("competencies", "updated")
            else:
                report.count("competencies", "unchanged")
        created = bulk_create_with_history(to_create, Competency, batch_size=BATCH_SIZE, default_user=user)
        for competency in created:
            pk_by_identifier[competency.identifier] = competency.pk
            label_by_pk[competency.pk] = competency.code or str(competency.identifier)
        report.count("competencies", "created", len(created))
    if to_update:
        bulk_update_with_history(
            to_update, Competency, list(COMPETENCY_FIELDS), batch_size=BATCH_SIZE, default_user=user
        )
    return pk_by_identifier, label_by_pk


def _competency_values(
    item: ItemData, pk_by_identifier: dict[uuid.UUID, int], competency: Competency | None
) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: getattr(item, name) for name in COMPETENCY_FIELDS if name not in {"parent_id"}
    }
    values["parent_id"] = pk_by_identifier[item.parent_identifier] if item.parent_identifier else None
    if item.child_association_identifier is None:
        # A CSV row or an item with no isChildOf keeps the association identifier it already has.
        values["child_association_identifier"] = (
            competency.child_association_identifier if competency else uuid.uuid4()
        )
    return values


def _write_prerequisites(
    *,
    framework: Framework,
    edges: list[EdgeData],
    pk_by_identifier: dict[uuid.UUID, int],
    label_by_pk: dict[int, str],
    user: User | None,
    report: ImportReport,
) -> None:
    existing = list(
        Prerequisite.objects.filter(Q(competency__framework=framework) | Q(prerequisite__framework=framework))
    )
    by_identifier = {edge.identifier: edge for edge in existing}
    by_pair = {(edge.prerequisite_id, edge.competency_id): edge for edge in existing}
    taken = set(
        Prerequisite.objects.filter(identifier__in=[edge.identifier for edge in edges if edge.identifier])
        .exclude(pk__in=[edge.pk for edge in existing])
        .values_list("identifier", flat=True)
    )
    if taken:
        raise CatalogImportError(
            [
                f"precedes association {identifier}: the identifier belongs to another framework"
                for identifier in taken
            ]
        )

    matched: set[int] = set()
    to_create: list[Prerequisite] = []
    to_update: list[Prerequisite] = []
    final_pairs: list[tuple[int, int]] = []
    for edge in edges:
        pair = (pk_by_identifier[edge.prerequisite_identifier], pk_by_identifier[edge.competency_identifier])
        final_pairs.append(pair)
        row = (by_identifier.get(edge.identifier) if edge.identifier else None) or by_pair.get(pair)
        if row is None:
            to_create.append(
                Prerequisite(
                    identifier=edge.identifier or uuid.uuid4(), prerequisite_id=pair[0], competency_id=pair[1]
                )
            )
            continue
        matched.add(row.pk)
        identifier = edge.identifier or row.identifier
        if (row.prerequisite_id, row.competency_id, row.identifier) == (*pair, identifier):
            report.count("prerequisites", "unchanged")
            continue
        row.prerequisite_id, row.competency_id, row.identifier = pair[0], pair[1], identifier
        to_update.append(row)
        report.count("prerequisites", "updated")

    kept = [edge for edge in existing if edge.pk not in matched]
    if kept:
        report.warnings.append(
            f"{len(kept)} prerequisites of the framework are not in the file and were kept"
        )
    cycle = case_format.find_cycle(
        [*final_pairs, *((edge.prerequisite_id, edge.competency_id) for edge in kept)]
    )
    if cycle:
        names = " -> ".join(label_by_pk.get(pk, str(pk)) for pk in cycle)
        raise CatalogImportError([f"precedes cycle: {names} would form a cycle"])
    if to_update:
        bulk_update_with_history(
            to_update,
            Prerequisite,
            ["identifier", "prerequisite_id", "competency_id"],
            batch_size=BATCH_SIZE,
            default_user=user,
        )
    created = bulk_create_with_history(to_create, Prerequisite, batch_size=BATCH_SIZE, default_user=user)
    report.count("prerequisites", "created", len(created))


def _write_associations(
    *, framework: Framework, associations: list[AssociationData], user: User | None, report: ImportReport
) -> None:
    identifiers = [association.identifier for association in associations]
    taken = set(
        CaseAssociation.objects.filter(identifier__in=identifiers)
        .exclude(framework=framework)
        .values_list("identifier", flat=True)
    )
    if taken:
        raise CatalogImportError(
            [
                f"CFAssociation {identifier}: the identifier belongs to another framework"
                for identifier in taken
            ]
        )
    existing = {association.identifier: association for association in framework.associations.all()}
    to_create: list[CaseAssociation] = []
    to_update: list[CaseAssociation] = []
    for association in associations:
        values = {name: getattr(association, name) for name in ASSOCIATION_FIELDS}
        row = existing.get(association.identifier)
        if row is None:
            to_create.append(
                CaseAssociation(framework=framework, identifier=association.identifier, **values)
            )
            continue
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if changed:
            for name in changed:
                setattr(row, name, values[name])
            to_update.append(row)
            report.count("associations", "updated")
        else:
            report.count("associations", "unchanged")
    absent = len(set(existing) - set(identifiers))
    if absent:
        report.warnings.append(f"{absent} associations of the framework are not in the file and were kept")
    if to_update:
        bulk_update_with_history(
            to_update, CaseAssociation, list(ASSOCIATION_FIELDS), batch_size=BATCH_SIZE, default_user=user
        )
    created = bulk_create_with_history(to_create, CaseAssociation, batch_size=BATCH_SIZE, default_user=user)
    report.count("associations", "created", len(created))


# ---------------------------------------------------------------- CSV rows -> package


def _package_from_csv_rows(
    *, rows: list[csv_format.CsvRow], framework: Framework, errors: list[str], warnings: list[str]
) -> case_format.PackageData:
    """Resolve identifiers, parents and prerequisites of CSV rows; raise listing every bad row."""
    existing = list(Competency.objects.filter(framework=framework))
    existing_by_identifier = {competency.identifier: competency for competency in existing}
    existing_by_code: dict[str, list[Competency]] = defaultdict(list)
    for competency in existing:
        if competency.code:
            existing_by_code[competency.code].append(competency)

    row_identifier: dict[int, uuid.UUID] = {}
    first_row_of: dict[uuid.UUID, int] = {}
    for row in rows:
        identifier = _csv_row_identifier(row, framework, existing_by_code, warnings)
        if identifier in first_row_of:
            errors.append(
                f"row {row.row_number}: identifier {identifier} repeats row {first_row_of[identifier]}"
            )
            continue
        first_row_of[identifier] = row.row_number
        row_identifier[row.row_number] = identifier

    # A reference (parent or prerequisite) may name a row or an existing competency, by code or identifier.
    references: dict[str, set[uuid.UUID]] = defaultdict(set)
    for competency in existing:
        references[str(competency.identifier)].add(competency.identifier)
        if competency.code:
            references[competency.code].add(competency.identifier)
    row_references: dict[str, set[uuid.UUID]] = defaultdict(set)
    for row in rows:
        if row.row_number not in row_identifier:
            continue
        identifier = row_identifier[row.row_number]
        for key in {row.identifier, str(identifier), row.code} - {""}:
            row_references[key].add(identifier)

    def resolve(reference: str, row: csv_format.CsvRow, what: str) -> uuid.UUID | None:
        parsed = case_format.parse_uuid(reference)
        key = str(parsed) if parsed else reference
        candidates = row_references.get(key) or references.get(key) or set()
        if len(candidates) == 1:
            return next(iter(candidates))
        if not candidates:
            errors.append(f"row {row.row_number}: {what} {reference!r} not found")
        else:
            errors.append(f"row {row.row_number}: {what} {reference!r} matches more than one competency")
        return None

    by_smart_level = {row.smart_level: row for row in rows if row.smart_level}
    items: list[ItemData] = []
    sort_keys: dict[uuid.UUID, tuple] = {}
    edges: list[EdgeData] = []
    row_of: dict[uuid.UUID, int] = {}
    for row in rows:
        identifier = row_identifier.get(row.row_number)
        if identifier is None:
            continue
        row_of[identifier] = row.row_number
        parent_identifier = None
        if row.parent:
            parent_identifier = resolve(row.parent, row, "parent")
        elif row.smart_level and "." in row.smart_level:
            parent_row = by_smart_level.get(row.smart_level.rsplit(".", 1)[0])
            parent_identifier = row_identifier.get(parent_row.row_number) if parent_row else None
        if parent_identifier == identifier:
            errors.append(f"row {row.row_number}: the row is its own parent")
            parent_identifier = None
        current = existing_by_identifier.get(identifier)
        items.append(
            ItemData(
                identifier=identifier,
                statement=row.statement,
                uri=current.uri if current else "",
                code=row.code,
                abbreviated_statement=row.abbreviated_statement,
                item_type=row.item_type,
                education_levels=row.education_levels,
                list_enumeration=row.list_enumeration,
                language=row.language,
                notes=row.notes,
                last_change_date_time=row.last_change_date_time
                or (current.last_change_date_time if current else None),
                case_extra=current.case_extra if current else {},
                parent_identifier=parent_identifier,
            )
        )
        smart_position = (
            case_format.parse_int(row.smart_level.rsplit(".", 1)[-1]) if row.smart_level else None
        )
        sequence = row.sequence_number if row.sequence_number is not None else smart_position
        sort_keys[identifier] = (
            (0, sequence, row.row_number) if sequence is not None else (1, 0, row.row_number)
        )
        for reference in row.prerequisites:
            prerequisite = resolve(reference, row, "prerequisite")
            if prerequisite:
                edges.append(EdgeData(None, prerequisite, identifier))
        for reference in row.precedes:
            later = resolve(reference, row, "precedes target")
            if later:
                edges.append(EdgeData(None, identifier, later))

    siblings: dict[uuid.UUID | None, list[ItemData]] = defaultdict(list)
    for item in items:
        siblings[item.parent_identifier].append(item)
    for group in siblings.values():
        for position, item in enumerate(sorted(group, key=lambda item: sort_keys[item.identifier])):
            item.position = position

    def name(identifier: Any) -> str:
        if identifier in row_of:
            return f"row {row_of[identifier]}"
        competency = existing_by_identifier.get(identifier)
        return competency.code or str(identifier) if competency else str(identifier)

    parent_links = [(item.identifier, item.parent_identifier) for item in items if item.parent_identifier]
    cycle = case_format.find_cycle(parent_links)
    if cycle:
        errors.append(f"{name(cycle[0])}: parents form a cycle: {' -> '.join(name(node) for node in cycle)}")
    for edge in edges:
        if edge.prerequisite_identifier == edge.competency_identifier:
            errors.append(f"{name(edge.competency_identifier)}: a competency cannot be its own prerequisite")
    edges = [edge for edge in edges if edge.prerequisite_identifier != edge.competency_identifier]
    cycle = case_format.find_cycle(
        (edge.prerequisite_identifier, edge.competency_identifier) for edge in edges
    )
    if cycle:
        errors.append(
            f"{name(cycle[0])}: prerequisites {' -> '.join(name(node) for node in cycle)} would form a cycle"
        )
    if errors:
        raise CatalogImportError(sorted(set(errors), key=_row_sort_key))
    unique_edges = list(
        {(edge.prerequisite_identifier, edge.competency_identifier): edge for edge in edges}.values()
    )
    return case_format.PackageData(
        document=None, items=items, edges=unique_edges, associations=[], warnings=warnings
    )


def _row_sort_key(message: str) -> tuple[int, str]:
    number = (
        case_format.parse_int(message.split(":", 1)[0].removeprefix("row "))
        if message.startswith("row ")
        else None
    )
    return (number if number is not None else 0, message)


def _csv_row_identifier(
    row: csv_format.CsvRow,
    framework: Framework,
    existing_by_code: dict[str, list[Competency]],
    warnings: list[str],
) -> uuid.UUID:
    if row.identifier:
        parsed = case_format.parse_uuid(row.identifier)
        if parsed:
            return parsed
        # A tool-specific key ("Math.Fractions"): derive a stable UUID so a re-import finds the same row.
        return uuid.uuid5(
            uuid.NAMESPACE_URL, f"urn:mastery:{framework.identifier}:identifier:{row.identifier}"
        )
    matches = existing_by_code.get(row.code, []) if row.code else []
    if len(matches) == 1:
        return matches[0].identifier
    if row.code:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"urn:mastery:{framework.identifier}:code:{row.code}")
    warnings.append(f"row {row.row_number}: no identifier and no code; a re-import will add it again")
    return uuid.uuid4()


# ---------------------------------------------------------------- export


def framework_export_case(*, framework: Framework) -> dict:
    """The framework as a CASE 1.1 CFPackage, validated against the official schema."""
    package = selectors.case_package_build(framework=framework)
    try:
        case_format.validate_package(package)
    except CaseFormatError as error:
        raise CatalogExportError(error.messages) from error
    return package


# ---------------------------------------------------------------- prerequisites


def prerequisite_add(
    *, prerequisite: Competency, competency: Competency, user: User | None = None
) -> Prerequisite:
    """Add the edge "``prerequisite`` before ``competency``"; refuse a self-edge, a duplicate or a cycle."""
    if prerequisite.pk == competency.pk:
        raise ValidationError(f"{_name(competency)} cannot be its own prerequisite")
    with transaction.atomic():
        # Lock the frameworks so two concurrent additions cannot close a cycle between them.
        framework_ids = {prerequisite.framework_id, competency.framework_id}
        list(Framework.objects.select_for_update().filter(pk__in=framework_ids).values_list("pk", flat=True))
        if Prerequisite.objects.filter(prerequisite=prerequisite, competency=competency).exists():
            raise ValidationError(f"{_name(prerequisite)} is already a prerequisite of {_name(competency)}")
        path = _prerequisite_path(start=competency.pk, goal=prerequisite.pk, framework_ids=framework_ids)
        if path:
            labels = dict(Competency.objects.filter(pk__in=path).values_list("pk", "code"))
            names = [labels.get(pk) or str(pk) for pk in [prerequisite.pk, *path]]
            raise ValidationError(f"{' -> '.join(names)} would form a cycle")
        edge = Prerequisite(prerequisite=prerequisite, competency=competency)
        edge._history_user = user  # type: ignore[attr-defined]
        edge.save()
    return edge


def prerequisite_remove(*, edge: Prerequisite, user: User | None = None) -> None:
    with transaction.atomic():
        edge._history_user = user  # type: ignore[attr-defined]
        edge.delete()


def _prerequisite_path(*, start: int, goal: int, framework_ids: set[int]) -> list[int] | None:
    """The chain start -> ... -> goal along existing edges (one query), or None."""
    pairs = Prerequisite.objects.filter(
        Q(competency__framework_id__in=framework_ids) | Q(prerequisite__framework_id__in=framework_ids)
    ).values_list("prerequisite_id", "competency_id")
    graph: dict[int, list[int]] = defaultdict(list)
    for before, after in pairs:
        graph[before].append(after)
    previous: dict[int, int | None] = {start: None}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for following in graph.get(node, ()):
                if following in previous:
                    continue
                previous[following] = node
                if following == goal:
                    path = [goal]
                    while previous[path[-1]] is not None:
                        path.append(previous[path[-1]])  # type: ignore[arg-type]
                    return list(reversed(path))
                next_frontier.append(following)
        frontier = next_frontier
    return None


def prerequisite_graph_has_cycle(*, framework: Framework) -> bool:
    pairs = Prerequisite.objects.filter(competency__framework=framework).values_list(
        "prerequisite_id", "competency_id"
    )
    return case_format.find_cycle(pairs) is not None


def _name(competency: Competency) -> str:
    return competency.code or str(competency.identifier)


# ---------------------------------------------------------------- life cycle


def framework_publish(*, framework: Framework, user: User | None = None) -> Framework:
    """Publish a framework: students can work on it and the CASE provider serves it."""
    with transaction.atomic():
        framework = Framework.objects.select_for_update().get(pk=framework.pk)
        if not framework.competencies.exists():
            raise ValidationError("A framework without competencies cannot be published.")
        if framework.status != Framework.Status.PUBLISHED:
            framework.status = Framework.Status.PUBLISHED
            framework._history_user = user  # type: ignore[attr-defined]
            framework.save(update_fields=["status", "updated_at"])
    return framework


def framework_retire(*, framework: Framework, user: User | None = None) -> Framework:
    """Retire a framework: kept with its evidence, no longer offered or served."""
    with transaction.atomic():
        framework = Framework.objects.select_for_update().get(pk=framework.pk)
        if framework.status != Framework.Status.RETIRED:
            framework.status = Framework.Status.RETIRED
            framework._history_user = user  # type: ignore[attr-defined]
            framework.save(update_fields=["status", "updated_at"])
    return framework
