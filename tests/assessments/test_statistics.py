"""Item statistics: the pure math, the set-based nightly service, suspect marking, the task and beat."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal

import pytest

from assessments import item_statistics, statistics, tasks_statistics
from assessments.models import Attempt, Item, ItemStatistics, Response
from mastery.celery import app as celery_app
from tests.factories import AssessmentFactory, AttemptFactory, ItemFactory, StudentFactory

T0 = datetime.datetime(2026, 10, 5, 9, 0, tzinfo=datetime.UTC)

# Six completed attempts on three items: A (1 point), B (2 points), C (1 point).
MATRIX = [
    ("1", "2", "1"),
    ("1", "1.5", "0"),
    ("1", "1", "1"),
    ("0", "1", "0"),
    ("0", "0", "1"),
    ("1", "0", "0"),
]


# --- the pure math --------------------------------------------------------------------------------


def test_point_biserial_matches_the_hand_computation():
    # Item A: x = 1,1,1,0,0,1 and rest = 3,1.5,2,1,1,0 (the attempt total without A).
    # Sxy = 6.5 - 6 * (2/3) * (17/12) = 5/6; Sxx = 4 - 6 * 4/9 = 4/3; Syy = 17.25 - 6 * (17/12)^2 = 125/24.
    # r = (5/6) / sqrt(4/3 * 125/24) = sqrt(0.1) = 0.3162.
    r = statistics.point_biserial([1, 1, 1, 0, 0, 1], [3, 1.5, 2, 1, 1, 0])
    assert r == pytest.approx(math.sqrt(0.1), abs=1e-12)
    assert round(r, 4) == 0.3162


def test_point_biserial_is_undefined_without_variance_and_symmetric_in_sign():
    assert statistics.point_biserial([1, 1, 1], [0, 1, 2]) is None
    assert statistics.point_biserial([0, 1, 1], [2, 2, 2]) is None
    assert statistics.point_biserial([1], [3]) is None
    assert statistics.point_biserial([], []) is None
    assert statistics.point_biserial([1, 0], [0, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        statistics.point_biserial([1, 0], [1])


def test_facility_is_the_mean_share_of_full_credit():
    # Item B (2 points): 2, 1.5, 1, 1, 0, 0 -> shares 1, .75, .5, .5, 0, 0 -> 2.75 / 6.
    assert statistics.facility([1, 0.75, 0.5, 0.5, 0, 0]) == pytest.approx(2.75 / 6)
    assert statistics.facility([]) is None


def test_suspect_reasons_in_words_and_only_with_enough_responses():
    too_easy = statistics.suspect_reasons(facility_value=0.97, discrimination=0.1, response_count=25)
    assert too_easy == ["facility 0.97 above 0.95: almost everyone gets it right"]
    too_hard = statistics.suspect_reasons(facility_value=0.12, discrimination=0.3, response_count=25)
    assert too_hard == [
        "facility 0.12 below 0.20: almost everyone gets it wrong (check the key and the wording)"
    ]
    backwards = statistics.suspect_reasons(facility_value=0.5, discrimination=-0.25, response_count=25)
    assert backwards == [
        "discrimination -0.25 below 0: students who do well on the rest of the attempt tend to miss it "
        "(check the key)"
    ]
    assert statistics.suspect_reasons(facility_value=0.5, discrimination=0.3, response_count=25) == []
    assert statistics.suspect_reasons(facility_value=1.0, discrimination=-0.9, response_count=19) == []
    assert statistics.suspect_reasons(facility_value=0.2, discrimination=0.0, response_count=20) == []
    assert statistics.suspect_reasons(facility_value=0.95, discrimination=None, response_count=20) == []


# --- the service ----------------------------------------------------------------------------------


def completed_attempts(items: list[Item], rows: list[tuple[str, ...]], *, status=Attempt.Status.COMPLETED):
    """One attempt per row (one student each would be slow; numbers differ instead), scores as given."""
    assessment = AssessmentFactory()
    student = StudentFactory()
    attempts = Attempt.objects.bulk_create(
        Attempt(
            assessment=assessment,
            student=student,
            number=number,
            seed=number,
            status=status,
            started_at=T0,
            submitted_at=T0,
            completed_at=T0 if status == Attempt.Status.COMPLETED else None,
        )
        for number in range(1, len(rows) + 1)
    )
    Response.objects.bulk_create(
        Response(
            attempt=attempt,
            item=item,
            answer=None,
            saved_at=T0,
            score=Decimal(score) if score is not None else None,
            needs_grading=score is None,
            scored_key_version=1,
        )
        for attempt, row in zip(attempts, rows, strict=True)
        for item, score in zip(items, row, strict=True)
    )
    return attempts


@pytest.mark.django_db
def test_refresh_stores_exact_facility_and_discrimination():
    items = [ItemFactory(max_points=Decimal(1)), ItemFactory(max_points=Decimal(2)), ItemFactory()]
    completed_attempts(items, MATRIX)
    # Neither an attempt awaiting its rubric grade nor an ungraded response counts.
    completed_attempts(items, [("1", "2", None)], status=Attempt.Status.SUBMITTED)
    ungraded = ItemFactory(type=Item.Type.EXTENDED_TEXT, max_points=Decimal(4))

    written = item_statistics.item_statistics_refresh(now=T0)

    assert written == 4
    stats = {row.item_id: row for row in ItemStatistics.objects.all()}
    a, b, c = (stats[item.pk] for item in items)
    assert (a.response_count, a.facility, a.discrimination) == (6, Decimal("0.6667"), Decimal("0.3162"))
    assert (b.response_count, b.facility, b.discrimination) == (6, Decimal("0.4583"), Decimal("0.3593"))
    assert (c.response_count, c.facility, c.discrimination) == (6, Decimal("0.5000"), Decimal("0.0819"))
    assert not a.is_suspect and a.suspect_reasons == []  # 6 responses: too few to judge
    assert a.computed_at == T0
    empty = stats[ungraded.pk]
    assert (empty.response_count, empty.facility, empty.discrimination) == (0, None, None)


@pytest.mark.django_db
def test_refresh_is_an_idempotent_upsert():
    items = [ItemFactory(), ItemFactory()]
    completed_attempts(items, [("1", "0"), ("0", "1"), ("1", "1")])
    item_statistics.item_statistics_refresh(now=T0)
    first = list(ItemStatistics.objects.order_by("item").values())

    later = T0 + datetime.timedelta(days=1)
    item_statistics.item_statistics_refresh(now=later)
    second = list(ItemStatistics.objects.order_by("item").values())
    assert len(second) == 2
    assert [{**row, "computed_at": None} for row in first] == [{**row, "computed_at": None} for row in second]
    assert {row["computed_at"] for row in second} == {later}


@pytest.mark.django_db
def test_refresh_marks_suspect_items_with_reasons():
    easy, backwards, hard, anchor, *others = (ItemFactory() for _ in range(6))
    rows = []
    for index in range(24):
        strong = "1" if index % 2 == 0 else "0"
        weak = "0" if index % 2 == 0 else "1"
        # easy: everyone right; backwards: only the weak students right; hard: two in 24 right;
        # the anchors: the strong students right.
        rows.append(("1", weak, "1" if index in (0, 1) else "0", strong, strong, strong))
    completed_attempts([easy, backwards, hard, anchor, *others], rows)

    item_statistics.item_statistics_refresh(now=T0)

    stats = {row.item_id: row for row in ItemStatistics.objects.all()}
    assert stats[easy.pk].is_suspect
    assert stats[easy.pk].facility == Decimal("1.0000")
    assert stats[easy.pk].discrimination is None
    assert stats[easy.pk].suspect_reasons == ["facility 1.00 above 0.95: almost everyone gets it right"]
    assert stats[backwards.pk].is_suspect
    assert stats[backwards.pk].discrimination < 0
    assert stats[backwards.pk].suspect_reasons[0].startswith("discrimination -")
    assert stats[hard.pk].is_suspect
    assert stats[hard.pk].suspect_reasons == [
        "facility 0.08 below 0.20: almost everyone gets it wrong (check the key and the wording)"
    ]
    assert not stats[anchor.pk].is_suspect
    assert stats[anchor.pk].discrimination > 0
    assert stats[anchor.pk].facility == Decimal("0.5000")
    assert set(ItemStatistics.objects.filter(is_suspect=True).values_list("item_id", flat=True)) == {
        easy.pk,
        backwards.pk,
        hard.pk,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("item_count", "attempt_count"), [(3, 4), (12, 40)])
def test_refresh_query_count_is_flat(django_assert_num_queries, item_count, attempt_count):
    items = [ItemFactory() for _ in range(item_count)]
    completed_attempts(
        items, [tuple(str((a + i) % 2) for i in range(item_count)) for a in range(attempt_count)]
    )
    with django_assert_num_queries(4):  # items, scored responses, attempt totals, one upsert
        item_statistics.item_statistics_refresh(now=T0)
    assert ItemStatistics.objects.count() == item_count


@pytest.mark.django_db
def test_refresh_works_in_batches():
    items = [ItemFactory() for _ in range(5)]
    completed_attempts(items, [("1", "0", "1", "0", "1"), ("0", "1", "1", "0", "0")])
    assert item_statistics.item_statistics_refresh(now=T0, batch_size=2) == 5
    assert item_statistics.item_statistics_refresh(item_ids=[items[0].pk], now=T0) == 1
    assert ItemStatistics.objects.get(item=items[2]).facility == Decimal("1.0000")


# --- the task and its schedule --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_nightly_task_runs_through_celery():
    items = [ItemFactory(), ItemFactory()]
    completed_attempts(items, [("1", "1"), ("0", "0"), ("1", "0")])

    result = tasks_statistics.item_statistics_refresh.delay()

    assert result.get() == 2
    assert ItemStatistics.objects.get(item=items[0]).facility == Decimal("0.6667")
    assert "assessments.item_statistics_refresh" in celery_app.tasks


def test_the_task_is_scheduled_nightly_on_the_nightly_queue():
    entry = celery_app.conf.beat_schedule["item-statistics-nightly"]
    assert entry["task"] == "assessments.item_statistics_refresh"
    assert entry["options"] == {"queue": "nightly"}
    assert entry["schedule"].hour == {3}
    assert celery_app.conf.task_routes["assessments.item_statistics_refresh"] == {"queue": "nightly"}


@pytest.mark.django_db
def test_attempts_from_the_factory_do_not_count_until_completed():
    item = ItemFactory()
    attempt = AttemptFactory()
    Response.objects.create(attempt=attempt, item=item, saved_at=T0, score=Decimal(1), scored_key_version=1)
    item_statistics.item_statistics_refresh(now=T0)
    assert ItemStatistics.objects.get(item=item).response_count == 0
