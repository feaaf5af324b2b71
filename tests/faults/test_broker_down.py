"""Redis (the broker) down while students submit: every submission is committed and scored, the
request neither fails nor hangs, and the mastery recompute catches up when the broker returns, through
the reconciler, to exactly what a clean run computes.

The broker is a private Redis this test kills (``kill -9``: whatever it held is gone) and starts again
empty; the app is this process (the Django test client) publishing to it, and a real worker consumes it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from assessments.models import Attempt, AttemptItem, Item
from mastery.celery import app as celery_app
from progress import reconcile
from progress.models import CompetencyMastery, Evidence
from roster.models import User
from tests.factories import (
    AssessmentFactory,
    CompetencyFactory,
    DistrictFactory,
    FrameworkFactory,
    ItemFactory,
)
from tests.faults.support import task_succeeded, wait_until
from tests.worker_support import _reset_producer_connections

pytestmark = [pytest.mark.fault, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STUDENTS = 24
D = Decimal


@dataclass
class Room:
    students: list[User]
    attempts: list[Attempt]
    items: list[Item]


def room(tag: str) -> Room:
    """``STUDENTS`` students, each with an open attempt on one check of two numeric items (answer 5)."""
    district = DistrictFactory()
    competency = CompetencyFactory(framework=FrameworkFactory(district=district))
    items = [
        ItemFactory(type=Item.Type.NUMERIC, district=district, answer_value=D(5), aligned_to=competency)
        for _ in range(2)
    ]
    assessment = AssessmentFactory(competency=competency, district=district)
    students = User.objects.bulk_create(
        User(username=f"{tag}-{index}", role=User.Role.STUDENT, district=district, password="!")
        for index in range(STUDENTS)
    )
    now = timezone.now()
    attempts = Attempt.objects.bulk_create(
        Attempt(assessment=assessment, student=student, number=1, seed=index, started_at=now)
        for index, student in enumerate(students)
    )
    AttemptItem.objects.bulk_create(
        AttemptItem(attempt=attempt, item=item, position=position, key_version_seen=1)
        for attempt in attempts
        for position, item in enumerate(items, start=1)
    )
    return Room(students, attempts, items)


def submit(client: Client, world: Room, index: int) -> tuple[int, float]:
    """Student ``index`` answers (right, wrong or half right, by index) and submits through the API."""
    client.force_login(world.students[index])
    attempt = world.attempts[index]
    for position, item in enumerate(world.items):
        answer = "5" if (index + position) % 3 else "4"
        saved = client.put(
            f"/api/v1/attempts/{attempt.pk}/responses/{item.pk}/",
            {"answer": answer},
            content_type="application/json",
        )
        assert saved.status_code == 200, saved.content
    started = time.monotonic()
    submitted = client.post(f"/api/v1/attempts/{attempt.pk}/submit/")
    return submitted.status_code, time.monotonic() - started


def mastery_state(world: Room) -> list[tuple]:
    rank = {student.pk: index for index, student in enumerate(world.students)}
    return sorted(
        (rank[student_id], *rest)
        for student_id, *rest in CompetencyMastery.objects.filter(student__in=world.students).values_list(
            "student_id", "state", "score", "level_name", "evidence_count", "failed_checks", "explanation"
        )
    )


def evidence_state(world: Room) -> list[tuple]:
    rank = {student.pk: index for index, student in enumerate(world.students)}
    return sorted(
        (rank[student_id], score, is_correct)
        for student_id, score, is_correct in Evidence.objects.filter(student__in=world.students).values_list(
            "student_id", "score", "is_correct"
        )
    )


def test_submissions_while_the_broker_is_down_are_kept_and_caught_up_by_the_reconciler(
    private_redis, workers, caplog
):
    caplog.set_level(logging.WARNING, logger="progress.receivers")
    client = Client()
    reference, faulted = room("clean"), room("faulted")
    first = workers()

    # The clean run: every submit's recompute goes through the broker to the worker.
    for index in range(STUDENTS):
        assert submit(client, reference, index)[0] == 200
    wait_until(lambda: len(evidence_state(reference)) == STUDENTS, what="the clean run's recomputes")
    wait_until(lambda: reconcile.students_behind() == [], what="the clean run to settle")
    expected_mastery, expected_evidence = mastery_state(reference), evidence_state(reference)

    # The faulted run: half submit with the broker up, then it dies and the other half submit.
    half = STUDENTS // 2
    for index in range(half):
        assert submit(client, faulted, index)[0] == 200
    wait_until(lambda: len(evidence_state(faulted)) == half, what="the first half's recomputes")
    private_redis.stop()
    durations = []
    for index in range(half, STUDENTS):
        status, seconds = submit(client, faulted, index)
        assert status == 200  # the submit never fails because of the broker
        durations.append(seconds)

    # Committed and scored, every one; their recomputes were not queued, and each loss was logged.
    assert (
        Attempt.objects.filter(pk__in=[a.pk for a in faulted.attempts], status="completed").count()
        == STUDENTS
    )
    assert Attempt.objects.filter(pk__in=[a.pk for a in faulted.attempts], score__isnull=True).count() == 0
    lost = [student.pk for student in faulted.students[half:]]
    assert reconcile.students_behind() == sorted(lost)
    assert len(evidence_state(faulted)) == half
    warnings = [record for record in caplog.records if record.getMessage().startswith("broker unavailable")]
    assert len(warnings) == STUDENTS - half

    # The broker comes back empty (what it held died with it); so does the worker. Beat's next tick
    # sends the reconciler.
    first.stop()  # it would reconnect and might take the message: the new worker must show it ran
    private_redis.start()
    _reset_producer_connections()
    worker = workers()
    assert celery_app.conf.beat_schedule["progress-reconcile"]["task"] == reconcile.progress_reconcile.name
    message = reconcile.progress_reconcile.delay()
    wait_until(lambda: task_succeeded(worker, message.id), what="the reconciler")

    print(
        f"\nbroker down: {STUDENTS - half} submits answered 200 in {max(durations):.2f}s at most; "
        f"{len(lost)} recomputes lost and caught up by the reconciler"
    )
    assert reconcile.students_behind() == []
    assert evidence_state(faulted) == expected_evidence  # nothing lost
    assert mastery_state(faulted) == expected_mastery  # equal to the clean run
    # A hang would show here: failing fast means well under the 2 s connect timeout per publish.
    assert max(durations) < 15
