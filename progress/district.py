"""District recompute: every student's mastery of every competency from all evidence, at the speed of
the database (the nightly and after-import path; ``mastery_recompute`` is the live, one-student path).

Same rules, same stored values as ``progress.services.mastery_recompute`` run for every student (the
tests check it field by field): the students concerned by a framework are those with evidence or
mastery rows in it or an active enrolment in a section whose pacing guide follows it, and each gets
every competency of the framework computed. Storage is sparse (``progress.grid``): only the rows with
something to say are stored; a blank one (locked or ready, no evidence, no score, no teacher's unlock)
is not written, and a stored row that became blank is deleted.

How it runs:
- reads are set-based: one query each for the evidence (ordered by student, competency, time), the
  existing mastery rows, the students concerned, and the catalog;
- the evidence is read as arrays (one COPY: cents, flags, microseconds), and every leaf is computed for
  all its students at once by ``methods.calculate_many`` (score, level and explanation, exactly what
  ``services._compute_leaf`` gives); the rare groups whose arithmetic sits on a half cent that
  ``Decimal``'s 28-digit rounding decides go through ``_compute_leaf`` itself. Explanations are
  formatted per row with plain string formatting, no per-row objects;
- roll-ups, states (prerequisites, unlocks, overrides) and ``mastered_at`` are NumPy over all students
  at once, one competency at a time, children before parents;
- writes are two COPYs into temporary tables (rows with activity in full; the blank rows a teacher
  unlocked, which differ only by state, as three columns), one DELETE of the rows now blank, and one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` that only
  touches rows whose values changed: unchanged rows are filtered out before the insert (so the upsert
  does not even lock them), and ``computed_at`` moves only for the rows written. History rows are not
  written on this path (the live path writes them).
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from competencies.models import Competency, MasteryLevel, Prerequisite
from progress import methods
from progress.bkt import BKTParams
from progress.models import BKTParameters, CompetencyMastery, Evidence
from progress.services import _MASTERY_FIELDS, MasteryChange, _compute_leaf

State = CompetencyMastery.State
STATES = (State.LOCKED, State.READY, State.IN_PROGRESS, State.MASTERED)
LOCKED, READY, IN_PROGRESS, MASTERED = range(4)
NONE_TIME = np.iinfo(np.int64).min  # "no time" in the microsecond arrays
NO_SCORE = np.iinfo(np.int64).min  # "no score" in the cent arrays

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _EvidenceRow:
    """What ``_compute_leaf`` reads of an evidence row."""

    source: str
    score: Decimal
    is_correct: bool
    is_summative: bool
    observed_at: datetime


@dataclass
class DistrictResult:
    students: int = 0
    rows: int = 0
    written: int = 0
    evidence: int = 0
    seconds: float = 0.0
    inserted: int = 0  # with ``collect_changes``: rows that did not exist
    #: With ``collect_changes``: student id -> the changes of state, level or score of rows that existed.
    changes: dict[int, list[MasteryChange]] = field(default_factory=dict)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime | None) -> int:
    """Microseconds since the epoch (``NONE_TIME`` for None)."""
    return int(NONE_TIME) if moment is None else (moment - _EPOCH) // _MICROSECOND


def _cents(value: Decimal | None) -> int:
    return int(NO_SCORE) if value is None else int(value * 100)


_FMT_CACHE: dict[int, str] = {}


def _fmt_cents(cents: int) -> str:
    text = _FMT_CACHE.get(cents)
    if text is None:
        text = _FMT_CACHE[cents] = methods.fmt(Decimal(cents) / 100)
    return text


def _decimal_text(cents: np.ndarray) -> list[str]:
    """Cents as COPY text of a numeric(8, 2): exact, \\N for no score."""
    out = np.where(
        cents == NO_SCORE,
        "\\N",
        np.char.add(
            np.char.add(np.where(cents < 0, "-", ""), (np.abs(cents) // 100).astype(str)),
            np.char.add(".", np.char.zfill((np.abs(cents) % 100).astype(str), 2)),
        ),
    )
    return out.tolist()


def _time_text(micros: np.ndarray) -> list[str]:
    present = micros != NONE_TIME
    text = np.full(micros.shape, "\\N", dtype=object)
    if present.any():
        stamps = np.datetime_as_string(micros[present].astype("datetime64[us]"))
        text[present] = np.char.add(stamps, "+00").astype(object)
    return text.tolist()


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def district_recompute(
    *,
    framework_ids: list[int] | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    collect_changes: bool = False,
) -> DistrictResult:
    """Recompute and store every concerned student's mastery of every competency (of ``framework_ids``,
    default all frameworks). Returns counts; only rows that change are written.

    ``collect_changes``: also return, per student, a ``MasteryChange`` for every existing row whose
    state, level or score changes (what the flags read for regressions; new rows are not listed).
    """
    say = progress or (lambda message: None)
    now = now or timezone.now()
    started = time.monotonic()
    result = DistrictResult()
    competencies = list(
        Competency.objects.select_related("framework").order_by("framework_id", "position", "pk")
        if framework_ids is None
        else Competency.objects.filter(framework_id__in=framework_ids)
        .select_related("framework")
        .order_by("framework_id", "position", "pk")
    )
    if not competencies:
        return result
    by_framework: dict[int, list[Competency]] = defaultdict(list)
    for competency in competencies:
        by_framework[competency.framework_id].append(competency)
    levels_by_scale: dict[int, list[tuple[Decimal, str, bool]]] = defaultdict(list)
    for scale_id, points, name, is_mastery in MasteryLevel.objects.values_list(
        "scale_id", "points", "name", "is_mastery"
    ):
        levels_by_scale[scale_id].append((points, name, is_mastery))
    prerequisites: dict[int, list[int]] = defaultdict(list)
    for prerequisite_id, competency_id in Prerequisite.objects.values_list(
        "prerequisite_id", "competency_id"
    ):
        prerequisites[competency_id].append(prerequisite_id)
    bkt_by_competency = {
        row.competency_id: BKTParams(
            prior=row.prior, learn=row.learn, guess=row.guess, slip=row.slip, forget=row.forget
        )
        for row in BKTParameters.objects.all()
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # A recompute can always be run again: it need not wait for its WAL to reach the disk.
        cursor.execute("SET LOCAL synchronous_commit = off")
        existing = _existing_rows(cursor)
        say(
            f"read the catalog, {len(existing['student']):,} mastery rows ({time.monotonic() - started:.1f} s)"
        )
        evidence = _evidence(cursor)
        framework_of = {competency.pk: competency.framework_id for competency in competencies}
        concerned = _students_concerned(cursor, list(by_framework), evidence, framework_of)
        result.evidence = int(evidence["competency"].size)
        say(f"read {result.evidence:,} evidence rows ({time.monotonic() - started:.1f} s)")
        full_buffer, blank_buffer = io.StringIO(), io.StringIO()
        blank_constants: list[tuple[int, str, str]] = []
        grids: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for framework_id, members in by_framework.items():
            students = concerned.get(framework_id, np.zeros(0, dtype=np.int64))
            if not students.size:
                continue
            result.students += students.size
            result.rows += students.size * len(members)
            constants = _framework_recompute(
                members,
                students,
                evidence,
                existing,
                levels_by_scale,
                prerequisites,
                bkt_by_competency,
                now,
                full_buffer,
                blank_buffer,
                grids,
            )
            blank_constants.extend(constants)
        say(f"computed {result.rows:,} rows ({time.monotonic() - started:.1f} s)")
        result.written = _upsert(
            cursor, full_buffer, blank_buffer, blank_constants, grids, now, result, collect_changes
        )
    result.seconds = time.monotonic() - started
    say(f"wrote {result.written:,} changed rows ({result.seconds:.1f} s)")
    return result


def _students_concerned(
    cursor: Any, framework_ids: list[int], evidence: dict[str, np.ndarray], framework_of: dict[int, int]
) -> dict[int, np.ndarray]:
    """framework id -> sorted student ids with evidence, mastery or an active enrolment following it.
    The evidence part comes from the evidence already read (override rows, which are not read, always
    come with a stored mastery row); one query for the rest."""
    # (There is always a competency here: the caller returns early without one.)
    known = np.array(sorted(framework_of), dtype=np.int64)
    frameworks = np.array([framework_of[competency_id] for competency_id in known.tolist()], dtype=np.int64)
    at = np.minimum(np.searchsorted(known, evidence["competency"]), known.size - 1)
    from_evidence = np.stack(
        [np.where(known[at] == evidence["competency"], frameworks[at], -1), evidence["student"]], axis=1
    )
    cursor.execute(
        """
        SELECT c.framework_id, m.student_id FROM progress_competencymastery m
            JOIN competencies_competency c ON c.id = m.competency_id
        UNION
        SELECT g.framework_id, n.user_id FROM competencies_pacingguide g
            JOIN roster_enrollment n ON n.section_id = g.section_id
            WHERE n.role = %s AND n.is_active
        """,
        ["student"],
    )
    pairs = np.concatenate(
        [np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 2), from_evidence.astype(np.int64)]
    )
    wanted = set(framework_ids)
    out: dict[int, np.ndarray] = {}
    for framework_id in np.unique(pairs[:, 0]).tolist():
        if framework_id in wanted:
            out[framework_id] = np.unique(pairs[pairs[:, 0] == framework_id, 1])
    return out


def _existing_rows(cursor: Any) -> dict[str, np.ndarray]:
    # Only the rows whose past the recompute reads: mastered (keeps mastered_at; a prerequisite in
    # another framework), overridden or unlocked. Every other existing row is rewritten from evidence.
    cursor.execute(
        "SELECT student_id, competency_id, state, mastered_at, is_overridden, is_unlocked_by_teacher "
        "FROM progress_competencymastery WHERE state = %s OR is_overridden OR is_unlocked_by_teacher",
        [State.MASTERED.value],
    )
    rows = cursor.fetchall()
    state_code = {state.value: index for index, state in enumerate(STATES)}
    return {
        "student": np.array([row[0] for row in rows], dtype=np.int64),
        "competency": np.array([row[1] for row in rows], dtype=np.int64),
        "state": np.array([state_code[row[2]] for row in rows], dtype=np.int8),
        "mastered_at": np.array([_micros(row[3]) for row in rows], dtype=np.int64),
        "overridden": np.array([bool(row[4]) for row in rows], dtype=bool),
        "unlocked": np.array([bool(row[5]) for row in rows], dtype=bool),
    }


def _evidence(cursor: Any) -> dict[str, np.ndarray]:
    """The counted evidence (override rows are audit only) as arrays, ordered by competency, student and
    then as the live path reads it (when the work was done, then id): competency, student, cents (the
    score in whole cents), correct, summative, micros (``observed_at`` in microseconds since the epoch)."""
    sink = _IntRows(6)
    cursor.cursor.copy_expert(
        cursor.mogrify(
            "COPY (SELECT competency_id, student_id, (score * 100)::bigint, is_correct::int, "
            "is_summative::int, (extract(epoch FROM observed_at) * 1000000)::bigint "
            "FROM progress_evidence WHERE source <> %s ORDER BY competency_id, student_id, observed_at, id) "
            "TO STDOUT",
            [Evidence.Source.OVERRIDE.value],
        ).decode(),
        sink,
    )
    flat = sink.array()
    return {
        "competency": np.ascontiguousarray(flat[:, 0]),
        "student": np.ascontiguousarray(flat[:, 1]),
        "cents": np.ascontiguousarray(flat[:, 2]),
        "correct": flat[:, 3] == 1,
        "summative": flat[:, 4] == 1,
        "micros": np.ascontiguousarray(flat[:, 5]),
    }


class _IntRows:
    """A file for ``COPY ... TO STDOUT`` of whole-number columns: parsed into int64 chunks as the text
    arrives (a few MB at a time), so a district's evidence is never held as millions of strings."""

    _CHUNK = 8 << 20

    def __init__(self, width: int) -> None:
        self.width = width
        self.pending: list[str] = []
        self.size = 0
        self.chunks: list[np.ndarray] = []

    def write(self, data: str | bytes) -> int:
        text = data.decode() if isinstance(data, bytes) else data
        self.pending.append(text)
        self.size += len(text)
        if self.size >= self._CHUNK:
            self._parse(final=False)
        return len(text)

    def _parse(self, *, final: bool) -> None:
        text = "".join(self.pending)
        cut = len(text) if final else text.rfind("\n") + 1
        self.pending = [text[cut:]] if cut < len(text) else []
        self.size = len(text) - cut
        if cut:
            self.chunks.append(np.array(text[:cut].split(), dtype=np.int64).reshape(-1, self.width))

    def array(self) -> np.ndarray:
        self._parse(final=True)
        if not self.chunks:
            return np.zeros((0, self.width), dtype=np.int64)
        return np.concatenate(self.chunks)


def _leaf_many(
    competency: Competency,
    col: int,
    method: str,
    parameter: Decimal | None,
    students: np.ndarray,
    evidence: dict[str, np.ndarray],
    levels: list[tuple[Decimal, str, bool]],
    bkt_by_competency: dict[int, BKTParams],
    scope: dict[str, Any],
) -> None:
    """``services._compute_leaf`` for every student with evidence on one leaf at once (vectorised in
    ``methods.calculate_many``; the rare groups it leaves to the exact path go through
    ``_compute_leaf``)."""
    low, high = np.searchsorted(evidence["competency"], [competency.pk, competency.pk + 1])
    if high <= low:
        return
    count = students.size
    student_of = evidence["student"][low:high]
    starts = np.flatnonzero(np.concatenate(([True], student_of[1:] != student_of[:-1])))
    lengths = np.diff(np.append(starts, student_of.size))
    group_students = student_of[starts]
    rows = np.minimum(np.searchsorted(students, group_students), count - 1)
    in_grid = students[rows] == group_students
    if not in_grid.any():
        return
    cents = evidence["cents"][low:high]
    correct = evidence["correct"][low:high]
    micros = evidence["micros"][low:high]
    bkt_params = bkt_by_competency.get(competency.pk)
    mastery_points = next((points for points, _, is_mastery in levels if is_mastery), None)
    if method == methods.BKT:
        outcome = methods.calculate_many(
            method, np.where(correct, 100, 0), starts, lengths, micros, bkt_params=bkt_params
        )
    else:
        if method == methods.N_TIMES and mastery_points is None:
            mastery_points = max((level[0] for level in levels), default=Decimal(0))
        outcome = methods.calculate_many(method, cents, starts, lengths, micros, parameter, mastery_points)
    score = np.where(outcome.score == methods.NO_CENTS, NO_SCORE, outcome.score)
    first_level: dict[int, str] = {}
    for points, name, _ in levels:
        first_level.setdefault(_cents(points), name)
    level_cents = np.array(sorted(first_level), dtype=np.int64)
    if method == methods.BKT:
        mastered = outcome.is_mastered
        mastery_level = next((level for level in levels if level[2]), None)
        if mastery_level is None:
            level_points = np.full(score.size, NO_SCORE, dtype=np.int64)
        else:
            level_points = np.where(mastered, _cents(mastery_level[0]), NO_SCORE)
        names = np.where(mastered, "" if mastery_level is None else mastery_level[1], "")
    else:
        if level_cents.size:
            position = np.searchsorted(level_cents, score, side="right") - 1
            reached = (score != NO_SCORE) & (position >= 0)
            level_points = np.where(reached, level_cents[np.maximum(position, 0)], NO_SCORE)
        else:
            level_points = np.full(score.size, NO_SCORE, dtype=np.int64)
        mastered = (level_points != NO_SCORE) & (
            mastery_points is not None and level_points >= _cents(mastery_points)
        )
        names = np.array([first_level.get(points, "") for points in level_points.tolist()], dtype=object)
    described = (level_points != NO_SCORE) & (score != NO_SCORE)
    texts = [
        f"{text} -> {name}" if has_level else text
        for text, name, has_level in zip(outcome.explanation, names.tolist(), described.tolist(), strict=True)
    ]
    failed = np.add.reduceat((evidence["summative"][low:high] & ~correct).astype(np.int64), starts)
    last_at = np.maximum.reduceat(micros, starts)
    take = np.flatnonzero(in_grid & outcome.exact)
    grid_rows = rows[take]
    scope["score"][grid_rows, col] = score[take]
    scope["level_points"][grid_rows, col] = level_points[take]
    if outcome.probability is not None:
        scope["p_known"][grid_rows, col] = outcome.probability[take]
    scope["evidence_count"][grid_rows, col] = lengths[take]
    scope["failed_checks"][grid_rows, col] = failed[take]
    scope["first_at"][grid_rows, col] = micros[starts[take]]
    scope["last_at"][grid_rows, col] = last_at[take]
    scope["mastered"][grid_rows, col] = mastered[take]
    scope["activity"][grid_rows, col] = True
    explanation = scope["explanation"]
    explanation.update(
        zip(
            zip(grid_rows.tolist(), [col] * take.size, strict=True),
            [texts[index] for index in take.tolist()],
            strict=True,
        )
    )
    source = Evidence.Source.ATTEMPT.value
    for group in np.flatnonzero(in_grid & ~outcome.exact).tolist():
        begin, end = int(starts[group]), int(starts[group] + lengths[group])
        rows_of = [
            _EvidenceRow(
                source,
                Decimal(score_cents) / 100,
                bool(is_correct),
                bool(is_summative),
                _EPOCH + timedelta(microseconds=moment),
            )
            for score_cents, is_correct, is_summative, moment in zip(
                cents[begin:end].tolist(),
                correct[begin:end].tolist(),
                evidence["summative"][low:high][begin:end].tolist(),
                micros[begin:end].tolist(),
                strict=True,
            )
        ]
        leaf = _compute_leaf(competency, rows_of, levels, bkt_params)
        row = int(rows[group])
        scope["score"][row, col] = _cents(leaf.score)
        scope["level_points"][row, col] = _cents(leaf.level_points)
        if leaf.p_known is not None:
            scope["p_known"][row, col] = leaf.p_known
        scope["evidence_count"][row, col] = leaf.evidence_count
        scope["failed_checks"][row, col] = leaf.failed_checks
        scope["first_at"][row, col] = _micros(leaf.first_activity_at)
        scope["last_at"][row, col] = _micros(leaf.last_activity_at)
        scope["mastered"][row, col] = leaf.is_mastered
        scope["activity"][row, col] = leaf.has_activity
        explanation[(row, col)] = leaf.explanation


def _framework_recompute(
    members: list[Competency],
    students: np.ndarray,
    evidence: dict[str, np.ndarray],
    existing: dict[str, np.ndarray],
    levels_by_scale: dict[int, list[tuple[Decimal, str, bool]]],
    prerequisites: dict[int, list[int]],
    bkt_by_competency: dict[int, BKTParams],
    now: datetime,
    full_buffer: io.StringIO,
    blank_buffer: io.StringIO,
    grids: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> list[tuple[int, str, str]]:
    """Compute one framework's grid (students x competencies) and write its rows to the buffers; append
    (students, competency ids, state grid) to ``grids``."""
    count = students.size
    ids = [competency.pk for competency in members]
    column = {competency_id: index for index, competency_id in enumerate(ids)}
    width = len(ids)
    levels = levels_by_scale.get(members[0].framework.mastery_scale_id, [])
    level_cents = np.array(sorted(_cents(points) for points, _, _ in levels), dtype=np.int64)
    level_by_cents = {_cents(points): (points, name, is_mastery) for points, name, is_mastery in levels}
    now_us = _micros(now)

    # Existing rows of these students, as grids.
    def grid(fill: Any, dtype: Any) -> np.ndarray:
        return np.full((count, width), fill, dtype=dtype)

    old_state = grid(-1, np.int8)
    old_mastered_at = grid(NONE_TIME, np.int64)
    overridden = grid(False, bool)
    unlocked = grid(False, bool)
    in_grid = np.isin(existing["competency"], ids)
    row_index = np.searchsorted(students, existing["student"][in_grid])
    row_index = np.minimum(row_index, count - 1)
    present = students[row_index] == existing["student"][in_grid]
    rows_at = row_index[present]
    sorted_ids = np.array(sorted(ids), dtype=np.int64)
    column_of_sorted = np.array([column[value] for value in sorted_ids.tolist()], dtype=np.int64)
    cols_at = column_of_sorted[np.searchsorted(sorted_ids, existing["competency"][in_grid][present])]
    old_state[rows_at, cols_at] = existing["state"][in_grid][present]
    old_mastered_at[rows_at, cols_at] = existing["mastered_at"][in_grid][present]
    overridden[rows_at, cols_at] = existing["overridden"][in_grid][present]
    unlocked[rows_at, cols_at] = existing["unlocked"][in_grid][present]

    score = grid(NO_SCORE, np.int64)
    level_points = grid(NO_SCORE, np.int64)
    p_known = grid(np.nan, np.float64)
    evidence_count = grid(0, np.int64)
    failed_checks = grid(0, np.int64)
    first_at = grid(NONE_TIME, np.int64)
    last_at = grid(NONE_TIME, np.int64)
    mastered = grid(False, bool)
    activity = grid(False, bool)
    explanation: dict[tuple[int, int], str] = {}  # (row, col) -> text, where not the column's constant
    constant_text: list[str] = [""] * width
    method_of: list[str] = [""] * width

    children: dict[int, list[int]] = defaultdict(list)
    for competency in members:
        if competency.parent_id in column:
            children[column[competency.parent_id]].append(column[competency.pk])
    depth = [0] * width

    def depth_of(index: int) -> int:
        parent = members[index].parent_id
        return 0 if parent not in column else depth_of(column[parent]) + 1

    depth = [depth_of(index) for index in range(width)]
    order = sorted(range(width), key=lambda index: (-depth[index], index))  # children first

    for col in order:
        competency = members[col]
        if children[col]:
            _roll_up(col, children[col], levels, level_cents, level_by_cents, locals())
            method_of[col] = ""
        else:
            method, parameter = (
                (competency.calculation_method, competency.calculation_parameter)
                if competency.calculation_method
                else (competency.framework.calculation_method, competency.framework.calculation_parameter)
            )
            method_of[col] = method
            blank = _compute_leaf(competency, [], levels, bkt_by_competency.get(competency.pk))
            constant_text[col] = blank.explanation
            _leaf_many(
                competency, col, method, parameter, students, evidence, levels, bkt_by_competency, locals()
            )
        # A teacher's override: mastered whatever the calculation says.
        override_rows = np.flatnonzero(overridden[:, col])
        for row in override_rows.tolist():
            text = explanation.get((row, col), constant_text[col])
            explanation[(row, col)] = f"Teacher override: mastered. Calculated: {text}"
        mastered[override_rows, col] = True

    # States, children first (a parent reads its children's).
    state = grid(LOCKED, np.int8)
    external: dict[int, np.ndarray] = {}

    def prerequisite_mastered(prerequisite_id: int) -> np.ndarray:
        if prerequisite_id in column:
            return mastered[:, column[prerequisite_id]]
        if prerequisite_id not in external:
            here = existing["competency"] == prerequisite_id
            flags = np.zeros(count, dtype=bool)
            rows = np.searchsorted(students, existing["student"][here])
            rows = np.minimum(rows, count - 1)
            hit = students[rows] == existing["student"][here]
            flags[rows[hit]] = existing["state"][here][hit] == MASTERED
            external[prerequisite_id] = flags
        return external[prerequisite_id]

    def leaf_ready(col: int) -> np.ndarray:
        ready = unlocked[:, col].copy()
        every = np.ones(count, dtype=bool)
        for prerequisite_id in prerequisites.get(ids[col], []):
            every &= prerequisite_mastered(prerequisite_id)
        return ready | every

    for col in order:
        if not children[col]:
            state[:, col] = np.where(
                mastered[:, col],
                MASTERED,
                np.where(activity[:, col], IN_PROGRESS, np.where(leaf_ready(col), READY, LOCKED)),
            )
        else:
            child_states = state[:, children[col]]
            started_any = ((child_states == IN_PROGRESS) | (child_states == MASTERED)).any(axis=1)
            ready_any = (child_states == READY).any(axis=1)
            own_ready = ~mastered[:, col] & ~activity[:, col] & leaf_ready(col)
            state[:, col] = np.where(
                mastered[:, col],
                MASTERED,
                np.where(started_any, IN_PROGRESS, np.where(ready_any | own_ready, READY, LOCKED)),
            )

    # mastered_at, children first.
    mastered_at = grid(NONE_TIME, np.int64)
    for col in order:
        is_mastered = state[:, col] == MASTERED
        kept = is_mastered & (old_state[:, col] == MASTERED) & (old_mastered_at[:, col] != NONE_TIME)
        if children[col]:
            child_times = mastered_at[:, children[col]]
            latest = child_times.max(axis=1)
            fresh = np.where(latest == NONE_TIME, now_us, latest)
        else:
            fresh = np.where(last_at[:, col] == NONE_TIME, now_us, last_at[:, col])
        fresh = np.where((old_state[:, col] >= 0) & overridden[:, col], now_us, fresh)
        mastered_at[:, col] = np.where(is_mastered, np.where(kept, old_mastered_at[:, col], fresh), NONE_TIME)

    # Rows: "blank" rows (no activity, no score, not mastered, no own explanation) differ only by
    # state; every other row is written in full.
    own_text = np.zeros((count, width), dtype=bool)
    if explanation:
        keys = np.array(list(explanation.keys()), dtype=np.int64)
        own_text[keys[:, 0], keys[:, 1]] = True
    full = own_text | activity | (state == MASTERED) | (score != NO_SCORE) | (evidence_count > 0)
    # Sparse storage (``progress.grid``): a blank row is stored only when a teacher unlocked it.
    blank_rows, blank_cols = np.nonzero(~full & unlocked)
    grids.append((students, np.array(ids, dtype=np.int64), state))
    blank_buffer.writelines(
        f"{line}\n"
        for line in map(
            "\t".join,
            zip(
                students[blank_rows].astype(str).tolist(),
                np.array(ids, dtype=np.int64)[blank_cols].astype(str).tolist(),
                np.array([state.value for state in STATES])[state[blank_rows, blank_cols]].tolist(),
                strict=True,
            ),
        )
    )
    full_rows, full_cols = np.nonzero(full)
    if full_rows.size:
        level_name = [
            "" if cents == NO_SCORE else level_by_cents[cents][1]
            for cents in level_points[full_rows, full_cols].tolist()
        ]
        texts = [
            _copy_text(explanation.get((row, col), constant_text[col]))
            for row, col in zip(full_rows.tolist(), full_cols.tolist(), strict=True)
        ]
        p_values = p_known[full_rows, full_cols]
        columns = [
            students[full_rows].astype(str).tolist(),
            np.array(ids, dtype=np.int64)[full_cols].astype(str).tolist(),
            np.array([state.value for state in STATES])[state[full_rows, full_cols]].tolist(),
            _decimal_text(score[full_rows, full_cols]),
            _decimal_text(level_points[full_rows, full_cols]),
            [_copy_text(name) for name in level_name],
            ["\\N" if np.isnan(value) else repr(value) for value in p_values.tolist()],
            [method_of[col] for col in full_cols.tolist()],
            evidence_count[full_rows, full_cols].astype(str).tolist(),
            texts,
            _time_text(mastered_at[full_rows, full_cols]),
            _time_text(first_at[full_rows, full_cols]),
            _time_text(last_at[full_rows, full_cols]),
            failed_checks[full_rows, full_cols].astype(str).tolist(),
        ]
        full_buffer.writelines(f"{line}\n" for line in map("\t".join, zip(*columns, strict=True)))
    return [(ids[col], method_of[col], _copy_text(constant_text[col])) for col in range(width)]


def _roll_up(
    col: int,
    parts: list[int],
    levels: list[tuple[Decimal, str, bool]],
    level_cents: np.ndarray,
    level_by_cents: dict[int, tuple[Decimal, str, bool]],
    scope: dict[str, Any],
) -> None:
    """``services._roll_up`` over every student at once (its explanation text included)."""
    score, level_points = scope["score"], scope["level_points"]
    mastered, activity = scope["mastered"], scope["activity"]
    explanation, constant_text = scope["explanation"], scope["constant_text"]
    part_scores = score[:, parts]
    scored = part_scores != NO_SCORE
    scored_count = scored.sum(axis=1)
    total = np.where(scored, part_scores, 0).sum(axis=1)
    # Half-up to a cent of the exact mean (scores are whole cents).
    mean = np.where(
        scored_count > 0,
        np.where(
            total >= 0,
            (2 * total + scored_count) // np.maximum(2 * scored_count, 1),
            -((-2 * total + scored_count) // np.maximum(2 * scored_count, 1)),
        ),
        NO_SCORE,
    )
    mastered_count = mastered[:, parts].sum(axis=1)
    score[:, col] = mean
    if level_cents.size:
        position = np.searchsorted(level_cents, mean, side="right") - 1
        reached = (scored_count > 0) & (position >= 0)
        level_points[:, col] = np.where(reached, level_cents[np.maximum(position, 0)], NO_SCORE)
    mastered[:, col] = mastered_count == len(parts)
    activity[:, col] = activity[:, parts].any(axis=1)
    scope["evidence_count"][:, col] = scope["evidence_count"][:, parts].sum(axis=1)
    scope["failed_checks"][:, col] = scope["failed_checks"][:, parts].sum(axis=1)
    firsts = scope["first_at"][:, parts]
    firsts = np.where(firsts == NONE_TIME, np.iinfo(np.int64).max, firsts).min(axis=1)
    scope["first_at"][:, col] = np.where(firsts == np.iinfo(np.int64).max, NONE_TIME, firsts)
    scope["last_at"][:, col] = scope["last_at"][:, parts].max(axis=1)
    tail = "; mastered when every part is"
    constant_text[col] = f"roll-up: 0 of {len(parts)} parts mastered; no scores yet{tail}"
    special = np.flatnonzero((scored_count > 0) | (mastered_count > 0))
    for row in special.tolist():
        count_mastered = int(mastered_count[row])
        text = f"roll-up: {count_mastered} of {len(parts)} parts mastered"
        if scored_count[row]:
            terms = " + ".join(_fmt_cents(int(value)) for value in part_scores[row][scored[row]].tolist())
            text += (
                f"; mean of the parts' scores ({terms}) / {int(scored_count[row])} = "
                f"{_fmt_cents(int(mean[row]))}"
            )
            points = int(level_points[row, col])
            if points != NO_SCORE:
                text += f" -> {level_by_cents[points][1]}"
        else:
            text += "; no scores yet"
        explanation[(row, col)] = text + ("" if count_mastered == len(parts) else tail)


_MASTERY_TABLE = CompetencyMastery._meta.db_table
# The stored columns are the live path's, keyed by student and competency.
_FULL_COLUMNS = ("student_id", "competency_id", *_MASTERY_FIELDS)


def _upsert(
    cursor: Any,
    full_buffer: io.StringIO,
    blank_buffer: io.StringIO,
    constants: list[tuple[int, str, str]],
    grids: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    now: datetime,
    result: DistrictResult,
    collect_changes: bool,
) -> int:
    """COPY the computed rows into temporary tables, delete the stored rows now blank, then one upsert
    that writes only what changed. Returns the rows written and deleted."""
    cursor.execute("DROP TABLE IF EXISTS district_full, district_blank, district_constant")
    cursor.execute(
        f"CREATE TEMPORARY TABLE district_full ON COMMIT DROP AS "
        f"SELECT {', '.join(_FULL_COLUMNS)} FROM {_MASTERY_TABLE} WITH NO DATA"
    )
    cursor.execute(
        "CREATE TEMPORARY TABLE district_blank (student_id bigint, competency_id bigint, state varchar(20)) "
        "ON COMMIT DROP"
    )
    cursor.execute(
        "CREATE TEMPORARY TABLE district_constant (competency_id bigint, method varchar(30), explanation text) "
        "ON COMMIT DROP"
    )
    raw = cursor.cursor
    full_buffer.seek(0)
    raw.copy_expert(f"COPY district_full ({', '.join(_FULL_COLUMNS)}) FROM STDIN", full_buffer)
    blank_buffer.seek(0)
    raw.copy_expert("COPY district_blank FROM STDIN", blank_buffer)
    constant_buffer = io.StringIO("".join(f"{cid}\t{method}\t{text}\n" for cid, method, text in constants))
    raw.copy_expert("COPY district_constant FROM STDIN", constant_buffer)
    if collect_changes:
        cursor.execute(
            f"""
            SELECT m.student_id, m.competency_id, m.state, f.state, m.level_points, f.level_points, m.score,
                f.score
            FROM {_MASTERY_TABLE} m JOIN (
                SELECT student_id, competency_id, state, level_points, score FROM district_full
                UNION ALL
                SELECT student_id, competency_id, state, NULL, NULL FROM district_blank
            ) f ON f.student_id = m.student_id AND f.competency_id = m.competency_id
            WHERE (m.state, m.level_points, m.score) IS DISTINCT FROM (f.state, f.level_points, f.score)
            """
        )
        for student_id, competency_id, *values in cursor.fetchall():
            result.changes.setdefault(student_id, []).append(MasteryChange(competency_id, *values))
        cursor.execute(
            f"""
            SELECT count(*) FROM (
                SELECT student_id, competency_id FROM district_full
                UNION ALL
                SELECT student_id, competency_id FROM district_blank
            ) f WHERE NOT EXISTS (
                SELECT 1 FROM {_MASTERY_TABLE} m
                WHERE m.student_id = f.student_id AND m.competency_id = f.competency_id)
            """
        )
        result.inserted = cursor.fetchone()[0]
    # Before the upsert: the anti-join then reads only the rows stored before this run.
    deleted = _delete_blank(cursor, [cid for cid, _, _ in constants], grids, result, collect_changes)
    values = ", ".join(_FULL_COLUMNS[2:])
    changed = " OR ".join(f"m.{name} IS DISTINCT FROM EXCLUDED.{name}" for name in _FULL_COLUMNS[2:])
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _FULL_COLUMNS[2:])
    cursor.execute(
        f"""
        WITH computed AS (
            SELECT student_id, competency_id, {values} FROM district_full
            UNION ALL
            SELECT b.student_id, b.competency_id, b.state, NULL, NULL, '', NULL, c.method, 0, c.explanation,
                NULL, NULL, NULL, 0
            FROM district_blank b JOIN district_constant c ON c.competency_id = b.competency_id
        )
        INSERT INTO {_MASTERY_TABLE} AS m (student_id, competency_id, {values}, is_overridden,
            is_unlocked_by_teacher, computed_at)
        SELECT n.student_id, n.competency_id, {", ".join(f"n.{name}" for name in _FULL_COLUMNS[2:])}, false,
            false, %s
        FROM computed n
        -- Rows whose stored values are already these are left alone (not even locked by ON CONFLICT).
        WHERE NOT EXISTS (
            SELECT 1 FROM {_MASTERY_TABLE} o
            WHERE o.student_id = n.student_id AND o.competency_id = n.competency_id
                AND ({", ".join(f"o.{name}" for name in _FULL_COLUMNS[2:])})
                    IS NOT DISTINCT FROM ({", ".join(f"n.{name}" for name in _FULL_COLUMNS[2:])})
        )
        ON CONFLICT (student_id, competency_id) DO UPDATE SET {updates}, computed_at = EXCLUDED.computed_at
        WHERE {changed}
        """,
        [now],
    )
    return cursor.rowcount + deleted


def _delete_blank(
    cursor: Any,
    competency_ids: list[int],
    grids: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    result: DistrictResult,
    collect_changes: bool,
) -> int:
    """Delete the stored rows of the recomputed competencies that are blank now (no row computed in
    full, no teacher's unlock or override on them): storage is sparse, ``progress.grid`` derives them.
    With ``collect_changes``, a deleted row whose state, level or score differs from its derived blank
    state is a change."""
    if not competency_ids:
        return 0
    cursor.execute(
        f"""
        DELETE FROM {_MASTERY_TABLE} m
        WHERE m.competency_id = ANY(%s) AND NOT m.is_unlocked_by_teacher AND NOT m.is_overridden
            AND NOT EXISTS (
                SELECT 1 FROM district_full f
                WHERE f.student_id = m.student_id AND f.competency_id = m.competency_id)
        RETURNING m.student_id, m.competency_id, m.state, m.level_points, m.score
        """,
        [competency_ids],
    )
    deleted = cursor.fetchall()
    if collect_changes and deleted:
        for student_id, competency_id, old_state, old_level, old_score in deleted:
            new_state = None
            for students, ids, state in grids:
                row = int(np.searchsorted(students, student_id))
                cols = np.flatnonzero(ids == competency_id)
                if row < students.size and students[row] == student_id and cols.size:
                    new_state = STATES[int(state[row, cols[0]])].value
                    break
            if new_state is not None and (old_state, old_level, old_score) != (new_state, None, None):
                result.changes.setdefault(student_id, []).append(
                    MasteryChange(competency_id, old_state, new_state, old_level, None, old_score, None)
                )
    return len(deleted)


def evidence_reconcile_all() -> int:
    """``services.evidence_reconcile_for_student`` for every student at once, set-based: one upsert of
    the attempt evidence of every completed attempt from its competency results (writing only rows that
    differ) and one delete of attempt evidence whose result is gone. History rows are not written on
    this path. Returns the number of rows written or deleted."""
    evidence = Evidence._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {evidence} AS e (student_id, competency_id, source, source_id, is_summative, score,
                is_correct, observed_at, recorded_at, note)
            SELECT a.student_id, s.competency_id, %s, a.id, x.kind = %s, s.score, s.is_met, a.submitted_at,
                %s, ''
            FROM assessments_attemptcompetencyscore s
                JOIN assessments_attempt a ON a.id = s.attempt_id
                JOIN assessments_assessment x ON x.id = a.assessment_id
            WHERE a.status = %s
            ON CONFLICT (source, source_id, competency_id) WHERE source_id IS NOT NULL DO UPDATE SET
                student_id = EXCLUDED.student_id, score = EXCLUDED.score, is_correct = EXCLUDED.is_correct,
                is_summative = EXCLUDED.is_summative, observed_at = EXCLUDED.observed_at,
                recorded_at = EXCLUDED.recorded_at
            WHERE (e.student_id, e.score, e.is_correct, e.is_summative, e.observed_at)
                IS DISTINCT FROM (EXCLUDED.student_id, EXCLUDED.score, EXCLUDED.is_correct,
                EXCLUDED.is_summative, EXCLUDED.observed_at)
            """,
            [Evidence.Source.ATTEMPT.value, "mastery_check", timezone.now(), "completed"],
        )
        written = cursor.rowcount
        cursor.execute(
            f"""
            DELETE FROM {evidence} e USING assessments_attempt a
            WHERE e.source = %s AND a.id = e.source_id AND a.status = %s AND NOT EXISTS (
                SELECT 1 FROM assessments_attemptcompetencyscore s
                WHERE s.attempt_id = e.source_id AND s.competency_id = e.competency_id)
            """,
            [Evidence.Source.ATTEMPT.value, "completed"],
        )
        return written + cursor.rowcount
