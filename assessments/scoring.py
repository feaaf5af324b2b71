"""Scoring rules for one response, and the mapping of a competency's score onto a mastery scale.

Pure: no Django import, so every rule is tested without a database. Scores are ``Decimal`` rounded
half-up to two places (``quantize``), the precision the database stores.

Rules, by item type:
- ``single_choice``: full points when the chosen id is the correct one, else 0.
- ``multiple_choice``, all-or-nothing (default): full points when the selected set equals the correct
  set exactly, else 0.
- ``multiple_choice`` with partial credit: ``max(0, (correct selected - incorrect selected) / correct
  total) * points``. Selecting everything therefore earns nothing more than guessing, and a wrong pick
  cancels a right one.
- ``numeric``: full points when ``abs(answer - value) <= tolerance``. Numbers sent as strings ("3.5",
  " 3,5" is not a number) are accepted; anything that is not a finite number scores 0, never raises.
- ``short_text``: full points when the normalised answer equals a normalised accepted answer.
  Normalisation: Unicode NFKC, casefold, whitespace runs collapsed to one space, stripped.
- ``extended_text``: ``None`` - a person grades it against the rubric.

Mastery rule (``competency_result``): the competency's earned points as a fraction of its possible
points, times the top level's points of the framework's scale, is the *scale score* (e.g. 6 of 8
points on a 4-point scale is 3.00), rounded half-up to two places before comparing (so 2 of 3 points
on a 3-point scale is exactly 2.00). The level is the highest level whose points the scale score
reaches; the competency is *met* when that level's points are at least the mastery level's. Without
a scale (or without a mastery level) the competency is met at ``DEFAULT_MASTERY_FRACTION`` of its
points and the scale score is the fraction times 100.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
DEFAULT_MASTERY_FRACTION = Decimal("0.8")

_WHITESPACE = re.compile(r"\s+")


def quantize(value: Decimal) -> Decimal:
    """Round half-up to two decimal places, the stored precision."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _is_int_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def score_single_choice(answer: Any, *, correct_ids: Iterable[int], points: Decimal) -> Decimal:
    """Full points when ``answer`` is the (or a) correct choice id, else 0."""
    if not _is_int_id(answer):
        return ZERO
    return quantize(points) if answer in set(correct_ids) else ZERO


def score_multiple_choice(
    answer: Any, *, correct_ids: Iterable[int], points: Decimal, partial_credit: bool
) -> Decimal:
    """All-or-nothing, or partial credit ``max(0, (right picks - wrong picks) / correct total) * points``."""
    if not isinstance(answer, list | tuple) or not all(_is_int_id(value) for value in answer):
        return ZERO
    selected = set(answer)
    correct = set(correct_ids)
    if not correct:
        return ZERO
    if not partial_credit:
        return quantize(points) if selected == correct else ZERO
    right = len(selected & correct)
    wrong = len(selected - correct)
    fraction = max(Decimal(0), Decimal(right - wrong) / Decimal(len(correct)))
    return quantize(fraction * points)


def parse_number(answer: Any) -> Decimal | None:
    """A finite Decimal from an int, float or numeric string; ``None`` for anything else."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return Decimal(answer)
    if isinstance(answer, float):
        if not math.isfinite(answer):
            return None
        return Decimal(str(answer))
    if isinstance(answer, Decimal):
        return answer if answer.is_finite() else None
    if isinstance(answer, str):
        text = answer.strip()
        if not text or len(text) > 100:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def score_numeric(answer: Any, *, value: Decimal, tolerance: Decimal, points: Decimal) -> Decimal:
    """Full points when ``abs(answer - value) <= tolerance``; a non-number scores 0."""
    number = parse_number(answer)
    if number is None:
        return ZERO
    return quantize(points) if abs(number - value) <= tolerance else ZERO


def normalise_text(text: str) -> str:
    """NFKC, casefold, collapse whitespace runs to one space, strip."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def score_short_text(answer: Any, *, accepted: Iterable[str], points: Decimal) -> Decimal:
    """Full points when the normalised answer equals one normalised accepted answer."""
    if not isinstance(answer, str):
        return ZERO
    given = normalise_text(answer)
    if not given:
        return ZERO
    return quantize(points) if given in {normalise_text(text) for text in accepted} else ZERO


def score_extended_text(answer: Any) -> None:
    """Extended text needs a person and a rubric: never auto-scored."""
    return None


@dataclass(frozen=True)
class ItemKey:
    """What scoring needs to know about one item, detached from the database."""

    type: str
    points: Decimal
    correct_ids: tuple[int, ...] = ()
    partial_credit: bool = False
    value: Decimal | None = None
    tolerance: Decimal = ZERO
    accepted: tuple[str, ...] = ()


def score_response(answer: Any, key: ItemKey) -> Decimal | None:
    """Score one answer against one key; ``None`` when a person must grade it. A missing answer is 0."""
    if key.type == "extended_text":
        return score_extended_text(answer)
    if answer is None:
        return ZERO
    if key.type == "single_choice":
        return score_single_choice(answer, correct_ids=key.correct_ids, points=key.points)
    if key.type == "multiple_choice":
        return score_multiple_choice(
            answer, correct_ids=key.correct_ids, points=key.points, partial_credit=key.partial_credit
        )
    if key.type == "numeric":
        if key.value is None:
            return ZERO
        return score_numeric(answer, value=key.value, tolerance=key.tolerance, points=key.points)
    if key.type == "short_text":
        return score_short_text(answer, accepted=key.accepted, points=key.points)
    raise ValueError(f"Unknown item type: {key.type!r}")


@dataclass(frozen=True)
class Level:
    """One level of a mastery scale, as scoring sees it."""

    points: Decimal
    is_mastery: bool


@dataclass(frozen=True)
class CompetencyResult:
    earned: Decimal
    possible: Decimal
    scale_score: Decimal
    level_points: Decimal | None
    is_met: bool


def competency_result(*, earned: Decimal, possible: Decimal, levels: Sequence[Level]) -> CompetencyResult:
    """Map earned/possible points onto the scale (see the module docstring for the exact rule)."""
    fraction = earned / possible if possible > 0 else Decimal(0)
    fraction = min(max(fraction, Decimal(0)), Decimal(1))
    mastery = [level for level in levels if level.is_mastery]
    if not levels or not mastery:
        return CompetencyResult(
            earned=quantize(earned),
            possible=quantize(possible),
            scale_score=quantize(fraction * 100),
            level_points=None,
            is_met=fraction >= DEFAULT_MASTERY_FRACTION,
        )
    top = max(level.points for level in levels)
    scale_score = quantize(fraction * top)
    reached = [level.points for level in levels if level.points <= scale_score]
    level_points = max(reached) if reached else None
    return CompetencyResult(
        earned=quantize(earned),
        possible=quantize(possible),
        scale_score=scale_score,
        level_points=level_points,
        is_met=level_points is not None and level_points >= mastery[0].points,
    )
