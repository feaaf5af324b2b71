"""Calculation methods: how one student's evidence on one competency becomes a mastery score.

Pure: no Django import (NumPy for the district-wide forms), so every method is tested without a
database. Definitions are DOMAIN.md's, with s1..sn the scores in the order the student did the work
and sn the newest:

| method             | score                                                                 | parameter      |
|--------------------|-----------------------------------------------------------------------|----------------|
| latest             | sn                                                                    |                |
| highest            | max(s)                                                                |                |
| average            | mean(s)                                                               |                |
| weighted_average   | w*sn + (1-w)*mean(s1..s(n-1)); with one score, s1                     | w 0.01..0.99   |
| decaying_average   | r1 = s1; rk = (1-d)*r(k-1) + d*sk                                     | d 0.50..0.99   |
| n_times            | mean of the scores at or above mastery once there are >= n of them    | n 1..10        |
| bkt                | P(known) after the sequence (``progress.bkt``); mastered when >= 0.95 | BKTParams      |

Input order. Each method takes ``scores`` as either
- plain numbers (``Decimal``, ``int``, ``str``, or ``float``), already in the order the student did
  the work, oldest first (the caller sorted them); or
- ``(when, score)`` pairs, where ``when`` is a ``date`` or ``datetime`` (all of one kind): these are
  sorted here, stably, by ``when``, so evidence that arrived out of order (a make-up graded late)
  counts when it was done, and two scores at the same moment keep the order they were given in. The
  dates also appear in the explanation ("latest, 14 Mar").

Why ``Decimal``: scores are stored with two decimal places, and teachers check the arithmetic by
hand. In binary floating point the mean of 1 and 1.01 is stored as 1.00499999..., which rounds to 1.00
although the teacher's arithmetic gives 1.005 -> 1.01. With ``Decimal`` every step is exact decimal arithmetic
(28 significant digits), and only the final score is rounded, half-up, to two places. Floats given as
input go through ``str`` first, so ``0.1`` means 0.1. Intermediate values in an explanation are shown
rounded to two places; the calculation itself carries full precision.

The score's level on a mastery scale is the caller's business (``level_for``, ``describe``): a
``MethodResult`` explains the arithmetic, ``describe`` appends "-> Mastery".

The ``*_many`` functions are the same methods over a whole district at once, in float64 NumPy
segment operations, for the nightly recompute: one value per student, no Python loop per student.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from progress.bkt import MASTERY_THRESHOLD, BKTParams, state_after

CENT = Decimal("0.01")

LATEST = "latest"
HIGHEST = "highest"
AVERAGE = "average"
WEIGHTED_AVERAGE = "weighted_average"
DECAYING_AVERAGE = "decaying_average"
N_TIMES = "n_times"
BKT = "bkt"
METHODS = (LATEST, HIGHEST, AVERAGE, WEIGHTED_AVERAGE, DECAYING_AVERAGE, N_TIMES, BKT)

DEFAULT_WEIGHT = Decimal("0.65")
WEIGHT_MIN, WEIGHT_MAX = Decimal("0.01"), Decimal("0.99")
DEFAULT_DECAY = Decimal("0.65")
DECAY_MIN, DECAY_MAX = Decimal("0.50"), Decimal("0.99")
DEFAULT_N = 5
N_MIN, N_MAX = 1, 10
BKT_MASTERY = Decimal(str(MASTERY_THRESHOLD))

NO_EVIDENCE = "no evidence yet"
_LISTED_SCORES_MAX = 12  # beyond this many, an explanation gives a sum instead of every term

Number = Decimal | int | float | str
When = date | datetime
ScoreInput = Number | tuple[When, Number]
LevelT = TypeVar("LevelT", bound=tuple[Any, ...])


@dataclass(frozen=True)
class MethodResult:
    """One method's score and how it was reached.

    ``score`` is ``None`` when there is no score yet (no evidence, or n times before n). For ``bkt``
    the score is P(known) rounded *down* to two places, so ``score >= 0.95`` exactly when the
    unrounded probability is; ``is_mastered`` says so explicitly. For the scale methods
    ``is_mastered`` is ``None``: mastery comes from the score's level (``level_for``).
    """

    score: Decimal | None
    explanation: str
    evidence_count: int
    method: str = ""
    parameter: Decimal | int | None = None
    is_mastered: bool | None = None
    probability: float | None = None  # bkt only: unrounded P(known)


@dataclass(frozen=True)
class _Point:
    score: Decimal
    when: When | None


# --- helpers ---------------------------------------------------------------------------------------


def quantize(value: Decimal) -> Decimal:
    """Round half-up to two decimal places, the stored precision."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _to_decimal(value: Number, what: str = "score") -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def _points(scores: Iterable[ScoreInput]) -> list[_Point]:
    """Scores as points in the order the work was done (pairs sorted stably by date; see module)."""
    items = list(scores)
    pairs = [isinstance(item, tuple) for item in items]
    if any(pairs) and not all(pairs):
        raise ValueError("give either plain scores (already in order) or (when, score) pairs, not both")
    if not any(pairs):
        return [_Point(_to_decimal(item), None) for item in items]  # type: ignore[arg-type]
    points = []
    for item in items:
        if len(item) != 2:  # type: ignore[arg-type]
            raise ValueError(f"a dated score is a (when, score) pair, got {item!r}")
        when, score = item  # type: ignore[misc]
        if not isinstance(when, date):
            raise ValueError(f"when must be a date or datetime, got {when!r}")
        points.append(_Point(_to_decimal(score), when))
    kinds = {isinstance(point.when, datetime) for point in points}
    if len(kinds) > 1:
        raise ValueError("dated scores must all be dates or all be datetimes")
    return sorted(points, key=lambda point: point.when)  # type: ignore[arg-type,return-value]


def fmt(value: Decimal) -> str:
    """A number as a teacher writes it: two places at most, no trailing zeros (3, 2.5, 2.83)."""
    text = f"{quantize(value):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _fmt_when(when: When | None) -> str:
    return f"{when.day} {when.strftime('%b')}" if when is not None else ""


def _labelled(point: _Point, label: str = "") -> str:
    """'3 (latest, 14 Mar)', '3 (14 Mar)', '3 (latest)' or '3'."""
    details = ", ".join(part for part in (label, _fmt_when(point.when)) if part)
    return f"{fmt(point.score)} ({details})" if details else fmt(point.score)


def _mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values)


def _mean_text(values: Sequence[Decimal]) -> str:
    """'(2 + 3 + 3.5) / 3' or, for long lists, 'sum 70.5 / 25'."""
    if len(values) <= _LISTED_SCORES_MAX:
        return f"({' + '.join(fmt(value) for value in values)}) / {len(values)}"
    return f"sum {fmt(sum(values, Decimal(0)))} / {len(values)}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _no_evidence(method: str, parameter: Decimal | int | None = None) -> MethodResult:
    return MethodResult(None, NO_EVIDENCE, 0, method, parameter)


def _check_range(value: Decimal, low: Decimal, high: Decimal, what: str) -> Decimal:
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high}, got {value}")
    return value


def weight_parameter(parameter: Number | None) -> Decimal:
    """The weighted average's w (default 0.65), checked to be in 0.01..0.99."""
    if parameter is None:
        return DEFAULT_WEIGHT
    return _check_range(
        _to_decimal(parameter, "weighted average w"), WEIGHT_MIN, WEIGHT_MAX, "weighted average w"
    )


def decay_parameter(parameter: Number | None) -> Decimal:
    """The decaying average's d (default 0.65), checked to be in 0.50..0.99."""
    if parameter is None:
        return DEFAULT_DECAY
    return _check_range(
        _to_decimal(parameter, "decaying average d"), DECAY_MIN, DECAY_MAX, "decaying average d"
    )


def n_parameter(parameter: Number | None) -> int:
    """n times' n (default 5), a whole number in 1..10."""
    if parameter is None:
        return DEFAULT_N
    value = _to_decimal(parameter, "n times n")
    if value != value.to_integral_value():
        raise ValueError(f"n times n must be a whole number, got {parameter}")
    if not N_MIN <= value <= N_MAX:
        raise ValueError(f"n times n must be between {N_MIN} and {N_MAX}, got {parameter}")
    return int(value)


# --- the methods, one student and one competency ---------------------------------------------------


def latest(scores: Iterable[ScoreInput]) -> MethodResult:
    """sn: the score of the newest work."""
    points = _points(scores)
    if not points:
        return _no_evidence(LATEST)
    last = points[-1]
    of = f" of {len(points)} scores" if len(points) > 1 else ""
    text = f"latest{of}: {_labelled(last)} = {fmt(last.score)}"
    return MethodResult(quantize(last.score), text, len(points), LATEST)


def highest(scores: Iterable[ScoreInput]) -> MethodResult:
    """max(s). On a tie the explanation names the first time the highest score was reached."""
    points = _points(scores)
    if not points:
        return _no_evidence(HIGHEST)
    best = points[0]
    for point in points[1:]:
        if point.score > best.score:
            best = point
    times = sum(1 for point in points if point.score == best.score)
    tie = f", reached {_plural(times, 'time')}" if times > 1 else ""
    label = "first" if times > 1 and best.when is not None else ""
    text = f"highest of {_plural(len(points), 'score')}: {_labelled(best, label)}{tie} = {fmt(best.score)}"
    return MethodResult(quantize(best.score), text, len(points), HIGHEST)


def average(scores: Iterable[ScoreInput]) -> MethodResult:
    """mean(s)."""
    points = _points(scores)
    if not points:
        return _no_evidence(AVERAGE)
    values = [point.score for point in points]
    score = quantize(_mean(values))
    if len(values) == 1:
        text = f"average of 1 score: {_labelled(points[0])} = {fmt(score)}"
    else:
        text = f"average: {_mean_text(values)} = {fmt(score)}"
    return MethodResult(score, text, len(points), AVERAGE)


def weighted_average(scores: Iterable[ScoreInput], w: Number | None = None) -> MethodResult:
    """w*sn + (1-w)*mean(s1..s(n-1)); with one score, s1. w in 0.01..0.99, default 0.65."""
    weight = weight_parameter(w)
    points = _points(scores)
    if not points:
        return _no_evidence(WEIGHTED_AVERAGE, weight)
    last = points[-1]
    if len(points) == 1:
        text = f"weighted average: only one score, {_labelled(last)} = {fmt(last.score)}"
        return MethodResult(quantize(last.score), text, 1, WEIGHTED_AVERAGE, weight)
    earlier = [point.score for point in points[:-1]]
    earlier_mean = _mean(earlier)
    rest = 1 - weight
    score = quantize(weight * last.score + rest * earlier_mean)
    if len(earlier) == 1:
        earlier_text = _labelled(points[0], "earlier")
    else:
        earlier_text = f"{fmt(earlier_mean)} (mean of {len(earlier)} earlier)"
    text = (
        f"weighted average: {fmt(weight)} x {_labelled(last, 'latest')} "
        f"+ {fmt(rest)} x {earlier_text} = {fmt(score)}"
    )
    return MethodResult(score, text, len(points), WEIGHTED_AVERAGE, weight)


def decaying_average(scores: Iterable[ScoreInput], d: Number | None = None) -> MethodResult:
    """r1 = s1; rk = (1-d)*r(k-1) + d*sk. d in 0.50..0.99, default 0.65."""
    decay = decay_parameter(d)
    points = _points(scores)
    if not points:
        return _no_evidence(DECAYING_AVERAGE, decay)
    keep = 1 - decay
    running = points[0].score
    steps = [f"start at {_labelled(points[0])}"]
    for index, point in enumerate(points[1:], start=2):
        previous = running
        running = keep * previous + decay * point.score
        label = "latest" if index == len(points) else ""
        steps.append(
            f"{fmt(keep)} x {fmt(previous)} + {fmt(decay)} x {_labelled(point, label)} = {fmt(running)}"
        )
    if len(steps) > 4:
        # Long histories: the start, the running value before the last step, and the last step.
        hidden = len(steps) - 2
        steps = [steps[0], f"... {_plural(hidden, 'more step')} ...", steps[-1]]
    score = quantize(running)
    head = f"decaying average (d = {fmt(decay)})"
    if len(points) == 1:
        return MethodResult(
            score,
            f"{head}: only one score, {_labelled(points[0])} = {fmt(score)}",
            1,
            DECAYING_AVERAGE,
            decay,
        )
    return MethodResult(score, f"{head}: {'; '.join(steps)}", len(points), DECAYING_AVERAGE, decay)


def n_times(scores: Iterable[ScoreInput], n: Number | None = None, *, mastery_points: Number) -> MethodResult:
    """Mean of the scores at or above ``mastery_points`` once there are at least n of them, else None."""
    count_needed = n_parameter(n)
    threshold = _to_decimal(mastery_points, "mastery points")
    points = _points(scores)
    if not points:
        return _no_evidence(N_TIMES, count_needed)
    passing = [point.score for point in points if point.score >= threshold]
    head = f"n times (n = {count_needed}, mastery at {fmt(threshold)})"
    if len(passing) < count_needed:
        text = (
            f"{head}: {len(passing)} of {_plural(len(points), 'score')} at or above mastery, "
            f"{count_needed - len(passing)} more needed; no score yet"
        )
        return MethodResult(None, text, len(points), N_TIMES, count_needed)
    score = quantize(_mean(passing))
    text = (
        f"{head}: {len(passing)} of {_plural(len(points), 'score')} at or above mastery, "
        f"mean {_mean_text(passing)} = {fmt(score)}"
    )
    return MethodResult(score, text, len(points), N_TIMES, count_needed)


def bkt(
    scores: Iterable[ScoreInput],
    params: BKTParams | None = None,
    *,
    mastery_points: Number | None = None,
) -> MethodResult:
    """P(known) after the sequence; mastered when P(known) >= 0.95.

    A score counts as a correct response when it reaches ``mastery_points``; without
    ``mastery_points`` the scores must already be 0 (incorrect) or 1 (correct).
    """
    model = params or BKTParams()
    points = _points(scores)
    if not points:
        return _no_evidence(BKT)
    if mastery_points is None:
        if any(point.score not in (0, 1) for point in points):
            raise ValueError("bkt needs mastery_points unless every score is 0 or 1")
        responses = [int(point.score) for point in points]
    else:
        threshold = _to_decimal(mastery_points, "mastery points")
        responses = [int(point.score >= threshold) for point in points]
    probability, _ = state_after(responses, model)
    score = Decimal(repr(probability)).quantize(CENT, rounding=ROUND_FLOOR)
    is_mastered = probability >= MASTERY_THRESHOLD
    right = sum(responses)
    text = (
        f"knowledge tracing: {right} of {_plural(len(responses), 'response')} correct"
        f" (latest {'correct' if responses[-1] else 'incorrect'}); "
        f"P(known) starts at {model.prior:.2f}, guess {model.guess:.2f}, slip {model.slip:.2f}, "
        f"learn {model.learn:.2f}; now {probability:.3f}, "
        f"{'at or above' if is_mastered else 'below'} {fmt(BKT_MASTERY)} for mastery"
    )
    return MethodResult(score, text, len(points), BKT, None, is_mastered, probability)


def calculate(
    method: str,
    scores: Iterable[ScoreInput],
    parameter: Number | None = None,
    mastery_points: Number | None = None,
    bkt_params: BKTParams | None = None,
) -> MethodResult:
    """Run the named method. ``parameter`` is w, d or n (None: the default); the parameterless
    methods (latest, highest, average, bkt) ignore it, so a leftover value on a framework that
    switched method does no harm. ``mastery_points`` is required by n_times."""
    if method == LATEST:
        return latest(scores)
    if method == HIGHEST:
        return highest(scores)
    if method == AVERAGE:
        return average(scores)
    if method == WEIGHTED_AVERAGE:
        return weighted_average(scores, parameter)
    if method == DECAYING_AVERAGE:
        return decaying_average(scores, parameter)
    if method == N_TIMES:
        if mastery_points is None:
            raise ValueError("n_times needs mastery_points (the points of the scale's mastery level)")
        return n_times(scores, parameter, mastery_points=mastery_points)
    if method == BKT:
        return bkt(scores, bkt_params, mastery_points=mastery_points)
    raise ValueError(f"unknown calculation method {method!r}; expected one of {', '.join(METHODS)}")


# --- levels and the full sentence -------------------------------------------------------------------


def level_for(score: Number | None, levels: Iterable[LevelT]) -> LevelT | None:
    """The highest level whose points the score reaches: ``levels`` are (points, name, is_mastery)
    tuples in any order; None when there is no score or it is below every level."""
    if score is None:
        return None
    value = _to_decimal(score)
    reached = [level for level in levels if value >= _to_decimal(level[0], "level points")]
    if not reached:
        return None
    return max(reached, key=lambda level: _to_decimal(level[0], "level points"))


def describe(result: MethodResult, level: tuple[Any, ...] | None) -> str:
    """The explanation with the level appended: '... = 2.83 -> Mastery'."""
    if level is None or result.score is None:
        return result.explanation
    return f"{result.explanation} -> {level[1]}"


# --- district-wide, vectorised ---------------------------------------------------------------------

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Segments:
    values: FloatArray  # every score, flat, grouped by student, oldest first within a student
    starts: npt.NDArray[np.intp]  # index of each non-empty segment's first score
    lengths: npt.NDArray[np.intp]
    rows: npt.NDArray[np.intp]  # which output slot each segment fills
    size: int  # number of outputs


def _segments(scores: npt.ArrayLike, group_ids: npt.ArrayLike | None) -> _Segments:
    """Flatten either input form into contiguous segments.

    - ``group_ids`` None: ``scores`` is (students x steps), each row left-aligned oldest first and
      padded with NaN; one output per row (NaN for a row without scores).
    - else: ``scores`` and ``group_ids`` are 1-D of one length, each group's scores contiguous and
      oldest first (sort by (group, when)); one output per group, in order of appearance (for sorted
      ids that is ``np.unique(group_ids)``).
    """
    array = np.asarray(scores, dtype=np.float64)
    if group_ids is None:
        if array.ndim != 2:
            raise ValueError("without group_ids, scores must be a (students x steps) NaN-padded matrix")
        present = ~np.isnan(array)
        lengths_all = present.sum(axis=1)
        positions = np.arange(array.shape[1])[None, :]
        if not (present == (positions < lengths_all[:, None])).all():
            raise ValueError("each row's scores must be left-aligned, with NaN padding only at the end")
        values = array[present]
        rows = np.flatnonzero(lengths_all > 0)
        lengths = lengths_all[rows]
        size = array.shape[0]
    else:
        ids = np.asarray(group_ids)
        if array.ndim != 1 or ids.shape != array.shape:
            raise ValueError("scores and group_ids must be 1-D arrays of the same length")
        if np.isnan(array).any():
            raise ValueError("scores must not contain NaN")
        values = array
        if values.size == 0:
            empty = np.zeros(0, dtype=np.intp)
            return _Segments(values, empty, empty, empty, 0)
        boundaries = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        starts_flat = np.concatenate(([0], boundaries))
        lengths = np.diff(np.concatenate((starts_flat, [values.size])))
        if np.unique(ids).size != starts_flat.size:
            raise ValueError("each group's scores must be contiguous (sort by group, then by when)")
        rows = np.arange(starts_flat.size)
        size = starts_flat.size
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.intp)
    return _Segments(values, starts, lengths.astype(np.intp), rows.astype(np.intp), size)


def _scatter(segments: _Segments, per_segment: FloatArray) -> FloatArray:
    out = np.full(segments.size, np.nan)
    out[segments.rows] = per_segment
    return out


def latest_many(scores: npt.ArrayLike, group_ids: npt.ArrayLike | None = None) -> FloatArray:
    """``latest`` for many students at once (input forms: see ``weighted_average_many``)."""
    segments = _segments(scores, group_ids)
    if not segments.starts.size:
        return _scatter(segments, np.zeros(0))
    return _scatter(segments, segments.values[segments.starts + segments.lengths - 1])


def highest_many(scores: npt.ArrayLike, group_ids: npt.ArrayLike | None = None) -> FloatArray:
    """``highest`` for many students at once."""
    segments = _segments(scores, group_ids)
    if not segments.starts.size:
        return _scatter(segments, np.zeros(0))
    return _scatter(segments, np.maximum.reduceat(segments.values, segments.starts))


def average_many(scores: npt.ArrayLike, group_ids: npt.ArrayLike | None = None) -> FloatArray:
    """``average`` for many students at once."""
    segments = _segments(scores, group_ids)
    if not segments.starts.size:
        return _scatter(segments, np.zeros(0))
    return _scatter(segments, np.add.reduceat(segments.values, segments.starts) / segments.lengths)


def weighted_average_many(
    scores: npt.ArrayLike, group_ids: npt.ArrayLike | None = None, *, w: Number | None = None
) -> FloatArray:
    """``weighted_average`` for many students at once, as float64 (unrounded).

    Input: a (students x steps) matrix, rows left-aligned oldest first and NaN-padded, one result per
    row (NaN for an empty row); or flat ``scores`` with ``group_ids``, each group contiguous and oldest
    first, one result per group in order of appearance.
    """
    weight = float(weight_parameter(w))
    segments = _segments(scores, group_ids)
    if not segments.starts.size:
        return _scatter(segments, np.zeros(0))
    last_index = segments.starts + segments.lengths - 1
    last = segments.values[last_index]
    earlier = segments.values.copy()
    earlier[last_index] = 0.0  # sum of s1..s(n-1) without subtracting (no cancellation)
    earlier_sum = np.add.reduceat(earlier, segments.starts)
    earlier_count = segments.lengths - 1
    earlier_mean = np.divide(
        earlier_sum, earlier_count, out=np.zeros_like(earlier_sum), where=earlier_count > 0
    )
    result = np.where(earlier_count > 0, weight * last + (1.0 - weight) * earlier_mean, last)
    return _scatter(segments, result)


def decaying_average_many(
    scores: npt.ArrayLike, group_ids: npt.ArrayLike | None = None, *, d: Number | None = None
) -> FloatArray:
    """``decaying_average`` for many students at once, as float64 (unrounded).

    Unrolled, r_n = (1-d)^(n-1) s1 + sum over k >= 2 of d (1-d)^(n-k) sk: each score's weight
    depends only on how many scores follow it in its segment, so one ``np.add.reduceat`` does it.
    Input forms as ``weighted_average_many``.
    """
    decay = float(decay_parameter(d))
    segments = _segments(scores, group_ids)
    if not segments.starts.size:
        return _scatter(segments, np.zeros(0))
    segment_of = np.repeat(np.arange(segments.starts.size), segments.lengths)
    position = np.arange(segments.values.size) - segments.starts[segment_of]  # 0 for s1
    after = segments.lengths[segment_of] - 1 - position  # scores that follow this one
    weights = (1.0 - decay) ** after * np.where(position == 0, 1.0, decay)
    return _scatter(segments, np.add.reduceat(weights * segments.values, segments.starts))


# --- district-wide, exact: the stored score and explanation of many groups at once -----------------

NO_CENTS = np.iinfo(np.int64).min  # "no score" in the cent arrays of ``calculate_many``
_TIE_TOLERANCE = 1e-6  # float paths: closer than this (in cents) to a half cent is left to the exact path
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ManyResult:
    """``calculate`` over many groups (one student's evidence on one competency each) at once.

    ``score`` in whole cents (``NO_CENTS`` for no score), ``explanation`` one text per group (without the
    level: ``describe`` appends it). ``exact`` is False for the rare groups whose arithmetic sits on a
    half cent where ``Decimal``'s 28-digit rounding could decide differently: the caller runs the
    one-group method for those (their other entries are not to be used). ``probability`` and
    ``is_mastered``: bkt only.
    """

    score: npt.NDArray[np.int64]
    explanation: list[str]
    exact: npt.NDArray[np.bool_]
    probability: FloatArray | None = None
    is_mastered: npt.NDArray[np.bool_] | None = None


def _cents_of(value: Decimal) -> int | None:
    """A Decimal as whole cents, or None when it has more than two places."""
    cents = value * 100
    return int(cents) if cents == cents.to_integral_value() else None


def _round_div(numerator: npt.NDArray[np.int64], denominator: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """numerator / denominator rounded half-up (away from zero on a tie), denominator > 0, exactly."""
    magnitude = (2 * np.abs(numerator) + denominator) // (2 * denominator)
    return np.where(numerator < 0, -magnitude, magnitude)


def _fmt_cents_many(cents: npt.ArrayLike) -> list[str]:
    """``fmt`` of many whole-cent values."""
    array = np.asarray(cents, dtype=np.int64)
    if not array.size:
        return []
    unique, inverse = np.unique(array, return_inverse=True)
    texts = np.array([fmt(Decimal(int(value)) / 100) for value in unique.tolist()], dtype=object)
    return texts[inverse.reshape(-1)].tolist()


def _when_many(micros: npt.ArrayLike) -> list[str]:
    """``_fmt_when`` of many UTC moments given as microseconds since the epoch ('14 Mar')."""
    days = np.asarray(micros, dtype=np.int64) // 86_400_000_000
    if not days.size:
        return []
    unique, inverse = np.unique(days, return_inverse=True)
    dates = unique.astype("datetime64[D]")
    months = (dates.astype("datetime64[M]").astype(np.int64) % 12 + 1).tolist()
    day_of_month = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    texts = np.array(
        [f"{day} {_MONTHS[month]}" for day, month in zip(day_of_month.tolist(), months, strict=True)],
        dtype=object,
    )
    return texts[inverse.reshape(-1)].tolist()


def _plural_many(counts: npt.ArrayLike, noun: str) -> list[str]:
    return [f"{count} {noun}" if count == 1 else f"{count} {noun}s" for count in np.asarray(counts).tolist()]


def _float_cents(values: FloatArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Float cents rounded half-up, and whether each is far enough from a half cent to be sure."""
    magnitude = np.abs(values)
    floor = np.floor(magnitude)
    fraction = magnitude - floor
    rounded = (floor + (fraction >= 0.5)).astype(np.int64)
    sure = np.abs(fraction - 0.5) > _TIE_TOLERANCE
    return np.where(values < 0, -rounded, rounded), sure


def _mean_texts(
    score_text: list[str], sums: npt.NDArray[np.int64], starts: list[int], counts: list[int]
) -> list[str]:
    """``_mean_text`` per group from the groups' score texts (contiguous in ``score_text``)."""
    sum_text = _fmt_cents_many(sums)
    return [
        f"({' + '.join(score_text[start : start + count])}) / {count}"
        if count <= _LISTED_SCORES_MAX
        else f"sum {total} / {count}"
        for start, count, total in zip(starts, counts, sum_text, strict=True)
    ]


def _terminating(
    numerator: npt.NDArray[np.int64], denominator: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Whether numerator / denominator has a finite decimal expansion (so ``Decimal`` holds it exactly)."""
    rest = denominator // np.gcd(np.abs(numerator), denominator)
    for factor in (2, 5):
        for _ in range(64):
            divisible = rest % factor == 0
            if not divisible.any():
                break
            rest = np.where(divisible, rest // factor, rest)
    return rest == 1


def calculate_many(
    method: str,
    cents: npt.ArrayLike,
    starts: npt.ArrayLike,
    lengths: npt.ArrayLike,
    micros: npt.ArrayLike,
    parameter: Number | None = None,
    mastery_points: Number | None = None,
    bkt_params: BKTParams | None = None,
) -> ManyResult:
    """``calculate(method, [(when, score), ...], parameter, mastery_points, bkt_params)`` for many groups
    at once, with the same score and explanation, exactly (see ``ManyResult.exact``).

    ``cents``: every score in whole cents, flat, each group contiguous in the order the work was done
    (sort by group, then when); ``micros``: when, in microseconds since the epoch (UTC), one per score;
    ``starts``, ``lengths``: each group's first index and its number of scores (at least one). For bkt the
    scores are 0 or 100 (0 or 1) unless ``mastery_points`` is given, as in ``bkt``.
    """
    values = np.asarray(cents, dtype=np.int64)
    first = np.asarray(starts, dtype=np.int64)
    counts = np.asarray(lengths, dtype=np.int64)
    moments = np.asarray(micros, dtype=np.int64)
    size = first.size
    if values.shape != moments.shape or counts.shape != first.shape:
        raise ValueError("cents and micros, starts and lengths must have the same lengths")
    if size and (counts < 1).any():
        raise ValueError("every group needs at least one score")
    exact = np.ones(size, dtype=bool)
    if not size:
        return ManyResult(np.zeros(0, dtype=np.int64), [], exact)
    last = first + counts - 1
    group_of = np.repeat(np.arange(size), counts)
    reduce_at = first  # groups are contiguous and non-empty
    score_text = _fmt_cents_many(values)
    when_text = _when_many(moments)
    first_list, count_list, last_list = first.tolist(), counts.tolist(), last.tolist()

    def labelled(index: int, label: str = "") -> str:
        details = f"{label}, {when_text[index]}" if label else when_text[index]
        return f"{score_text[index]} ({details})"

    if method == LATEST:
        score = values[last]
        texts = [
            f"latest{f' of {count} scores' if count > 1 else ''}: {labelled(end)} = {score_text[end]}"
            for count, end in zip(count_list, last_list, strict=True)
        ]
        return ManyResult(score, texts, exact)

    if method == HIGHEST:
        best = np.maximum.reduceat(values, reduce_at)
        is_best = values == best[group_of]
        best_index = np.minimum.reduceat(np.where(is_best, np.arange(values.size), values.size), reduce_at)
        times = np.add.reduceat(is_best.astype(np.int64), reduce_at)
        texts = [
            f"highest of {scores}: {labelled(index, 'first' if time > 1 else '')}"
            f"{f', reached {time} times' if time > 1 else ''} = {score_text[index]}"
            for scores, index, time in zip(
                _plural_many(counts, "score"), best_index.tolist(), times.tolist(), strict=True
            )
        ]
        return ManyResult(best, texts, exact)

    if method == AVERAGE:
        sums = np.add.reduceat(values, reduce_at)
        score = _round_div(sums, counts)
        means = _mean_texts(score_text, sums, first_list, count_list)
        score_fmt = _fmt_cents_many(score)
        texts = [
            f"average of 1 score: {labelled(start)} = {shown}" if count == 1 else f"average: {mean} = {shown}"
            for start, count, mean, shown in zip(first_list, count_list, means, score_fmt, strict=True)
        ]
        return ManyResult(score, texts, exact)

    if method == WEIGHTED_AVERAGE:
        weight = weight_parameter(parameter)
        weight_cents = _cents_of(weight)
        if weight_cents is None:
            return ManyResult(np.full(size, NO_CENTS), [""] * size, np.zeros(size, dtype=bool))
        rest = 1 - weight
        latest_cents = values[last]
        earlier_count = counts - 1
        earlier_sum = np.add.reduceat(values, reduce_at) - latest_cents
        many = earlier_count > 0
        divisor = np.maximum(earlier_count, 1)
        numerator = weight_cents * latest_cents * divisor + (100 - weight_cents) * earlier_sum
        denominator = 100 * divisor
        score = np.where(many, _round_div(numerator, denominator), latest_cents)
        tie = many & ((2 * np.abs(numerator)) % (2 * denominator) == denominator)
        exact &= ~(tie & ~_terminating(earlier_sum, divisor))
        earlier_mean = _fmt_cents_many(_round_div(earlier_sum, divisor))
        score_fmt = _fmt_cents_many(score)
        head = f"weighted average: {fmt(weight)} x "
        rest_text = fmt(rest)
        texts = []
        for start, end, count, mean, shown in zip(
            first_list, last_list, count_list, earlier_mean, score_fmt, strict=True
        ):
            if count == 1:
                texts.append(f"weighted average: only one score, {labelled(end)} = {score_text[end]}")
                continue
            earlier = labelled(start, "earlier") if count == 2 else f"{mean} (mean of {count - 1} earlier)"
            texts.append(f"{head}{labelled(end, 'latest')} + {rest_text} x {earlier} = {shown}")
        return ManyResult(score, texts, exact)

    if method == DECAYING_AVERAGE:
        return _decaying_many(values, first, counts, parameter, labelled, score_text, exact)

    if method == N_TIMES:
        needed = n_parameter(parameter)
        if mastery_points is None:
            raise ValueError("n_times needs mastery_points (the points of the scale's mastery level)")
        threshold = _to_decimal(mastery_points, "mastery points")
        threshold_cents = _cents_of(threshold)
        if threshold_cents is None:
            return ManyResult(np.full(size, NO_CENTS), [""] * size, np.zeros(size, dtype=bool))
        passing = values >= threshold_cents
        passed = np.add.reduceat(passing.astype(np.int64), reduce_at)
        passing_sum = np.add.reduceat(np.where(passing, values, 0), reduce_at)
        enough = passed >= needed
        score = np.where(enough, _round_div(passing_sum, np.maximum(passed, 1)), NO_CENTS)
        passing_index = np.flatnonzero(passing)
        passing_text = [score_text[index] for index in passing_index.tolist()]
        passing_start = (np.cumsum(passed) - passed).tolist()
        means = _mean_texts(passing_text, passing_sum, passing_start, passed.tolist())
        score_fmt = _fmt_cents_many(np.where(enough, score, 0))
        head = f"n times (n = {needed}, mastery at {fmt(threshold)}): "
        texts = [
            f"{head}{count_passed} of {scores} at or above mastery, "
            + (
                f"mean {mean} = {shown}"
                if count_passed >= needed
                else f"{needed - count_passed} more needed; no score yet"
            )
            for count_passed, scores, mean, shown in zip(
                passed.tolist(), _plural_many(counts, "score"), means, score_fmt, strict=True
            )
        ]
        return ManyResult(score, texts, exact)

    if method == BKT:
        return _bkt_many(values, first, counts, mastery_points, bkt_params, exact)
    raise ValueError(f"unknown calculation method {method!r}; expected one of {', '.join(METHODS)}")


def _decaying_many(
    values: npt.NDArray[np.int64],
    first: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    parameter: Number | None,
    labelled: Any,
    score_text: list[str],
    exact: npt.NDArray[np.bool_],
) -> ManyResult:
    """``decaying_average`` of many groups: exact integers while they fit in 64 bits, then float64
    with the groups near a half cent left to the exact path."""
    size = first.size
    decay = decay_parameter(parameter)
    decay_cents = _cents_of(decay)
    if decay_cents is None:
        return ManyResult(np.full(size, NO_CENTS), [""] * size, np.zeros(size, dtype=bool))
    keep_cents = 100 - decay_cents
    keep, decay_float = float(1 - decay), float(decay)
    largest = max(int(np.abs(values).max()), 1)
    exact_steps = 1  # r_k is held exactly as R_k = r_k (in cents) * 100^(k-1) while it fits
    while largest * 100**exact_steps < 2**60:
        exact_steps += 1
    longest = int(counts.max())
    running = values[first].copy()  # R_k
    running_float = values[first].astype(np.float64)
    current = values[first].copy()  # r_k rounded to cents
    previous = current.copy()  # r_(k-1) rounded to cents
    shown_steps = np.full((size, 5), NO_CENTS, dtype=np.int64)  # r_k in cents, k <= 4
    shown_steps[:, 1] = current
    for k in range(2, longest + 1):
        active = np.flatnonzero(counts >= k)
        score_k = values[first[active] + k - 1]
        running_float[active] = keep * running_float[active] + decay_float * score_k
        previous[active] = current[active]
        if k <= exact_steps:
            running[active] = keep_cents * running[active] + decay_cents * score_k * 100 ** (k - 2)
            current[active] = _round_div(
                running[active], np.full(active.size, 100 ** (k - 1), dtype=np.int64)
            )
        else:
            rounded, sure = _float_cents(running_float[active])
            current[active] = rounded
            # Decisive only for the last two steps (the ones shown): r_(n-1) and r_n.
            near_end = (counts[active] - k <= 1) | (counts[active] <= 4)
            exact[active[near_end & ~sure]] = False
        if k <= 4:
            shown_steps[active, k] = current[active]
    head = f"decaying average (d = {fmt(decay)})"
    keep_text, decay_text = fmt(1 - decay), fmt(decay)
    current_fmt = _fmt_cents_many(current)
    previous_fmt = _fmt_cents_many(previous)
    step_fmt = [
        _fmt_cents_many(np.where(shown_steps[:, k] == NO_CENTS, 0, shown_steps[:, k])) for k in range(5)
    ]
    texts = []
    for group, (start, count) in enumerate(zip(first.tolist(), counts.tolist(), strict=True)):
        end = start + count - 1
        if count == 1:
            texts.append(f"{head}: only one score, {labelled(start)} = {current_fmt[group]}")
            continue
        steps = [f"start at {labelled(start)}"]
        if count <= 4:
            for k in range(2, count + 1):
                label = "latest" if k == count else ""
                steps.append(
                    f"{keep_text} x {step_fmt[k - 1][group]} + {decay_text} x "
                    f"{labelled(start + k - 1, label)} = {step_fmt[k][group]}"
                )
        else:
            steps.append(f"... {count - 2} more steps ...")
            steps.append(
                f"{keep_text} x {previous_fmt[group]} + {decay_text} x {labelled(end, 'latest')} = "
                f"{current_fmt[group]}"
            )
        texts.append(f"{head}: {'; '.join(steps)}")
    return ManyResult(current, texts, exact)


def _bkt_many(
    values: npt.NDArray[np.int64],
    first: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    mastery_points: Number | None,
    bkt_params: BKTParams | None,
    exact: npt.NDArray[np.bool_],
) -> ManyResult:
    """``bkt`` of many groups: the forward update of every group at once, step by step."""
    from progress.bkt import _step

    model = bkt_params or BKTParams()
    if mastery_points is None:
        if not np.isin(values, (0, 100)).all():
            raise ValueError("bkt needs mastery_points unless every score is 0 or 1")
        correct = values == 100
    else:
        threshold_cents = _cents_of(_to_decimal(mastery_points, "mastery points"))
        if threshold_cents is None:
            return ManyResult(
                np.full(first.size, NO_CENTS), [""] * first.size, np.zeros(first.size, dtype=bool)
            )
        correct = values >= threshold_cents
    size = first.size
    known = np.full(size, model.prior, dtype=np.float64)
    unknown = np.full(size, np.float64(1.0 - model.prior), dtype=np.float64)
    for step in range(int(counts.max())):
        active = np.flatnonzero(counts > step)
        known[active], unknown[active] = _step(
            known[active], unknown[active], correct[first[active] + step], model
        )
    hundredths = known * 100
    score = np.floor(hundredths).astype(np.int64)
    # Rounded down from the shortest repr, as ``bkt`` does: near a whole cent, ask Decimal.
    near = np.flatnonzero(np.abs(hundredths - np.round(hundredths)) < 1e-6)
    for index in near.tolist():
        floored = Decimal(repr(float(known[index]))).quantize(CENT, rounding=ROUND_FLOOR)
        score[index] = int(floored * 100)
    is_mastered = known >= MASTERY_THRESHOLD
    right = np.add.reduceat(correct.astype(np.int64), first)
    latest_right = correct[first + counts - 1]
    middle = (
        f"P(known) starts at {model.prior:.2f}, guess {model.guess:.2f}, slip {model.slip:.2f}, "
        f"learn {model.learn:.2f}; now "
    )
    tail = f" {fmt(BKT_MASTERY)} for mastery"
    texts = [
        f"knowledge tracing: {count_right} of {responses} correct (latest "
        f"{'correct' if is_right else 'incorrect'}); {middle}{probability:.3f}, "
        f"{'at or above' if mastered else 'below'}{tail}"
        for count_right, responses, is_right, probability, mastered in zip(
            right.tolist(),
            _plural_many(counts, "response"),
            latest_right.tolist(),
            known.tolist(),
            is_mastered.tolist(),
            strict=True,
        )
    ]
    return ManyResult(score, texts, exact, known.copy(), is_mastered)
