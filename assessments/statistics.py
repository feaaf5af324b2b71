"""Classical item statistics: facility, point-biserial discrimination, and when an item looks suspect.

Pure: no Django import, tested without a database. Plain Python floats (``math.fsum`` for exact-enough
sums); callers round to the stored precision.

- *Facility* is the share of full credit: the mean of ``score / max_points`` over an item's scored
  responses (1.0: everyone earned every point; for a right/wrong item, the share correct).
- *Discrimination* is the point-biserial correlation, corrected item-total: Pearson's r between the
  item's score and the *rest score* (the attempt's total without this item) over the same attempts. The
  item is left out of the total so that it does not correlate with itself. A good item is answered well
  by students who do well on the rest (r > 0); a negative r usually means a wrong key or a misleading
  stem. ``None`` when either side has no variance (everyone right, or every rest score equal).
- *Suspect*: negative discrimination, or facility outside ``FACILITY_LOW..FACILITY_HIGH``; judged only
  once an item has ``MIN_RESPONSES`` scored responses (a handful of answers proves nothing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

FACILITY_LOW = 0.2
FACILITY_HIGH = 0.95
MIN_RESPONSES = 20


def facility(fractions: Sequence[float]) -> float | None:
    """The mean of the score fractions (each ``score / max_points``); ``None`` without responses."""
    if not fractions:
        return None
    return math.fsum(fractions) / len(fractions)


def point_biserial(item_scores: Sequence[float], rest_scores: Sequence[float]) -> float | None:
    """Pearson's r between item scores and rest scores (same length, paired by attempt).

    ``None`` for fewer than two pairs or when either side is constant (r is undefined).
    """
    if len(item_scores) != len(rest_scores):
        raise ValueError("item_scores and rest_scores must pair up one to one")
    count = len(item_scores)
    if count < 2:
        return None
    mean_item = math.fsum(item_scores) / count
    mean_rest = math.fsum(rest_scores) / count
    item_deviations = [value - mean_item for value in item_scores]
    rest_deviations = [value - mean_rest for value in rest_scores]
    covariance = math.fsum(a * b for a, b in zip(item_deviations, rest_deviations, strict=True))
    item_square = math.fsum(a * a for a in item_deviations)
    rest_square = math.fsum(b * b for b in rest_deviations)
    if item_square <= 0 or rest_square <= 0:
        return None
    r = covariance / math.sqrt(item_square * rest_square)
    return max(-1.0, min(1.0, r))


def suspect_reasons(
    *,
    facility_value: float | None,
    discrimination: float | None,
    response_count: int,
    min_responses: int = MIN_RESPONSES,
    facility_low: float = FACILITY_LOW,
    facility_high: float = FACILITY_HIGH,
) -> list[str]:
    """Why the item looks wrong, in words a curriculum lead understands; empty when it looks fine
    or when there are too few responses to judge."""
    if response_count < min_responses:
        return []
    reasons: list[str] = []
    if discrimination is not None and discrimination < 0:
        reasons.append(
            f"discrimination {discrimination:.2f} below 0: students who do well on the rest of the "
            "attempt tend to miss it (check the key)"
        )
    if facility_value is not None and facility_value > facility_high:
        reasons.append(
            f"facility {facility_value:.2f} above {facility_high:.2f}: almost everyone gets it right"
        )
    if facility_value is not None and facility_value < facility_low:
        reasons.append(
            f"facility {facility_value:.2f} below {facility_low:.2f}: almost everyone gets it wrong "
            "(check the key and the wording)"
        )
    return reasons


@dataclass(frozen=True)
class ItemResult:
    """One item's statistics, ready to store."""

    response_count: int
    facility: float | None
    discrimination: float | None
    reasons: list[str] = field(default_factory=list)

    @property
    def is_suspect(self) -> bool:
        return bool(self.reasons)


def item_result(
    *, max_points: float, pairs: Sequence[tuple[float, float]], min_responses: int = MIN_RESPONSES
) -> ItemResult:
    """Statistics of one item from its ``(item score, rest score)`` pairs, one per scored response."""
    item_scores = [item_score for item_score, _ in pairs]
    rest_scores = [rest_score for _, rest_score in pairs]
    facility_value = facility([score / max_points for score in item_scores]) if max_points > 0 else None
    discrimination = point_biserial(item_scores, rest_scores)
    return ItemResult(
        response_count=len(pairs),
        facility=facility_value,
        discrimination=discrimination,
        reasons=suspect_reasons(
            facility_value=facility_value,
            discrimination=discrimination,
            response_count=len(pairs),
            min_responses=min_responses,
        ),
    )
