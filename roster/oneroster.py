"""Reading a OneRoster 1.1 CSV package: a folder, a zip file or the bytes of an uploaded zip.

Lenient in what it reads: UTF-8 with or without a byte order mark, header names matched without regard
to case or surrounding spaces, extra columns (``metadata.*`` and others) ignored, a blank ``status``
read as active, enumerations matched without regard to case, and a zip may hold the files in one top
folder. Strict about what it cannot guess: a missing required file or column, a duplicate
``sourcedId``, an invalid date or an unknown role is an error naming the file and the row. Rows are
numbered the way a spreadsheet shows them: the header is row 1, so the first data row is row 2.

This module parses only; it never touches the database. ``roster.services.oneroster_import`` resolves
references and writes.
"""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROW_CONVENTION = "Rows are numbered with the header as row 1, so the first data row is row 2."

# The order in which the files depend on each other, and the one in which they are written.
FILE_NAMES = ("orgs", "academicSessions", "courses", "classes", "users", "enrollments")

# Columns that must be in each file's header (OneRoster 1.1 marks them required). Other 1.1 columns are
# read when present.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "orgs": ("sourcedId", "name", "type"),
    "academicSessions": ("sourcedId", "title", "type", "startDate", "endDate"),
    "courses": ("sourcedId", "title", "orgSourcedId"),
    "classes": ("sourcedId", "title", "courseSourcedId", "schoolSourcedId", "termSourcedIds"),
    "users": ("sourcedId", "enabledUser", "orgSourcedIds", "role", "username", "givenName", "familyName"),
    "enrollments": ("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "orgs": ("status", "dateLastModified", "identifier", "parentSourcedId"),
    "academicSessions": ("status", "dateLastModified", "parentSourcedId", "schoolYear"),
    "courses": (
        "status",
        "dateLastModified",
        "schoolYearSourcedId",
        "courseCode",
        "grades",
        "subjects",
        "subjectCodes",
    ),
    "classes": (
        "status",
        "dateLastModified",
        "grades",
        "classCode",
        "classType",
        "location",
        "subjects",
        "subjectCodes",
        "periods",
    ),
    "users": (
        "status",
        "dateLastModified",
        "userIds",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
    ),
    "enrollments": ("status", "dateLastModified", "primary", "beginDate", "endDate"),
}

ORG_TYPES = ("department", "school", "district", "local", "state", "national")
SESSION_TYPES = ("schoolYear", "semester", "term", "gradingPeriod")
USER_ROLES = ("administrator", "aide", "guardian", "parent", "proctor", "relative", "student", "teacher")
ENROLLMENT_ROLES = ("administrator", "proctor", "student", "teacher")
STATUSES = ("active", "tobedeleted")
MODES = ("bulk", "delta", "absent")

# A package is a few MB even for a large district; refuse anything that would not fit in memory.
MAX_FILE_BYTES = 200 * 1024 * 1024


class OneRosterError(Exception):
    """The package cannot be read; ``messages`` lists every problem found, each naming file and row."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


@dataclass
class Row:
    """One data row of one file, with its row number (the header is row 1)."""

    file: str
    number: int
    sourced_id: str
    is_deleted: bool
    values: dict[str, str]

    @property
    def where(self) -> str:
        return f"{self.file}.csv row {self.number}"

    def get(self, column: str) -> str:
        return self.values.get(column, "").strip()


@dataclass
class Org:
    row: Row
    name: str
    type: str
    identifier: str
    parent_sourced_id: str


@dataclass
class Session:
    row: Row
    title: str
    type: str
    start_date: datetime.date | None
    end_date: datetime.date | None
    parent_sourced_id: str
    school_year: int | None


@dataclass
class CourseRow:
    row: Row
    title: str
    code: str
    org_sourced_id: str
    grades: list[str]
    subjects: list[str]


@dataclass
class ClassRow:
    row: Row
    title: str
    code: str
    course_sourced_id: str
    school_sourced_id: str
    term_sourced_id: str
    grades: list[str]
    location: str


@dataclass
class UserRow:
    row: Row
    is_enabled: bool
    org_sourced_ids: list[str]
    role: str
    username: str
    given_name: str
    family_name: str
    email: str
    grades: list[str]


@dataclass
class EnrollmentRow:
    row: Row
    class_sourced_id: str
    school_sourced_id: str
    user_sourced_id: str
    role: str
    is_primary: bool
    begin_date: datetime.date | None
    end_date: datetime.date | None


@dataclass
class Package:
    """The parsed files of one package. ``modes`` maps each file to bulk, delta or absent."""

    modes: dict[str, str] = field(default_factory=dict)
    orgs: list[Org] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    courses: list[CourseRow] = field(default_factory=list)
    classes: list[ClassRow] = field(default_factory=list)
    users: list[UserRow] = field(default_factory=list)
    enrollments: list[EnrollmentRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# Reading the source ------------------------------------------------------------------------------


def read_files(source: Path | str | bytes) -> dict[str, bytes]:
    """Return ``{file name: bytes}`` of the CSV files of a folder, a zip path or zip bytes."""
    if isinstance(source, bytes | bytearray):
        return _read_zip(io.BytesIO(source), "the uploaded file")
    path = Path(source)
    if path.is_dir():
        return {
            child.name: child.read_bytes()
            for child in sorted(path.iterdir())
            if child.is_file() and child.suffix.lower() == ".csv"
        }
    if path.is_file():
        return _read_zip(path, path.name)
    raise OneRosterError([f"{source}: no such folder or zip file"])


def _read_zip(file: Path | io.BytesIO, label: str) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(file) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.is_dir()
                and not info.filename.startswith("__MACOSX/")
                and info.filename.lower().endswith(".csv")
            ]
            manifest_paths = [
                PurePosixPath(info.filename)
                for info in members
                if PurePosixPath(info.filename).name == "manifest.csv"
            ]
            # The files sit next to manifest.csv: at the root, or in one top folder.
            top = min(manifest_paths, key=lambda p: len(p.parts)).parent if manifest_paths else None
            files: dict[str, bytes] = {}
            for info in members:
                member_path = PurePosixPath(info.filename)
                if top is not None and member_path.parent != top:
                    continue
                if info.file_size > MAX_FILE_BYTES:
                    raise OneRosterError([f"{member_path.name}: larger than {MAX_FILE_BYTES} bytes"])
                files[member_path.name] = archive.read(info)
            return files
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as error:
        raise OneRosterError([f"{label}: not a valid zip file ({error})"]) from error


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise OneRosterError([f"{name}: not UTF-8 text (byte {error.start})"]) from error


def _read_csv(name: str, data: bytes) -> tuple[list[str], list[list[str]]]:
    text = _decode(name, data)
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise OneRosterError([f"{name}: not a readable CSV file ({error})"]) from error
    records = [record for record in records if any(cell.strip() for cell in record)]
    if not records:
        return [], []
    return [cell.strip() for cell in records[0]], records[1:]


def read_manifest(files: dict[str, bytes]) -> tuple[dict[str, str], list[str]]:
    """Return ``{file: mode}`` for the six files, and warnings."""
    if "manifest.csv" not in files:
        raise OneRosterError(["manifest.csv: missing required file"])
    header, records = _read_csv("manifest.csv", files["manifest.csv"])
    lowered = [column.lower() for column in header]
    if "propertyname" not in lowered or "value" not in lowered:
        raise OneRosterError(["manifest.csv: missing required column 'propertyName' or 'value'"])
    name_index, value_index = lowered.index("propertyname"), lowered.index("value")
    properties = {}
    for record in records:
        padded = record + [""] * (len(header) - len(record))
        properties[padded[name_index].strip()] = padded[value_index].strip()

    modes: dict[str, str] = {}
    warnings: list[str] = []
    errors: list[str] = []
    for name, value in properties.items():
        if not name.startswith("file.") or name[5:] not in FILE_NAMES:
            continue
        mode = value.lower()
        if mode not in MODES:
            errors.append(f"manifest.csv: {name} is '{value}', expected bulk, delta or absent")
            continue
        modes[name[5:]] = mode
    for name in FILE_NAMES:
        csv_name = f"{name}.csv"
        mode = modes.get(name)
        if mode in ("bulk", "delta") and csv_name not in files:
            errors.append(f"{csv_name}: missing required file (manifest.csv says file.{name} is {mode})")
        elif mode is None and csv_name in files:
            modes[name] = "bulk"
            warnings.append(f"manifest.csv does not list file.{name}; {csv_name} was read as bulk")
        elif mode == "absent" and csv_name in files:
            warnings.append(f"manifest.csv says file.{name} is absent; {csv_name} was ignored")
        modes.setdefault(name, "absent")
    other_files = sorted(set(files) - {"manifest.csv"} - {f"{name}.csv" for name in FILE_NAMES})
    for other in other_files:
        warnings.append(f"{other} is not a OneRoster 1.1 file this importer reads; it was ignored")
    if errors:
        raise OneRosterError(errors)
    if all(mode == "absent" for mode in modes.values()):
        raise OneRosterError(["manifest.csv: no file is listed as bulk or delta"])
    return modes, warnings


# Parsing rows ------------------------------------------------------------------------------------


class _FileReader:
    """Reads one CSV file into ``Row``s, collecting errors instead of stopping at the first."""

    def __init__(self, name: str, data: bytes, errors: list[str]):
        self.name = name
        self.errors = errors
        self.rows: list[Row] = []
        header, records = _read_csv(f"{name}.csv", data)
        canonical = {column.lower(): column for column in REQUIRED_COLUMNS[name] + OPTIONAL_COLUMNS[name]}
        columns = [canonical.get(column.lower(), column) for column in header]
        missing = [column for column in REQUIRED_COLUMNS[name] if column not in columns]
        if missing:
            for column in missing:
                errors.append(f"{name}.csv: missing required column '{column}'")
            return
        first_row: dict[str, int] = {}
        for number, record in enumerate(records, start=2):
            values = dict(zip(columns, record, strict=False))
            sourced_id = values.get("sourcedId", "").strip()
            status = values.get("status", "").strip().lower() or "active"
            where = f"{name}.csv row {number}"
            if not sourced_id:
                errors.append(f"{where}: sourcedId is blank")
                continue
            if sourced_id in first_row:
                errors.append(
                    f"{where}: duplicate sourcedId '{sourced_id}' (first on row {first_row[sourced_id]})"
                )
                continue
            first_row[sourced_id] = number
            if status not in STATUSES:
                errors.append(
                    f"{where}: status '{values.get('status', '').strip()}' is not active or tobedeleted"
                )
                continue
            self.rows.append(Row(name, number, sourced_id, status == "tobedeleted", values))

    def required(self, row: Row, column: str) -> str:
        value = row.get(column)
        if not value and not row.is_deleted:
            self.errors.append(f"{row.where}: {column} is blank")
        return value

    def choice(self, row: Row, column: str, choices: tuple[str, ...], what: str) -> str:
        value = row.get(column)
        if not value and row.is_deleted:
            return ""
        by_lower = {choice.lower(): choice for choice in choices}
        if value.lower() not in by_lower:
            self.errors.append(
                f"{row.where}: unknown {what} '{value}' (expected one of {', '.join(choices)})"
            )
            return ""
        return by_lower[value.lower()]

    def date(self, row: Row, column: str, *, required: bool) -> datetime.date | None:
        value = row.get(column)
        if not value:
            if required and not row.is_deleted:
                self.errors.append(f"{row.where}: {column} is blank")
            return None
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            self.errors.append(f"{row.where}: invalid date '{value}' in {column} (expected YYYY-MM-DD)")
            return None

    def boolean(self, row: Row, column: str, *, default: bool) -> bool:
        value = row.get(column).lower()
        if not value:
            return default
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no"):
            return False
        self.errors.append(f"{row.where}: {column} '{row.get(column)}' is not true or false")
        return default


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_package(source: Path | str | bytes) -> Package:
    """Read and check every file of the package; raise ``OneRosterError`` listing every problem."""
    files = read_files(source)
    modes, warnings = read_manifest(files)
    package = Package(modes=modes, warnings=warnings)
    errors: list[str] = []
    readers: dict[str, _FileReader] = {}
    for name in FILE_NAMES:
        if modes[name] != "absent":
            readers[name] = _FileReader(name, files[f"{name}.csv"], errors)

    if reader := readers.get("orgs"):
        for row in reader.rows:
            package.orgs.append(
                Org(
                    row=row,
                    name=reader.required(row, "name"),
                    type=reader.choice(row, "type", ORG_TYPES, "org type"),
                    identifier=row.get("identifier"),
                    parent_sourced_id=row.get("parentSourcedId"),
                )
            )
    if reader := readers.get("academicSessions"):
        for row in reader.rows:
            start_date = reader.date(row, "startDate", required=True)
            end_date = reader.date(row, "endDate", required=True)
            if start_date and end_date and end_date < start_date:
                errors.append(f"{row.where}: endDate {end_date} is before startDate {start_date}")
            school_year_text = row.get("schoolYear")
            school_year = None
            if school_year_text:
                if school_year_text.isdigit():
                    school_year = int(school_year_text)
                else:
                    errors.append(f"{row.where}: schoolYear '{school_year_text}' is not a year")
            package.sessions.append(
                Session(
                    row=row,
                    title=reader.required(row, "title"),
                    type=reader.choice(row, "type", SESSION_TYPES, "session type"),
                    start_date=start_date,
                    end_date=end_date,
                    parent_sourced_id=row.get("parentSourcedId"),
                    school_year=school_year,
                )
            )
    if reader := readers.get("courses"):
        for row in reader.rows:
            package.courses.append(
                CourseRow(
                    row=row,
                    title=reader.required(row, "title"),
                    code=row.get("courseCode"),
                    org_sourced_id=reader.required(row, "orgSourcedId"),
                    grades=_split(row.get("grades")),
                    subjects=_split(row.get("subjects")),
                )
            )
    if reader := readers.get("classes"):
        for row in reader.rows:
            term_ids = _split(reader.required(row, "termSourcedIds"))
            package.classes.append(
                ClassRow(
                    row=row,
                    title=reader.required(row, "title"),
                    code=row.get("classCode"),
                    course_sourced_id=reader.required(row, "courseSourcedId"),
                    school_sourced_id=reader.required(row, "schoolSourcedId"),
                    term_sourced_id=term_ids[0] if term_ids else "",
                    grades=_split(row.get("grades")),
                    location=row.get("location"),
                )
            )
    if reader := readers.get("users"):
        for row in reader.rows:
            package.users.append(
                UserRow(
                    row=row,
                    is_enabled=reader.boolean(row, "enabledUser", default=True),
                    org_sourced_ids=_split(reader.required(row, "orgSourcedIds")),
                    role=reader.choice(row, "role", USER_ROLES, "role"),
                    username=row.get("username") or row.sourced_id,
                    given_name=row.get("givenName"),
                    family_name=row.get("familyName"),
                    email=row.get("email"),
                    grades=_split(row.get("grades")),
                )
            )
    if reader := readers.get("enrollments"):
        for row in reader.rows:
            package.enrollments.append(
                EnrollmentRow(
                    row=row,
                    class_sourced_id=reader.required(row, "classSourcedId"),
                    school_sourced_id=row.get("schoolSourcedId"),
                    user_sourced_id=reader.required(row, "userSourcedId"),
                    role=reader.choice(row, "role", ENROLLMENT_ROLES, "enrollment role"),
                    is_primary=reader.boolean(row, "primary", default=False),
                    begin_date=reader.date(row, "beginDate", required=False),
                    end_date=reader.date(row, "endDate", required=False),
                )
            )
    if errors:
        raise OneRosterError(errors)
    return package
