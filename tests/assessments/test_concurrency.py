"""Two submits of one attempt at the same moment score it exactly once (row lock on PostgreSQL)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections

from assessments import services, signals
from assessments.models import Attempt, AttemptCompetencyScore, Response
from tests.assessments.conftest import assessment_with
from tests.factories import CompetencyFactory, ItemFactory, StudentFactory


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_score_once_and_agree():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks (SELECT ... FOR UPDATE); run with DATABASE_URL=postgres://...")
    competency = CompetencyFactory()
    items = [ItemFactory(aligned_to=competency, accepted_answers=["4"]) for _ in range(3)]
    attempt = services.attempt_start(assessment=assessment_with(items, competency), student=StudentFactory())
    services.response_save(attempt=attempt, item=items[0], answer="4")
    services.response_save(attempt=attempt, item=items[1], answer="5")

    announcements: list[int] = []

    def slow_receiver(sender, attempt_id, **kwargs):
        announcements.append(attempt_id)
        time.sleep(0.3)  # hold the lock so that the other submit really waits on it

    signals.attempt_scored.connect(slow_receiver, weak=False)
    barrier = threading.Barrier(2)
    results: list[tuple] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            barrier.wait(timeout=10)
            done = services.attempt_submit(attempt=Attempt(pk=attempt.pk))
            results.append((done.status, done.score, done.submitted_at))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        signals.attempt_scored.disconnect(slow_receiver)

    assert errors == []
    assert announcements == [attempt.pk]  # scored exactly once
    assert len(results) == 2
    assert results[0] == results[1]
    assert results[0][:2] == ("completed", Decimal("1.00"))
    assert Response.objects.filter(attempt=attempt).count() == 3
    assert AttemptCompetencyScore.objects.filter(attempt=attempt).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_open_one_attempt():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises whole transactions; the race needs PostgreSQL")
    competency = CompetencyFactory()
    items = [ItemFactory(aligned_to=competency) for _ in range(4)]
    assessment = assessment_with(items, competency)
    student = StudentFactory()
    barrier = threading.Barrier(2)
    started: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait(timeout=10)
            started.append(services.attempt_start(assessment=assessment, student=student).pk)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert Attempt.objects.count() == 1
    assert started == [Attempt.objects.get().pk] * 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_autosave_racing_a_submit_is_refused_never_stored_unscored(monkeypatch):
    """The API's autosave reads the attempt open, then a submit locks and scores it before the
    autosave writes: the write waits for the submit's lock, finds the attempt submitted and stores
    nothing, so the answer is refused (409) rather than kept beside a score that ignores it."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks; run with DATABASE_URL=postgres://...")
    competency = CompetencyFactory()
    items = [ItemFactory(aligned_to=competency, accepted_answers=["4"]) for _ in range(2)]
    student = StudentFactory()
    attempt = services.attempt_start(assessment=assessment_with(items, competency), student=student)
    services.response_save(attempt=attempt, item=items[0], answer="4")

    autosave_has_read = threading.Event()
    submit_holds_lock = threading.Event()
    clean = services.answer_clean

    def clean_then_wait(**kwargs):  # runs between the autosave's read and its write
        autosave_has_read.set()
        assert submit_holds_lock.wait(timeout=10)
        return clean(**kwargs)

    def slow_receiver(sender, **kwargs):  # inside the submit's transaction, the attempt locked
        submit_holds_lock.set()
        time.sleep(0.3)  # the autosave's write is sent meanwhile and waits on the lock

    monkeypatch.setattr(services, "answer_clean", clean_then_wait)
    signals.attempt_scored.connect(slow_receiver, weak=False)
    outcome: list[object] = []
    errors: list[BaseException] = []

    def save() -> None:
        try:
            services.response_autosave(
                student=student, attempt_id=attempt.pk, item_id=items[1].pk, answer="4"
            )
            outcome.append("saved")
        except services.AttemptClosed as closed:
            outcome.append(closed.reason)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    def submit() -> None:
        try:
            assert autosave_has_read.wait(timeout=10)
            services.attempt_submit(attempt=Attempt(pk=attempt.pk))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=save), threading.Thread(target=submit)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        signals.attempt_scored.disconnect(slow_receiver)

    assert errors == []
    assert outcome == ["This attempt has been submitted; it takes no more answers."]
    attempt.refresh_from_db()
    assert (attempt.status, attempt.score) == ("completed", Decimal("1.00"))
    assert list(
        Response.objects.filter(attempt=attempt).order_by("item_id").values_list("answer", "score")
    ) == [
        ("4", Decimal("1.00")),
        (None, Decimal("0.00")),  # scored unanswered; the late answer was not stored
    ]
