"""A synthetic school district at a chosen size, for benchmarks and load tests (``generate_district``).

Default size (``scale`` 1): 30,000 students in 1,200 sections (the first has 40 students, the rest share
the others evenly), one teacher per five sections, a framework of 150 competencies (strands > units >
leaves, each leaf requiring the one before it), 3,000 numeric items aligned to the leaves, a practice
and a mastery check per leaf, and 3,000,000 scored responses over the school year 2025-26 (five items an
attempt). ``scale`` multiplies every count except the framework, which a district does not shrink.

Learning curves: each student has an ability, a growth rate and a kind: most improve through the leaves in
order (practice, then the mastery check, a retake or more practice when it is not met), some stall (no
growth, low ability: repeated failed checks), some stop (their activity ends part way through the year).
What is stored is what the services would store for that work: completed attempts with their items,
scored responses, per-competency results on the framework's scale (``assessments.scoring``), and one
``attempt`` evidence row per attempt (``progress.services.evidence_record_for_attempt``). History tables
are not written for generated rows. Stored mastery is left to the recompute (``progress.district``).

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``, so a seed gives the same
district, row for row. Rows are written with PostgreSQL ``COPY`` (text format, explicit ids, sequences
moved past them afterwards) in batches; on other databases with ``bulk_create`` (small sizes only).

Speed (the target is the speed of COPY itself; 30,000 students went from 280 s to about 50 s):
- the COPY text is built by NumPy a column at a time (``copy_text``): digits, dates and constants as
  byte arrays put side by side, no Python per row; the next batch is built while the server reads one;
- the bulk tables (``BULK_MODELS``) are loaded bare, in the one transaction (``bulk_load``): indexes,
  unique constraints and foreign keys are dropped before the load and made again after it from their
  own definitions; each index is one sort instead of millions of inserts, and each foreign key one join
  instead of a deferred check queued per row and run one by one at commit (the commit alone took a
  third of the time before). The tables are emptied in the same transaction, so COPY can ``FREEZE``
  the rows (no hint-bit writes or freezing vacuum later). Then ``ANALYZE``.
While it runs the bulk tables are locked (it is a generator for a benchmark or demo database).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
from django.contrib.auth.hashers import make_password
from django.db import connection, models, transaction

from assessments.models import (
    Assessment,
    Attempt,
    AttemptCompetencyScore,
    AttemptItem,
    BlueprintRule,
    Item,
    ItemAlignment,
    Response,
)
from competencies.models import (
    CalculationMethod,
    Competency,
    Framework,
    MasteryLevel,
    MasteryScale,
    PacingGuide,
    PacingTarget,
    Prerequisite,
)
from progress.models import CompetencyMastery, Evidence, InterventionFlag
from roster.models import Course, District, Enrollment, School, Section, Term, User

STUDENTS = 30_000
SECTIONS = 1_200
COMPETENCIES = 150
ITEMS = 3_000
RESPONSES = 3_000_000
ITEMS_PER_ATTEMPT = 5
SECTIONS_PER_TEACHER = 5
FIRST_SECTION_SIZE = 40
YEAR_START = date(2025, 8, 25)
YEAR_END = date(2026, 6, 5)
PASSWORD = "mastery-district"
COPY_BATCH = 250_000
#: Leaf calculation methods, in turn (w, d, n where the method takes one).
LEAF_METHODS = (
    (CalculationMethod.DECAYING_AVERAGE, Decimal("0.65")),
    (CalculationMethod.BKT, None),
    (CalculationMethod.N_TIMES, Decimal("2")),
    (CalculationMethod.WEIGHTED_AVERAGE, Decimal("0.65")),
    (CalculationMethod.LATEST, None),
    (CalculationMethod.HIGHEST, None),
    (CalculationMethod.AVERAGE, None),
)
#: The tables holding the bulk of a district, loaded bare (``bulk_load``): indexes after the rows.
BULK_MODELS = (PacingTarget, Attempt, AttemptItem, Response, AttemptCompetencyScore, Evidence)
#: Tables a generated district fills: a database holding any of these rows is not empty.
GUARDED_MODELS = (User, Competency, Attempt, Evidence, CompetencyMastery)

Progress = Callable[[str], None]


class DistrictNotEmpty(Exception):
    """The database already holds a district (users, competencies, attempts or evidence)."""


@dataclass(frozen=True)
class Size:
    students: int
    sections: int
    competencies: int
    items: int
    responses: int

    @classmethod
    def of(cls, scale: float = 1.0, students: int | None = None, competencies: int = COMPETENCIES) -> Size:
        """Counts for ``scale`` (every count times it), or for ``students`` (the others in proportion)."""
        if students is not None:
            scale = students / STUDENTS
        if scale <= 0:
            raise ValueError("the scale must be above 0")
        students = students if students is not None else max(1, round(STUDENTS * scale))
        sections = max(1, round(SECTIONS * scale))
        competencies = max(7, competencies)
        leaves = _framework_shape(competencies)[2]
        items = max(round(ITEMS * scale), ITEMS_PER_ATTEMPT * leaves)
        responses = max(ITEMS_PER_ATTEMPT, round(RESPONSES * scale) // ITEMS_PER_ATTEMPT * ITEMS_PER_ATTEMPT)
        return cls(students, sections, competencies, items, responses)

    @property
    def attempts(self) -> int:
        return self.responses // ITEMS_PER_ATTEMPT


def _framework_shape(competencies: int) -> tuple[int, int, int]:
    """(strands, units, leaves) adding up to ``competencies``."""
    strands = max(1, competencies // 30)
    units = min(strands * 5, max(1, (competencies - strands) // 5))
    return strands, units, competencies - strands - units


def database_is_empty() -> bool:
    return not any(model.objects.exists() for model in GUARDED_MODELS)


def clear_database() -> None:
    """Delete every row of the project's tables (the --replace of ``generate_district``)."""
    from django.apps import apps

    tables = [
        model._meta.db_table
        for config in apps.get_app_configs()
        if config.label in {"roster", "competencies", "assessments", "progress"}
        for model in config.get_models(include_auto_created=True)
        if not model._meta.proxy and model._meta.managed
    ]
    existing = set(connection.introspection.table_names())
    tables = [table for table in tables if table in existing]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            quoted = ", ".join(connection.ops.quote_name(table) for table in tables)
            # Inside a transaction that wrote rows (a test), their deferred checks must run first.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
        else:
            for model in (
                Evidence,
                CompetencyMastery,
                InterventionFlag,
                Response,
                AttemptItem,
                AttemptCompetencyScore,
                Attempt,
            ):
                model.objects.all().delete()
            with transaction.atomic():
                cursor.execute("PRAGMA defer_foreign_keys = ON")
                for table in tables:
                    cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")
        User.objects.all().delete()
        if connection.vendor == "sqlite":  # ids from 1 again, as TRUNCATE ... RESTART IDENTITY does
            placeholders = ", ".join(["%s"] * len(tables))
            cursor.execute(f"DELETE FROM sqlite_sequence WHERE name IN ({placeholders})", tables)


# --- writing --------------------------------------------------------------------------------------
#
# COPY text built by NumPy: each column becomes its bytes (digits, dates, constants) and the block of
# rows is assembled with offset arithmetic, so no Python runs per row. The bulk tables are loaded bare
# (``bulk_load``): their indexes and constraints are dropped first and built once at the end, which is
# what makes the load run at the speed of COPY (an index maintained row by row, and a deferred foreign
# key check queued per row and run one by one at commit, cost many times the COPY itself).

_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Whole numbers 0 <= v < 10**width as zero-padded digits: a (count, width) uint8 array."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return _DIGITS[(values.astype(np.int64)[:, None] // powers) % 10]


def _timestamp_bytes(values: np.ndarray) -> np.ndarray:
    """datetime64 (UTC) as ``YYYY-MM-DD HH:MM:SS+00``: a (count, 22) uint8 array."""
    seconds = values.astype("datetime64[s]")
    days = seconds.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    years = months.astype("datetime64[Y]")
    of_day = (seconds - days).astype(np.int64)
    count = values.shape[0]

    def text(constant: bytes) -> np.ndarray:
        return np.broadcast_to(np.frombuffer(constant, dtype=np.uint8), (count, len(constant)))

    return np.hstack(
        (
            _digits(years.astype(np.int64) + 1970, 4),
            text(b"-"),
            _digits((months - years).astype(np.int64) + 1, 2),
            text(b"-"),
            _digits((days - months).astype(np.int64) + 1, 2),
            text(b" "),
            _digits(of_day // 3600, 2),
            text(b":"),
            _digits(of_day // 60 % 60, 2),
            text(b":"),
            _digits(of_day % 60, 2),
            text(b"+00"),
        )
    )


#: Per byte: does COPY's text format need it escaped (backslash, tab, newline, carriage return)?
_SPECIAL = np.zeros(256, dtype=bool)
_SPECIAL[list(b"\\\t\n\r")] = True
#: Decimal places of float columns (written fixed-point; the numeric columns round them to theirs).
FLOAT_PLACES = 6


def _number_bytes(array: np.ndarray) -> np.ndarray:
    """Whole numbers (right-aligned to one width: PostgreSQL reads leading spaces) or floats (fixed point,
    ``FLOAT_PLACES`` decimals) as a (count, width) uint8 array. Negative numbers are not written."""
    if array.dtype.kind == "f":
        scaled = np.rint(array * 10**FLOAT_PLACES).astype(np.int64)
        whole = _number_bytes(scaled // 10**FLOAT_PLACES)
        point = np.full((array.shape[0], 1), ord("."), dtype=np.uint8)
        return np.hstack((whole, point, _digits(scaled % 10**FLOAT_PLACES, FLOAT_PLACES)))
    array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise ValueError("negative numbers are not written by copy_text")
    largest = int(array.max()) if array.size else 0
    matrix = _digits(array, len(str(largest)))
    # Leading zeros as spaces: numbers and JSON numbers alike read them as whitespace.
    leading = ~np.logical_or.accumulate(matrix[:, :-1] != ord("0"), axis=1)
    matrix[:, :-1][leading] = ord(" ")
    return matrix


def _column_bytes(value, count: int) -> tuple[np.ndarray, np.ndarray | None]:
    """One column as COPY text: a (count, width) uint8 array and, when its rows differ in length, each
    row's length (a row's bytes are the first ``length`` of its line; None: every row is ``width``).

    ``value``: one constant for every row (a str, None for NULL, a datetime64) or an array of ``count``
    values (whole numbers, floats, bools, strings, datetime64; a masked array's masked rows are NULL).
    """
    if value is None:
        value = "\\N"
    if isinstance(value, np.datetime64):
        value = _timestamp_bytes(np.array([value])).tobytes().decode()
    if isinstance(value, str):
        constant = np.frombuffer(value.encode(), dtype=np.uint8)
        if value != "\\N" and _SPECIAL[constant].any():
            raise ValueError(f"COPY text would need escaping: {value!r}")
        return np.broadcast_to(constant, (count, constant.size)), None
    mask = np.ma.getmaskarray(value) if np.ma.isMaskedArray(value) else None
    array = np.ma.getdata(value) if mask is not None else np.asarray(value)
    lengths = None
    if array.dtype == np.bool_:
        matrix = np.where(array, ord("t"), ord("f")).astype(np.uint8)[:, None]
    elif np.issubdtype(array.dtype, np.datetime64):
        matrix = _timestamp_bytes(array)
    elif array.dtype.kind in "iuf":
        matrix = _number_bytes(np.where(mask, 0, array) if mask is not None else array)
    else:  # strings: their own lengths (byte strings are padded with zero bytes on the right)
        if array.dtype.kind == "U":
            array = np.char.encode(array, "ascii")
        matrix = array.view(np.uint8).reshape(count, array.dtype.itemsize)
        if _SPECIAL[matrix].any():
            raise ValueError("COPY text would need escaping in a column of strings")
        lengths = (matrix != 0).sum(axis=1)
        if (lengths == matrix.shape[1]).all():
            lengths = None
    if mask is not None and mask.any():
        null = np.zeros((count, max(2, matrix.shape[1])), dtype=np.uint8)
        null[:, : matrix.shape[1]] = matrix
        null[mask, :2] = np.frombuffer(b"\\N", dtype=np.uint8)
        lengths = np.where(mask, 2, matrix.shape[1] if lengths is None else lengths)
        matrix = null
    return matrix, lengths


def copy_text(values: list, count: int) -> bytes:
    """Rows of COPY's text format (tab between columns, newline after each row) for ``count`` rows of
    the columns ``values`` (each as ``_column_bytes`` takes it), assembled without a loop over rows:
    when every column has one width, as slices of one (rows, line width) array; otherwise each
    column's bytes are placed by offset arithmetic."""
    columns = [_column_bytes(value, count) for value in values]
    if all(lengths is None for _, lengths in columns):
        width = sum(matrix.shape[1] for matrix, _ in columns) + len(columns)
        lines = np.full((count, width), ord("\t"), dtype=np.uint8)
        start = 0
        for matrix, _ in columns:
            lines[:, start : start + matrix.shape[1]] = matrix
            start += matrix.shape[1] + 1
        lines[:, -1] = ord("\n")
        return lines.tobytes()
    lengths = np.vstack(
        [np.full(count, matrix.shape[1]) if length is None else length for matrix, length in columns]
    )
    line_end = np.cumsum(lengths.sum(axis=0) + len(columns))  # with the tabs and the newline
    output = np.full(int(line_end[-1]), ord("\t"), dtype=np.uint8)
    start = line_end - lengths.sum(axis=0) - len(columns)
    for (matrix, _), length in zip(columns, lengths, strict=True):
        used = np.arange(matrix.shape[1]) < length[:, None]
        output[(start[:, None] + np.arange(matrix.shape[1]))[used]] = matrix[used]
        start = start + length + 1
    output[line_end - 1] = ord("\n")
    return output.tobytes()


def _python_value(field: models.Field, value):
    if value is None or (isinstance(value, str | np.str_) and value == "\\N"):
        return None
    if value is np.ma.masked:
        return None
    if isinstance(value, np.datetime64):
        seconds = int(value.astype("datetime64[s]").astype(np.int64))
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(field, models.DecimalField):
        return Decimal(str(value))
    if isinstance(field, models.BooleanField):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def write_rows(
    model: type[models.Model],
    count: int,
    columns: dict,
    progress: Progress | None = None,
    *,
    freeze: bool = False,
) -> None:
    """Insert ``count`` rows of ``model``: ``columns`` maps field names (``attname``, e.g.
    ``student_id``) to an array of ``count`` values or one constant (a str, None) for every row.

    PostgreSQL: COPY in batches of ``COPY_BATCH`` rows (``freeze``: ``COPY ... FREEZE``, for a table
    ``bulk_load`` emptied in this transaction); elsewhere ``bulk_create``. Fields not given take
    their default (auto_now fields: now). Ids must be given; the sequence is moved past them.
    """
    if count == 0:
        return
    now = np.datetime64(datetime.now(tz=UTC).replace(tzinfo=None), "s")
    names: list[str] = []
    values: list = []
    for field in model._meta.concrete_fields:
        if field.attname in columns:
            value = columns[field.attname]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        elif field.has_default():
            value = field.get_default()
            if isinstance(field, models.JSONField):
                value = "[]" if value == [] else "{}"
            elif isinstance(value, bool):
                value = "t" if value else "f"
            elif value is not None:
                value = str(value)
        elif field.null:
            value = None
        else:
            raise ValueError(f"{model.__name__}.{field.attname} needs a value")
        names.append(field.attname)
        values.append(value)
    if connection.vendor != "postgresql":
        _bulk_create(model, count, names, values)
        return
    table = connection.ops.quote_name(model._meta.db_table)
    column_list = ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in names)
    options = " WITH (FREEZE)" if freeze else ""
    started = time.monotonic()

    def text(start: int) -> bytes:
        stop = min(count, start + COPY_BATCH)
        return copy_text(
            [value if np.ndim(value) == 0 else value[start:stop] for value in values], stop - start
        )

    # The next batch's text is built (NumPy, mostly outside the GIL) while the server reads this one.
    with connection.cursor() as cursor, ThreadPoolExecutor(max_workers=1) as builder:
        raw = cursor.cursor
        starts = range(0, count, COPY_BATCH)
        pending = builder.submit(text, starts[0])
        for index, start in enumerate(starts):
            block = pending.result()
            if index + 1 < len(starts):
                pending = builder.submit(text, starts[index + 1])
            raw.copy_expert(
                f"COPY {table} ({column_list}) FROM STDIN{options}", io.BytesIO(block), size=1 << 20
            )
            del block
            if progress is not None and count > COPY_BATCH:
                stop = min(count, start + COPY_BATCH)
                progress(
                    f"  {model.__name__}: {stop:,} of {count:,} rows ({time.monotonic() - started:.1f} s)"
                )
        if model._meta.pk.attname in columns:
            sequence = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{sequence}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
            )


def _bulk_create(model: type[models.Model], count: int, names: list[str], values: list) -> None:
    fields = [model._meta.get_field(name) for name in names]
    objects = []
    for index in range(count):
        data = {}
        for field, name, value in zip(fields, names, values, strict=True):
            if isinstance(value, str | None) and not (
                isinstance(value, str) and isinstance(field, models.JSONField)
            ):
                item = value
                if isinstance(field, models.BooleanField) and isinstance(item, str):
                    item = item == "t"
                elif isinstance(field, models.DateTimeField) and isinstance(item, str):
                    item = datetime.fromisoformat(item)
                data[name] = item
            elif isinstance(value, str):
                data[name] = json.loads(value)
            elif isinstance(value, np.datetime64):
                data[name] = _python_value(field, value)
            else:
                data[name] = _python_value(field, value[index])
        objects.append(model(**data))
    model.objects.bulk_create(objects, batch_size=500)


@contextmanager
def bulk_load(models_: tuple[type[models.Model], ...], say: Progress | None = None) -> Iterator[bool]:
    """Load ``models_``' tables bare, inside the caller's transaction: on entry their foreign keys (both
    ways), primary keys, unique constraints and indexes are dropped and the tables emptied (they must
    be empty: the rows are TRUNCATEd, so that COPY may FREEZE them); on a normal exit every one is made
    again from its own definition (``pg_get_constraintdef``, ``pg_get_indexdef``): each index built
    in one sort, each foreign key checked in one join. Yields whether COPY ... FREEZE may be used (on
    PostgreSQL); elsewhere (SQLite) it does nothing. An error rolls the transaction, DDL included, back.

    Pending deferred checks of the transaction run first (``SET CONSTRAINTS ALL IMMEDIATE``):
    PostgreSQL will not drop a foreign key that points at a table with checks still queued.
    """
    if connection.vendor != "postgresql":
        yield False
        return
    if not connection.in_atomic_block:  # each DDL would commit on its own, and FREEZE would fail
        raise RuntimeError("bulk_load runs inside transaction.atomic()")
    say = say or (lambda message: None)
    tables = [model._meta.db_table for model in models_]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            """
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype = 'f'
            FROM pg_constraint
            WHERE contype IN ('p', 'u', 'f')
              AND (conrelid = ANY(%s::regclass[]) OR confrelid = ANY(%s::regclass[]))
            ORDER BY contype = 'f', conrelid::regclass::text, conname
            """,
            [tables, tables],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            WHERE i.indrelid = ANY(%s::regclass[])
              AND NOT EXISTS (
                  SELECT 1 FROM pg_constraint c
                  WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x'))
            ORDER BY 1
            """,
            [tables],
        )
        indexes = cursor.fetchall()
        for table, name, _, _ in sorted(constraints, key=lambda row: not row[3]):  # foreign keys first
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        cursor.execute(f"TRUNCATE {', '.join(quote(table) for table in tables)}")
    yield True
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('maintenance_work_mem'), current_setting('work_mem')")
        saved = cursor.fetchone()
        # One sort per index and one hash join per foreign key: give them room (this transaction only).
        cursor.execute(
            "SELECT set_config('maintenance_work_mem', '256MB', true), set_config('work_mem', '128MB', true)"
        )
        for table, name, definition, is_foreign in constraints:
            if not is_foreign:
                cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
        for _, definition in indexes:
            cursor.execute(definition)
        say(f"  indexes and unique constraints built ({time.monotonic() - started:.1f} s)")
        for table, name, definition, is_foreign in constraints:
            if is_foreign:
                cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
        cursor.execute(
            "SELECT set_config('maintenance_work_mem', %s, true), set_config('work_mem', %s, true)", saved
        )
    say(f"  foreign keys checked ({time.monotonic() - started:.1f} s)")


# --- the district ---------------------------------------------------------------------------------


def _times(day_offsets: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """School days after the first day of the year, at 8:00 UTC plus ``seconds``."""
    days = np.busday_offset(np.datetime64(YEAR_START, "D"), day_offsets, roll="forward")
    return days.astype("datetime64[s]") + np.timedelta64(8 * 3600, "s") + seconds.astype("timedelta64[s]")


def school_days() -> int:
    return int(np.busday_count(np.datetime64(YEAR_START, "D"), np.datetime64(YEAR_END, "D")))


def generate(
    *, size: Size, seed: int = 1, progress: Progress | None = None, replace: bool = False
) -> dict[str, int]:
    """Write a district of ``size`` drawn from ``seed``; returns the row count of every table written.

    Refuses (``DistrictNotEmpty``) when the database already holds a district, unless ``replace``.
    """
    say = progress or (lambda message: None)
    if not database_is_empty():
        if not replace:
            raise DistrictNotEmpty(
                "The database already holds users, competencies, attempts or evidence; "
                "pass --replace to delete everything first."
            )
        say("Deleting the existing district ...")
        clear_database()
    _restart_ids()
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    started = time.monotonic()

    def done(name: str, count: int) -> None:
        counts[name] = count
        say(f"{name}: {count:,} rows ({time.monotonic() - started:.1f} s)")

    with transaction.atomic(), bulk_load(BULK_MODELS, say) as freeze:
        world = _write_catalog(size, rng, done)
        world["freeze"] = freeze
        _write_roster(size, rng, world, done, say)
        _write_work(size, rng, world, done, say)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    say(f"District written in {time.monotonic() - started:.1f} s.")
    return counts


def _restart_ids() -> None:
    """Ids of the catalog and roster tables from just past what they hold (1 when empty), so a seed
    gives the same ids too (PostgreSQL sequences do not go back when a transaction rolls back)."""
    if connection.vendor != "postgresql":
        return
    catalog = (District, MasteryScale, MasteryLevel, Framework, Competency, Prerequisite, Item, ItemAlignment)
    others = (Assessment, BlueprintRule, School, Term, Course, Section, PacingGuide)
    with connection.cursor() as cursor:
        for model in (*catalog, *others):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {connection.ops.quote_name(table)}), false)"
            )


def _uuid(rng: np.random.Generator) -> uuid.UUID:
    return uuid.UUID(bytes=rng.bytes(16), version=4)


def _write_catalog(size: Size, rng: np.random.Generator, done: Callable[[str, int], None]) -> dict:
    district = District.objects.create(name="Synthetic Unified School District", sourced_id="district-1")
    scale = MasteryScale.objects.create(name="Four-level scale", district=district)
    levels = MasteryLevel.objects.bulk_create(
        MasteryLevel(scale=scale, name=name, points=Decimal(points), is_mastery=points == 3)
        for points, name in ((1, "Beginning"), (2, "Developing"), (3, "Proficient"), (4, "Exceeding"))
    )
    framework = Framework.objects.create(
        identifier=_uuid(rng),
        title="Mathematics, grades 6-8 (synthetic)",
        district=district,
        status=Framework.Status.PUBLISHED,
        mastery_scale=scale,
        calculation_method=CalculationMethod.DECAYING_AVERAGE,
        calculation_parameter=Decimal("0.65"),
    )
    strands, units, leaves = _framework_shape(size.competencies)
    nodes: list[Competency] = []
    strand_nodes = [
        Competency(
            framework=framework,
            identifier=_uuid(rng),
            child_association_identifier=_uuid(rng),
            code=f"S{strand + 1}",
            statement=f"Strand {strand + 1}",
            position=strand,
        )
        for strand in range(strands)
    ]
    Competency.objects.bulk_create(strand_nodes)
    unit_nodes = [
        Competency(
            framework=framework,
            parent=strand_nodes[unit % strands],
            identifier=_uuid(rng),
            child_association_identifier=_uuid(rng),
            code=f"S{unit % strands + 1}.U{unit + 1}",
            statement=f"Unit {unit + 1}",
            position=unit // strands,
        )
        for unit in range(units)
    ]
    Competency.objects.bulk_create(unit_nodes)
    leaf_units = np.array_split(np.arange(leaves), units)
    leaf_nodes = []
    for unit, members in enumerate(leaf_units):
        for position, leaf in enumerate(members):
            method, parameter = LEAF_METHODS[int(leaf) % len(LEAF_METHODS)]
            leaf_nodes.append(
                Competency(
                    framework=framework,
                    parent=unit_nodes[unit],
                    identifier=_uuid(rng),
                    child_association_identifier=_uuid(rng),
                    code=f"{unit_nodes[unit].code}.{position + 1}",
                    statement=f"Skill {int(leaf) + 1} of unit {unit + 1}",
                    position=position,
                    calculation_method=method,
                    calculation_parameter=parameter,
                )
            )
    Competency.objects.bulk_create(leaf_nodes)
    nodes = strand_nodes + unit_nodes + leaf_nodes
    done("competencies", len(nodes))
    Prerequisite.objects.bulk_create(
        Prerequisite(identifier=_uuid(rng), prerequisite=leaf_nodes[index - 1], competency=leaf_nodes[index])
        for index in range(1, leaves)
    )
    done("prerequisites", leaves - 1)
    leaf_ids = np.array([node.pk for node in leaf_nodes], dtype=np.int64)

    # Items: numeric, answer_value a whole number; spread over the leaves in turn.
    item_leaf = np.arange(size.items) % leaves
    answers = rng.integers(2, 99, size.items)
    items = Item.objects.bulk_create(
        Item(
            district=district,
            type=Item.Type.NUMERIC,
            stem=f"Item {index + 1} on skill {int(item_leaf[index]) + 1}: what is {int(answers[index])}?",
            status=Item.Status.ACTIVE,
            answer_value=Decimal(int(answers[index])),
        )
        for index in range(size.items)
    )
    item_ids = np.array([item.pk for item in items], dtype=np.int64)
    ItemAlignment.objects.bulk_create(
        ItemAlignment(item_id=int(item_ids[index]), competency_id=int(leaf_ids[item_leaf[index]]))
        for index in range(size.items)
    )
    done("items", size.items)
    # Per leaf: its items (sorted ids), then a practice and a mastery check drawing five of them.
    order = np.argsort(item_leaf, kind="stable")
    leaf_item_ids = item_ids[order]
    leaf_item_start = np.searchsorted(item_leaf[order], np.arange(leaves))
    leaf_item_count = np.bincount(item_leaf, minlength=leaves)
    assessments = []
    for node in leaf_nodes:
        for kind in (Assessment.Kind.PRACTICE, Assessment.Kind.MASTERY_CHECK):
            assessments.append(
                Assessment(
                    district=district,
                    title=f"{node.code} {'practice' if kind == Assessment.Kind.PRACTICE else 'mastery check'}",
                    kind=kind,
                    competency=node,
                    remediation=Assessment.Remediation.NONE,
                    status=Assessment.Status.ACTIVE,
                )
            )
    Assessment.objects.bulk_create(assessments)
    BlueprintRule.objects.bulk_create(
        BlueprintRule(assessment=assessment, competency=assessment.competency, draw_count=ITEMS_PER_ATTEMPT)
        for assessment in assessments
    )
    done("assessments", len(assessments))
    # assessment id per (leaf, kind): kind 0 practice, 1 mastery check
    assessment_ids = np.array([assessment.pk for assessment in assessments], dtype=np.int64).reshape(
        leaves, 2
    )
    return {
        "district": district,
        "framework": framework,
        "levels": levels,
        "leaf_ids": leaf_ids,
        "leaf_item_ids": leaf_item_ids,
        "leaf_item_start": leaf_item_start,
        "leaf_item_count": leaf_item_count,
        "item_answers": dict(zip(item_ids.tolist(), answers.tolist(), strict=True)),
        "item_ids": item_ids,
        "answers": answers,
        "assessment_ids": assessment_ids,
    }


_FIRST = np.array(
    [
        "Ada",
        "Ben",
        "Cleo",
        "Dev",
        "Eli",
        "Fay",
        "Gus",
        "Hana",
        "Ivo",
        "Jin",
        "Kai",
        "Lea",
        "Mo",
        "Nia",
        "Omar",
        "Pia",
        "Quinn",
        "Rui",
        "Sol",
        "Tess",
    ]
)
_LAST = np.array(
    [
        "Abe",
        "Bose",
        "Cruz",
        "Diaz",
        "Eze",
        "Fox",
        "Gill",
        "Hale",
        "Ito",
        "Juarez",
        "Kim",
        "Lund",
        "Moss",
        "Nair",
        "Ono",
        "Park",
        "Reyes",
        "Shah",
        "Tran",
        "Voss",
    ]
)


def _write_roster(
    size: Size, rng: np.random.Generator, world: dict, done: Callable[[str, int], None], say: Progress
) -> None:
    district = world["district"]
    schools_count = max(1, size.sections // 60)
    schools = School.objects.bulk_create(
        School(district=district, name=f"School {index + 1}", identifier=f"SCH{index + 1:03d}")
        for index in range(schools_count)
    )
    term = Term.objects.create(
        district=district,
        title="School year 2025-26",
        kind=Term.Kind.SCHOOL_YEAR,
        start_date=YEAR_START,
        end_date=YEAR_END,
        school_year=2026,
    )
    courses = Course.objects.bulk_create(
        Course(district=district, school=school, title="Mathematics", code="MATH") for school in schools
    )
    sections = Section.objects.bulk_create(
        Section(
            school=schools[index % schools_count],
            term=term,
            course=courses[index % schools_count],
            title=f"Mathematics, section {index + 1}",
            code=f"MATH-{index + 1:04d}",
        )
        for index in range(size.sections)
    )
    section_ids = np.array([section.pk for section in sections], dtype=np.int64)
    done("sections", size.sections)
    guides = PacingGuide.objects.bulk_create(
        PacingGuide(section=section, framework=world["framework"]) for section in sections
    )
    guide_ids = np.array([guide.pk for guide in guides], dtype=np.int64)
    leaves = world["leaf_ids"].size
    days = school_days()
    target_days = np.busday_offset(
        np.datetime64(YEAR_START, "D"), ((np.arange(leaves) + 1) * days) // (leaves + 1), roll="forward"
    )
    write_rows(
        PacingTarget,
        guide_ids.size * leaves,
        {
            "id": np.arange(1, guide_ids.size * leaves + 1),
            "guide_id": np.repeat(guide_ids, leaves),
            "competency_id": np.tile(world["leaf_ids"], guide_ids.size),
            "target_date": np.tile(target_days.astype(str), guide_ids.size),
        },
        say,
        freeze=world["freeze"],
    )
    done("pacing targets", guide_ids.size * leaves)

    teachers = -(-size.sections // SECTIONS_PER_TEACHER)
    students = size.students
    total = teachers + students
    password = make_password(PASSWORD, salt="syntheticdistrict")
    first_user_id = 1
    user_ids = np.arange(first_user_id, first_user_id + total, dtype=np.int64)
    names = np.array(
        [f"teacher{index + 1:04d}" for index in range(teachers)]
        + [f"student{index + 1:05d}" for index in range(students)]
    )
    write_rows(
        User,
        total,
        {
            "id": user_ids,
            "password": password,
            "username": names,
            "first_name": _FIRST[rng.integers(0, _FIRST.size, total)],
            "last_name": _LAST[rng.integers(0, _LAST.size, total)],
            "email": "",
            "is_superuser": "f",
            "is_staff": "f",
            "is_active": "t",
            "date_joined": np.datetime64(f"{YEAR_START.isoformat()}T00:00:00", "s"),
            "role": np.where(np.arange(total) < teachers, User.Role.TEACHER.value, User.Role.STUDENT.value),
            "district_id": str(district.pk),
            "grades": '["07"]',
        },
        say,
    )
    done("users", total)
    teacher_ids = user_ids[:teachers]
    student_ids = user_ids[teachers:]
    # Sections: the first holds FIRST_SECTION_SIZE students (the heatmap figure), the rest share the others.
    first = min(FIRST_SECTION_SIZE, students) if size.sections > 1 else students
    rest = np.array_split(np.arange(first, students), max(1, size.sections - 1)) if size.sections > 1 else []
    student_section = np.empty(students, dtype=np.int64)
    student_section[:first] = 0
    for index, members in enumerate(rest):
        student_section[members] = index + 1
    enrol_count = size.sections + students
    write_rows(
        Enrollment,
        enrol_count,
        {
            "id": np.arange(1, enrol_count + 1),
            "section_id": np.concatenate((section_ids, section_ids[student_section])),
            "user_id": np.concatenate(
                (teacher_ids[np.arange(size.sections) // SECTIONS_PER_TEACHER], student_ids)
            ),
            "role": np.where(
                np.arange(enrol_count) < size.sections,
                Enrollment.Role.TEACHER.value,
                Enrollment.Role.STUDENT.value,
            ),
            "is_primary": np.arange(enrol_count) < size.sections,
            "is_active": "t",
        },
        say,
    )
    done("enrollments", enrol_count)
    world["student_ids"] = student_ids
    world["teacher_ids"] = teacher_ids
    world["section_ids"] = section_ids


def _write_work(
    size: Size, rng: np.random.Generator, world: dict, done: Callable[[str, int], None], say: Progress
) -> None:
    """Attempts, their items and responses, competency results and evidence, by learning curve."""
    students = size.students
    leaves = world["leaf_ids"].size
    # Kinds: 0 improves, 1 stalls, 2 stops part way through the year.
    kind = rng.choice(3, students, p=(0.75, 0.15, 0.10))
    ability = rng.normal(0.3, 0.8, students) - np.where(kind == 1, 1.2, 0.0)
    growth = np.where(kind == 1, 0.0, rng.uniform(0.5, 2.0, students))
    active_until = np.where(kind == 2, rng.uniform(0.15, 0.6, students), 1.0)
    weight = active_until * rng.uniform(0.6, 1.4, students)
    attempts_total = size.attempts
    share = weight / weight.sum() * attempts_total
    per_student = np.floor(share).astype(np.int64)
    remainder = attempts_total - int(per_student.sum())
    per_student[np.argsort(-(share - per_student), kind="stable")[:remainder]] += 1
    difficulty = rng.normal(0.0, 0.5, leaves) + np.linspace(-0.3, 0.6, leaves)

    steps = int(per_student.max()) if students else 0
    current = np.zeros(students, dtype=np.int64)
    need_practice = np.ones(students, dtype=bool)
    practised = np.zeros(students, dtype=np.int64)
    counters = np.zeros((students, leaves, 2), dtype=np.int32)
    chunks: dict[str, list[np.ndarray]] = {
        name: [] for name in ("student", "step", "leaf", "kind", "number", "earned")
    }
    for step in range(steps):
        who = np.flatnonzero(per_student > step)
        leaf = current[who]
        is_check = ~need_practice[who]
        progress_in_year = active_until[who] * (step + 1) / (per_student[who] + 1)
        logit = ability[who] + growth[who] * progress_in_year + 0.5 * practised[who] - difficulty[leaf]
        chance = 1.0 / (1.0 + np.exp(-logit))
        earned = rng.binomial(ITEMS_PER_ATTEMPT, chance)
        kind_index = is_check.astype(np.int64)
        counters[who, leaf, kind_index] += 1
        chunks["student"].append(who)
        chunks["step"].append(np.full(who.size, step))
        chunks["leaf"].append(leaf)
        chunks["kind"].append(kind_index)
        chunks["number"].append(counters[who, leaf, kind_index])
        chunks["earned"].append(earned)
        met = is_check & (earned >= 4)
        retake = is_check & ~met & (rng.random(who.size) < 0.4)
        current[who[met]] = np.minimum(leaf[met] + 1, leaves - 1)
        practised[who[met]] = 0
        practised[who[~is_check]] += 1
        need_practice[who] = ~retake & is_check
    arrays = {
        name: np.concatenate(parts) if parts else np.zeros(0, np.int64) for name, parts in chunks.items()
    }
    order = np.lexsort((arrays["step"], arrays["student"]))
    arrays = {name: values[order] for name, values in arrays.items()}
    count = arrays["student"].size
    attempt_ids = np.arange(1, count + 1, dtype=np.int64)
    student_index = arrays["student"]
    # When: spread over the student's active part of the year, school days, 8:00 + up to 6 h.
    days = school_days()
    fraction = active_until[student_index] * (arrays["step"] + 1) / (per_student[student_index] + 1)
    day = np.minimum((fraction * days).astype(np.int64), days - 1)
    started = _times(day, rng.integers(0, 6 * 3600, count))
    submitted = started + rng.integers(4 * 60, 25 * 60, count).astype("timedelta64[s]")
    earned = arrays["earned"]
    is_check = arrays["kind"] == 1
    # The framework's scale: 4 points at the top, mastery (Proficient) at 3.
    scale_cents = earned * 400 // ITEMS_PER_ATTEMPT
    level = np.minimum(scale_cents // 100, 4)
    is_met = level >= 3
    write_rows(
        Attempt,
        count,
        {
            "id": attempt_ids,
            "assessment_id": world["assessment_ids"][arrays["leaf"], arrays["kind"]],
            "student_id": world["student_ids"][student_index],
            "number": arrays["number"],
            "seed": rng.integers(0, 2**31, count),
            "status": Attempt.Status.COMPLETED.value,
            "started_at": started,
            "deadline": None,
            "submitted_at": submitted,
            "completed_at": submitted,
            "score": earned.astype(np.float64),
            "max_score": f"{ITEMS_PER_ATTEMPT}.00",
            "is_passed": is_met,
        },
        say,
        freeze=world["freeze"],
    )
    done("attempts", count)

    # Items: five consecutive items of the leaf's pool from a random offset; which are right: as many
    # as earned, in a random order.
    responses = count * ITEMS_PER_ATTEMPT
    position = np.tile(np.arange(ITEMS_PER_ATTEMPT), count)
    leaf_of = np.repeat(arrays["leaf"], ITEMS_PER_ATTEMPT)
    pool = world["leaf_item_count"][arrays["leaf"]]
    offset = np.repeat(rng.integers(0, 2**31, count) % pool, ITEMS_PER_ATTEMPT)
    within = (offset + position) % world["leaf_item_count"][leaf_of]
    item_ids = world["leaf_item_ids"][world["leaf_item_start"][leaf_of] + within]
    attempt_of = np.repeat(attempt_ids, ITEMS_PER_ATTEMPT)
    write_rows(
        AttemptItem,
        responses,
        {
            "id": np.arange(1, responses + 1),
            "attempt_id": attempt_of,
            "item_id": item_ids,
            "position": position + 1,
            "key_version_seen": "1",
        },
        say,
        freeze=world["freeze"],
    )
    done("attempt items", responses)
    ranks = np.argsort(rng.random((count, ITEMS_PER_ATTEMPT)), axis=1).reshape(-1)
    correct = ranks < np.repeat(earned, ITEMS_PER_ATTEMPT)
    answer_of = np.zeros(int(world["item_ids"].max()) + 1, dtype=np.int64)
    answer_of[world["item_ids"]] = world["answers"]
    answers = answer_of[item_ids] + np.where(correct, 0, rng.integers(1, 9, responses))
    saved = np.repeat(started, ITEMS_PER_ATTEMPT) + (
        (position + 1) * 60 + rng.integers(0, 60, responses)
    ).astype("timedelta64[s]")
    write_rows(
        Response,
        responses,
        {
            "id": np.arange(1, responses + 1),
            "attempt_id": attempt_of,
            "item_id": item_ids,
            "answer": answers,
            "saved_at": saved,
            "score": np.where(correct, "1.00", "0.00"),
            "scored_key_version": "1",
            "needs_grading": "f",
            "grader_id": None,
            "graded_at": None,
            "feedback": "",
        },
        say,
        freeze=world["freeze"],
    )
    done("responses", responses)
    scale_score = scale_cents / 100.0
    leaf_ids = world["leaf_ids"][arrays["leaf"]]
    write_rows(
        AttemptCompetencyScore,
        count,
        {
            "id": attempt_ids,
            "attempt_id": attempt_ids,
            "competency_id": leaf_ids,
            "earned": earned.astype(np.float64),
            "possible": f"{ITEMS_PER_ATTEMPT}.00",
            "score": scale_score,
            "level_points": np.ma.masked_array(level, mask=level < 1),
            "is_met": is_met,
        },
        say,
        freeze=world["freeze"],
    )
    done("competency results", count)
    write_rows(
        Evidence,
        count,
        {
            "id": attempt_ids,
            "student_id": world["student_ids"][student_index],
            "competency_id": leaf_ids,
            "source": Evidence.Source.ATTEMPT.value,
            "source_id": attempt_ids,
            "is_summative": is_check,
            "score": scale_score,
            "is_correct": is_met,
            "observed_at": submitted,
            "recorded_at": submitted,
            "author_id": None,
            "note": "",
        },
        say,
        freeze=world["freeze"],
    )
    done("evidence", count)
