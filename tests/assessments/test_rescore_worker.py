"""Rescoring on a REAL Celery worker (a subprocess on Redis) against the PostgreSQL test database.

Skipped unless REDIS_URL is set and the database is PostgreSQL. The worker consumes a dedicated Redis
database (``WORKER_TEST_REDIS_DB``, default 15; see tests/worker_support.py) and is stopped when each
test ends, whatever happens.

Why case B re-enqueues the job itself: with ``acks_late`` and ``reject_on_worker_lost`` a task whose
worker is killed is not acknowledged, but Redis hands an unacknowledged message to another worker only
after the transport's visibility timeout (an hour here, CELERY_BROKER_TRANSPORT_OPTIONS), so the test
sends the job again, as an operator would (``RescoreJob`` admin / API show it stuck in ``running``).
Had the old message come back as well, the two runs would take turns on the job row's lock and the
second would find nothing left to do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone

from assessments import rescoring, services, tasks
from assessments.models import (
    Attempt,
    AttemptCompetencyScore,
    AttemptItem,
    Item,
    ItemChoice,
    RescoreJob,
    Response,
    ResponseScoreChange,
)
from roster.models import User
from tests.factories import (
    AssessmentFactory,
    CompetencyFactory,
    DistrictFactory,
    FrameworkFactory,
    ItemFactory,
    StaffFactory,
)
from tests.worker_support import RealWorker, broker_for_tests, worker_broker_url, worker_tests_skip_reason

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STUDENTS = 100
D = Decimal


@pytest.fixture
def real_worker():
    """Start workers with ``start()``; every one started is stopped at teardown."""
    reason = worker_tests_skip_reason()
    if reason:
        pytest.skip(reason)
    broker_url = worker_broker_url()
    started: list[RealWorker] = []

    def start() -> RealWorker:
        worker = RealWorker(broker_url=broker_url)
        started.append(worker)
        return worker.start()

    with broker_for_tests(broker_url):
        try:
            yield start
        finally:
            for worker in started:
                worker.stop()


@dataclass
class World:
    """One single-choice item (2 points; a is right, b, c wrong) answered ``count`` times, each on a
    form with a second, numeric item, by 100 students."""

    item: Item
    choice_a: ItemChoice
    choice_b: ItemChoice
    choice_c: ItemChoice
    attempt_ids: list[int]


def build_world(count: int, tag: str) -> World:
    district = DistrictFactory()
    competency = CompetencyFactory(framework=FrameworkFactory(district=district))
    item = ItemFactory(
        type=Item.Type.SINGLE_CHOICE, district=district, max_points=D(2), aligned_to=competency
    )
    choice_a = ItemChoice.objects.create(item=item, text="a", is_correct=True, position=1)
    choice_b = ItemChoice.objects.create(item=item, text="b", position=2)
    choice_c = ItemChoice.objects.create(item=item, text="c", position=3)
    other = ItemFactory(type=Item.Type.NUMERIC, answer_value=D(5), aligned_to=competency)
    assessment = AssessmentFactory(competency=competency, district=district)
    students = User.objects.bulk_create(
        User(username=f"{tag}-student-{index}", role=User.Role.STUDENT, district=district, password="!")
        for index in range(STUDENTS)
    )
    now = timezone.now()
    attempts = Attempt.objects.bulk_create(
        Attempt(
            assessment=assessment,
            student=students[index % STUDENTS],
            number=index // STUDENTS + 1,
            seed=index,
            status=Attempt.Status.COMPLETED,
            started_at=now,
            submitted_at=now,
            completed_at=now,
        )
        for index in range(count)
    )
    AttemptItem.objects.bulk_create(
        [
            AttemptItem(attempt=attempt, item=form_item, position=position, key_version_seen=1)
            for attempt in attempts
            for position, form_item in ((1, item), (2, other))
        ],
        batch_size=5_000,
    )
    answers = [choice_a.pk, choice_b.pk, choice_c.pk, None]
    rows = []
    for index, attempt in enumerate(attempts):
        answer = answers[index % 4]
        rows.append(
            Response(
                attempt=attempt,
                item=item,
                answer=answer,
                saved_at=now,
                score=D("2.00") if answer == choice_a.pk else D("0.00"),
                scored_key_version=1,
            )
        )
        rows.append(
            Response(
                attempt=attempt,
                item=other,
                answer=5 if index % 3 else 4,
                saved_at=now,
                score=D("1.00") if index % 3 else D("0.00"),
                scored_key_version=1,
            )
        )
    Response.objects.bulk_create(rows, batch_size=5_000)
    attempt_ids = [attempt.pk for attempt in attempts]
    rescoring.attempts_recompute(attempt_ids=attempt_ids)  # totals as a submit computes them
    return World(item, choice_a, choice_b, choice_c, attempt_ids)


def key_change_b_is_right(world: World, *, enqueue: bool) -> RescoreJob:
    """Correct the key (b, not a, is right) as the Item admin does."""
    item = Item.objects.prefetch_related("choices", "rubric_levels", "alignments").get(pk=world.item.pk)
    before = rescoring.item_key_snapshot(item)
    ItemChoice.objects.filter(pk=world.choice_a.pk).update(is_correct=False)
    ItemChoice.objects.filter(pk=world.choice_b.pk).update(is_correct=True)
    item = Item.objects.prefetch_related("choices", "rubric_levels", "alignments").get(pk=world.item.pk)
    after = rescoring.item_key_snapshot(item)
    job = rescoring.item_key_change_record(
        item=item, before=before, after=after, reason="b is right", enqueue=enqueue
    )
    assert job is not None
    return job


def wait_for(job_id: int, condition, *, timeout: float = 180.0, interval: float = 0.1) -> RescoreJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = RescoreJob.objects.get(pk=job_id)
        if condition(job):
            return job
        if job.status == RescoreJob.Status.FAILED:
            raise AssertionError(f"job failed: {job.error}")
        time.sleep(interval)
    raise AssertionError(f"timed out; job is {RescoreJob.objects.filter(pk=job_id).values().first()}")


def world_state(world: World) -> dict:
    """The world's results, keyed by position rather than by id, to compare two copies."""
    attempt_rank = {attempt_id: rank for rank, attempt_id in enumerate(world.attempt_ids)}
    responses = list(
        Response.objects.filter(item=world.item)
        .order_by("attempt_id")
        .values_list("pk", "attempt_id", "score", "scored_key_version")
    )
    response_rank = {pk: attempt_rank[attempt_id] for pk, attempt_id, _, _ in responses}
    return {
        "responses": [
            (attempt_rank[attempt_id], score, version) for _, attempt_id, score, version in responses
        ],
        "changes": sorted(
            (response_rank[response_id], old, new, old_version, new_version)
            for response_id, old, new, old_version, new_version in ResponseScoreChange.objects.filter(
                response__item=world.item
            ).values_list("response_id", "old_score", "new_score", "old_key_version", "new_key_version")
        ),
        "attempts": sorted(
            (attempt_rank[pk], score, max_score, is_passed)
            for pk, score, max_score, is_passed in Attempt.objects.filter(
                pk__in=world.attempt_ids
            ).values_list("pk", "score", "max_score", "is_passed")
        ),
        "competency_scores": sorted(
            (attempt_rank[attempt_id], earned, possible, score, level, is_met)
            for attempt_id, earned, possible, score, level, is_met in AttemptCompetencyScore.objects.filter(
                attempt_id__in=world.attempt_ids
            ).values_list("attempt_id", "earned", "possible", "score", "level_points", "is_met")
        ),
    }


def test_a_key_change_on_an_item_with_10000_responses_is_rescored_by_the_worker(real_worker):
    world = build_world(10_000, "a")
    real_worker()
    staff = StaffFactory(district=world.item.district)

    # The API's path: a key change commits, then the job goes to Redis and the worker runs it.
    item = services.item_update(
        item=world.item,
        data={
            "choices": [
                {"id": world.choice_a.pk, "text": "a"},
                {"id": world.choice_b.pk, "text": "b", "correct": True},
                {"id": world.choice_c.pk, "text": "c"},
            ]
        },
        user=staff,
        reason="b is right",
    )
    job = wait_for(item.rescore_job.pk, lambda job: job.status == RescoreJob.Status.COMPLETED)

    assert (job.total, job.done, job.changed, job.requested_by_id) == (10_000, 10_000, 5_000, staff.pk)
    responses = Response.objects.filter(item=world.item)
    assert responses.filter(scored_key_version=2).count() == 10_000
    assert responses.filter(answer=world.choice_b.pk, score=D("2.00")).count() == 2_500
    assert responses.filter(score=D("2.00")).count() == 2_500
    assert responses.filter(answer=world.choice_a.pk, score=D("0.00")).count() == 2_500
    assert ResponseScoreChange.objects.filter(job=job).count() == 5_000
    assert set(
        ResponseScoreChange.objects.filter(job=job).values_list("old_score", "new_score", "new_key_version")
    ) == {(D("2.00"), D("0.00"), 2), (D("0.00"), D("2.00"), 2)}
    # attempt totals follow: the item's new score plus the numeric item's
    answered_b = Attempt.objects.filter(responses__item=world.item, responses__answer=world.choice_b.pk)
    assert set(answered_b.values_list("score", flat=True)) == {D("2.00"), D("3.00")}
    answered_a = Attempt.objects.filter(responses__item=world.item, responses__answer=world.choice_a.pk)
    assert set(answered_a.values_list("score", flat=True)) == {D("0.00"), D("1.00")}
    assert not AttemptCompetencyScore.objects.filter(
        attempt__in=answered_a, is_met=True
    ).exists()  # 1 of 3 points at most: no mastery


def test_a_worker_killed_mid_job_resumes_to_the_state_of_an_uninterrupted_run(real_worker):
    count, batch_size = 4_000, 50
    interrupted = build_world(count, "killed")
    reference = build_world(count, "reference")
    reference_job = key_change_b_is_right(reference, enqueue=False)
    rescoring.rescore_job_run(job_id=reference_job.pk, batch_size=batch_size)  # uninterrupted, in process

    job = key_change_b_is_right(interrupted, enqueue=False)
    worker = real_worker()
    tasks.rescore_job_run.delay(job.pk, batch_size=batch_size)
    wait_for(job.pk, lambda job: 0 < job.done < job.total, interval=0.005)
    worker.kill()

    stuck = RescoreJob.objects.get(pk=job.pk)
    assert stuck.status == RescoreJob.Status.RUNNING
    assert 0 < stuck.done < stuck.total
    # What the data says is done is exactly what the job says: no half batch survives the kill.
    assert Response.objects.filter(item=interrupted.item, scored_key_version=2).count() == stuck.done

    real_worker()
    tasks.rescore_job_run.delay(job.pk, batch_size=batch_size)
    finished = wait_for(job.pk, lambda job: job.status == RescoreJob.Status.COMPLETED)

    reference_job.refresh_from_db()
    assert (finished.total, finished.done, finished.changed) == (
        reference_job.total,
        reference_job.done,
        reference_job.changed,
    )
    assert (finished.total, finished.changed) == (count, count // 2)
    assert world_state(interrupted) == world_state(reference)
