"""Reading a framework from a flat CSV (one row per competency), with no Django import.

Header spellings vary between tools (``Human Coding Scheme``, ``humanCodingScheme``, ``HumanCodingScheme``),
so a header is matched after dropping case, spaces, dashes and underscores. Row numbers in messages are
spreadsheet line numbers: the header is row 1, the first competency row 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field

from competencies.case_format import CaseFormatError, parse_datetime, parse_int, text_list

# Canonical column -> accepted spellings (normalised: lower case, letters and digits only).
COLUMNS: dict[str, tuple[str, ...]] = {
    "identifier": ("identifier", "id", "uuid"),
    "statement": ("fullstatement", "statement"),
    "code": ("humancodingscheme", "code"),
    "parent": ("ischildof", "parent", "childof"),
    "sequence_number": ("sequencenumber", "sequence", "position"),
    "smart_level": ("smartlevel",),
    "abbreviated_statement": ("abbreviatedstatement",),
    "item_type": ("cfitemtype", "itemtype", "type"),
    "education_levels": ("educationlevel", "educationallevel", "grades", "gradelevel"),
    "list_enumeration": ("listenumeration",),
    "language": ("language",),
    "notes": ("notes",),
    "last_change_date_time": ("lastchangedatetime",),
    "prerequisites": ("prerequisites", "prerequisite"),
    "precedes": ("precedes",),
}


def normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


@dataclass
class CsvRow:
    row_number: int
    identifier: str = ""
    statement: str = ""
    code: str = ""
    parent: str = ""
    sequence_number: int | None = None
    smart_level: str = ""
    abbreviated_statement: str = ""
    item_type: str = ""
    education_levels: list[str] = field(default_factory=list)
    list_enumeration: str = ""
    language: str = ""
    notes: str = ""
    last_change_date_time: dt.datetime | None = None
    prerequisites: list[str] = field(default_factory=list)
    precedes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"row {self.row_number}"


def read_rows(source: bytes | str) -> tuple[list[CsvRow], list[str]]:
    """Every non-blank row and the row errors found; raise CaseFormatError only for an unreadable header."""
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                source = source.decode("cp1252")
            except UnicodeDecodeError as error:  # bytes Windows-1252 leaves undefined (0x81, 0x9d...)
                byte = f"byte {error.start} is 0x{source[error.start]:02x}"
                raise CaseFormatError(
                    [f"the file is neither UTF-8 nor Windows-1252 text ({byte})"]
                ) from error
    source = source.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(source))
    try:
        header = next(reader)
    except StopIteration:
        raise CaseFormatError(["the CSV file is empty"]) from None
    except csv.Error as error:
        raise CaseFormatError([f"row 1: {error}"]) from error
    column_index: dict[str, int] = {}
    for index, name in enumerate(header):
        normalised = normalise_header(name)
        for canonical, spellings in COLUMNS.items():
            if normalised in spellings and canonical not in column_index:
                column_index[canonical] = index
    if "statement" not in column_index:
        raise CaseFormatError(["row 1: there is no fullStatement column"])

    rows: list[CsvRow] = []
    errors: list[str] = []
    try:
        for row_number, values in enumerate(reader, start=2):
            if not any(value.strip() for value in values):
                continue

            def cell(name: str, values: list[str] = values) -> str:
                index = column_index.get(name)
                return values[index].strip() if index is not None and index < len(values) else ""

            row = CsvRow(
                row_number=row_number,
                identifier=cell("identifier"),
                statement=cell("statement"),
                code=cell("code"),
                parent=cell("parent"),
                sequence_number=parse_int(cell("sequence_number")),
                smart_level=cell("smart_level"),
                abbreviated_statement=cell("abbreviated_statement"),
                item_type=cell("item_type"),
                education_levels=text_list(cell("education_levels")),
                list_enumeration=cell("list_enumeration"),
                language=cell("language"),
                notes=cell("notes"),
                last_change_date_time=parse_datetime(cell("last_change_date_time")),
                prerequisites=text_list(cell("prerequisites")),
                precedes=text_list(cell("precedes")),
            )
            if not row.statement:
                errors.append(f"row {row_number}: fullStatement is empty")
            rows.append(row)
    except csv.Error as error:
        errors.append(f"row {reader.line_num}: {error}")
    return rows, errors
