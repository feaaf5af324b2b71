"""The pieces the fault scenarios rely on, one at a time: the 503 answer of the database-unavailable
middleware, a publish that fails without failing the commit, and the reconciler and its command."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import OperationalError, transaction
from django.test import Client, override_settings
from kombu.exceptions import OperationalError as BrokerError

from assessments import services as assessment_services
from assessments.models import Attempt
from progress import receivers, reconcile, tasks
from progress.models import CompetencyMastery, Evidence
from tests.faults.test_broker_down import room

pytestmark = [pytest.mark.fault, pytest.mark.django_db]


@override_settings(ROOT_URLCONF="tests.faults.urls_db_down")
def test_a_page_whose_database_is_down_answers_503_with_retry_after(caplog):
    answer = Client().get("/db-down/")
    assert (answer.status_code, answer["Retry-After"], answer["Content-Type"]) == (
        503,
        "5",
        "text/plain; charset=utf-8",
    )
    assert answer.content.decode().startswith("The service is briefly unavailable")
    assert "database unavailable: GET /db-down/ answered 503 (OperationalError" in caplog.text


@override_settings(ROOT_URLCONF="tests.faults.urls_db_down")
def test_an_api_view_whose_database_is_down_answers_503_json():
    answer = Client().get("/api/v1/db-down/")
    assert (answer.status_code, answer["Retry-After"]) == (503, "5")
    assert answer.json() == {
        "detail": "The service is briefly unavailable (the database cannot be reached). Please retry shortly."
    }


def test_a_database_error_inside_a_later_middleware_answers_503(monkeypatch):
    """The session middleware reads the session before the view: Django turns its error into a 500
    before it reaches our middleware, which replaces it."""

    def refuse(self):
        raise OperationalError("the database system is starting up")

    monkeypatch.setattr(SessionStore, "load", refuse)
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "x" * 32
    answer = client.get("/")
    assert (answer.status_code, answer["Retry-After"]) == (503, "5")


def test_other_errors_are_left_alone():
    with override_settings(ROOT_URLCONF="tests.faults.urls_db_down"):
        assert Client().get("/no-such-page/").status_code == 404


def test_a_publish_that_fails_is_logged_and_never_fails_the_commit(
    monkeypatch, caplog, django_capture_on_commit_callbacks
):
    calls = []

    def broker_down(**kwargs):
        calls.append(kwargs["student_id"])
        raise BrokerError("Error 111 connecting to 127.0.0.1:6391. Connection refused.")

    monkeypatch.setattr(tasks.student_recompute, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        receivers.recompute_after_commit(student_ids=[3, 1, 2])
        receivers.recompute_after_commit(student_ids=[2])
    assert len(callbacks) == 1  # merged per transaction
    assert calls == [1]  # the first failure stops the rest: the broker is down
    assert caplog.messages == [
        "broker unavailable: recompute of 3 student(s) [1, 2, 3] not queued (OperationalError: Error 111 "
        "connecting to 127.0.0.1:6391. Connection refused.); the reconciler will catch them up"
    ]
    assert receivers.recomputes_publish([7]) == [7]


def test_the_reconciler_finds_exactly_the_students_behind_and_catches_them_up(capsys):
    world = room("behind")
    for index, attempt in enumerate(world.attempts[:3]):
        for item in world.items:
            assessment_services.response_save(attempt=attempt, item=item, answer="5" if index else "4")
        assessment_services.attempt_submit(attempt=attempt)  # in a test transaction: no recompute ran
    behind = sorted(student.pk for student in world.students[:3])
    assert Attempt.objects.filter(status="completed").count() == 3
    assert reconcile.students_behind() == behind
    assert reconcile.students_behind(limit=2) == behind[:2]

    call_command("reconcile", "--dry-run")
    assert capsys.readouterr().out == f"3 student(s) behind: {', '.join(map(str, behind))}\n"
    assert Evidence.objects.count() == 0

    call_command("reconcile", "--limit", "2")
    assert (
        capsys.readouterr().out == f"2 student(s) caught up, 2 mastery change(s): {behind[0]}, {behind[1]}\n"
    )
    assert reconcile.students_behind() == behind[2:]
    call_command("reconcile")
    assert capsys.readouterr().out.startswith(f"1 student(s) caught up, 1 mastery change(s): {behind[2]}")
    assert reconcile.students_behind() == []
    assert sorted(Evidence.objects.values_list("score", flat=True)) == [
        Decimal("0.00"),
        Decimal("4.00"),
        Decimal("4.00"),
    ]

    # Evidence written but the mastery not recomputed from it (a worker killed between the two):
    # the stored count tells.
    student = world.students[1]
    CompetencyMastery.objects.filter(student=student).update(evidence_count=0)
    assert reconcile.students_behind() == [student.pk]
    assert reconcile.progress_reconcile.apply().get() == {
        "students": 1,
        "masteries_changed": 0,
        "rescore_jobs_requeued": 0,
    }
    assert reconcile.students_behind() == []  # the count rewritten, the state the same
    assert list(
        CompetencyMastery.objects.filter(student=student).values_list("evidence_count", flat=True)
    ) == [1]


def test_the_reconciler_is_scheduled_every_five_minutes():
    from mastery.celery import app

    entry = app.conf.beat_schedule["progress-reconcile"]
    assert (entry["task"], str(entry["schedule"]._orig_minute), entry["options"]) == (
        "progress.reconcile.progress_reconcile",
        "*/5",
        {"queue": "nightly"},
    )
    assert app.conf.task_publish_retry_policy["max_retries"] == 2
