"""The nightly item statistics: read scored responses set-based, compute, upsert ``ItemStatistics``.

Only responses of *completed* attempts count: in an attempt still waiting for a rubric grade the rest
score is not final. The rest score is the attempt's total of scored points without the item itself.
The math lives in ``assessments.statistics`` (pure); this module only moves rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Sum
from django.utils import timezone

from assessments import statistics
from assessments.models import Attempt, Item, ItemStatistics, Response

BATCH_SIZE = 500
FOUR_PLACES = Decimal("0.0001")
UPDATE_FIELDS = [
    "response_count",
    "facility",
    "discrimination",
    "is_suspect",
    "suspect_reasons",
    "computed_at",
]


def _stored(value: float | None) -> Decimal | None:
    if value is None:
        return None
    return Decimal(repr(value)).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)


def _batches(values: list[tuple[int, Decimal]], size: int) -> Iterable[list[tuple[int, Decimal]]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def item_statistics_refresh(
    *,
    item_ids: Iterable[int] | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    min_responses: int = statistics.MIN_RESPONSES,
) -> int:
    """Recompute and store the statistics of every item (or of ``item_ids``); returns the rows written.

    Idempotent: recomputed from the responses, upserted on the item. Queries: one for the items, then
    three per batch of ``batch_size`` items (the batch's scored responses, the totals of the attempts
    they belong to, one upsert), whatever the number of responses.
    """
    now = now or timezone.now()
    items = Item.objects.order_by("pk")
    if item_ids is not None:
        items = items.filter(pk__in=list(item_ids))
    item_rows = list(items.values_list("pk", "max_points"))
    written = 0
    for batch in _batches(item_rows, batch_size):
        batch_ids = [pk for pk, _ in batch]
        scored = Response.objects.filter(
            item_id__in=batch_ids, score__isnull=False, attempt__status=Attempt.Status.COMPLETED
        )
        responses = list(scored.values_list("item_id", "attempt_id", "score"))
        totals = dict(
            Response.objects.filter(attempt_id__in=scored.values("attempt_id"), score__isnull=False)
            .values("attempt_id")
            .annotate(total=Sum("score"))
            .values_list("attempt_id", "total")
        )
        pairs: dict[int, list[tuple[float, float]]] = defaultdict(list)
        for item_id, attempt_id, score in responses:
            pairs[item_id].append((float(score), float(totals[attempt_id] - score)))
        rows = []
        for item_id, max_points in batch:
            result = statistics.item_result(
                max_points=float(max_points), pairs=pairs.get(item_id, []), min_responses=min_responses
            )
            rows.append(
                ItemStatistics(
                    item_id=item_id,
                    response_count=result.response_count,
                    facility=_stored(result.facility),
                    discrimination=_stored(result.discrimination),
                    is_suspect=result.is_suspect,
                    suspect_reasons=result.reasons,
                    computed_at=now,
                )
            )
        ItemStatistics.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["item"], update_fields=UPDATE_FIELDS
        )
        written += len(rows)
    return written
