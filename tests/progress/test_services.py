"""Evidence from attempts, observations and overrides; the receiver and its merging; the BKT fit task."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest
from django.db import transaction

from assessments import services as assessment_services
from assessments import signals
from assessments.models import Assessment, Attempt, AttemptCompetencyScore, AttemptItem
from competencies.models import CalculationMethod, Competency, Framework
from progress import grid, services, tasks
from progress.bkt import BKTParams, p_known_after, simulate
from progress.models import BKTParameters, CompetencyMastery, Evidence
from roster.models import User
from tests.factories import (
    AssessmentFactory,
    BlueprintRuleFactory,
    CompetencyFactory,
    DistrictFactory,
    EvidenceFactory,
    FrameworkFactory,
    ItemFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 10, 5, 9, 0, tzinfo=datetime.UTC)


def minutes(n: int) -> datetime.timedelta:
    return datetime.timedelta(minutes=n)


# --- helpers shared by the progress tests ---------------------------------------------------------


@dataclass
class World:
    framework: Framework
    student: User
    first: Competency  # code 6.RP.A.1
    second: Competency  # code 6.RP.A.2
    first_check: Assessment
    second_check: Assessment


def check_for(competency: Competency, *, items: int = 4, **fields) -> Assessment:
    """An active mastery check drawing ``items`` short-text items ("4" is right) on the competency."""
    bank = [ItemFactory(aligned_to=competency) for _ in range(items)]
    assessment = AssessmentFactory(competency=competency, district=competency.framework.district, **fields)
    BlueprintRuleFactory(assessment=assessment, competency=competency, items=bank, draw_count=items)
    return assessment


def make_world() -> World:
    district = DistrictFactory()
    framework = FrameworkFactory(district=district)
    first = CompetencyFactory(framework=framework, code="6.RP.A.1", statement="Understand ratios", position=1)
    second = CompetencyFactory(
        framework=framework, code="6.RP.A.2", statement="Understand unit rates", position=2
    )
    return World(
        framework=framework,
        student=StudentFactory(district=district),
        first=first,
        second=second,
        first_check=check_for(first),
        second_check=check_for(second),
    )


def take(assessment: Assessment, student: User, *, right: int, now: datetime.datetime) -> Attempt:
    """Start, answer (``right`` answers correct, the rest wrong) and submit five minutes later."""
    attempt = assessment_services.attempt_start(assessment=assessment, student=student, now=now)
    for index, attempt_item in enumerate(AttemptItem.objects.filter(attempt=attempt).order_by("position")):
        assessment_services.response_save(
            attempt=attempt, item=attempt_item.item, answer="4" if index < right else "5", now=now
        )
    return assessment_services.attempt_submit(attempt=attempt, now=now + minutes(5))


# --- evidence -------------------------------------------------------------------------------------


def test_evidence_from_a_completed_attempt_is_dated_by_submit_and_recorded_once():
    world = make_world()
    attempt = take(world.first_check, world.student, right=3, now=T0)

    written = services.evidence_record_for_attempt(attempt_id=attempt.pk)

    assert len(written) == 1
    evidence = Evidence.objects.get()
    assert (evidence.student, evidence.competency) == (world.student, world.first)
    assert (evidence.source, evidence.source_id) == (Evidence.Source.ATTEMPT, attempt.pk)
    assert evidence.score == Decimal("3.00")
    assert evidence.is_correct is True
    assert evidence.is_summative is True
    assert evidence.observed_at == T0 + minutes(5)

    assert services.evidence_record_for_attempt(attempt_id=attempt.pk) == []
    assert Evidence.objects.count() == 1
    assert evidence.history.count() == 1


def test_practice_evidence_is_formative():
    world = make_world()
    practice = check_for(world.first, kind=Assessment.Kind.PRACTICE)
    attempt = take(practice, world.student, right=2, now=T0)
    services.evidence_record_for_attempt(attempt_id=attempt.pk)
    evidence = Evidence.objects.get()
    assert (evidence.score, evidence.is_correct, evidence.is_summative) == (Decimal("2.00"), False, False)


def test_a_rescore_replaces_the_score_in_place_and_history_keeps_the_old_one():
    world = make_world()
    attempt = take(world.first_check, world.student, right=3, now=T0)
    services.evidence_record_for_attempt(attempt_id=attempt.pk)
    original = Evidence.objects.get()

    AttemptCompetencyScore.objects.filter(attempt=attempt).update(score=Decimal("2.00"), is_met=False)
    services.evidence_record_for_attempt(attempt_id=attempt.pk)

    rescored = Evidence.objects.get()
    assert rescored.pk == original.pk
    assert (rescored.score, rescored.is_correct) == (Decimal("2.00"), False)
    assert rescored.observed_at == T0 + minutes(5)
    assert [row.score for row in rescored.history.order_by("history_date", "history_id")] == [
        Decimal("3.00"),
        Decimal("2.00"),
    ]


def test_an_attempt_not_completed_gives_no_evidence():
    world = make_world()
    attempt = assessment_services.attempt_start(assessment=world.first_check, student=world.student, now=T0)
    assert services.evidence_record_for_attempt(attempt_id=attempt.pk) == []
    assert services.evidence_record_for_attempt(attempt_id=10**9) == []


def test_reconcile_records_attempts_whose_event_was_lost():
    world = make_world()
    first = take(world.first_check, world.student, right=3, now=T0)
    second = take(world.second_check, world.student, right=4, now=T0 + minutes(10))

    written = services.evidence_reconcile_for_student(student_id=world.student.pk)

    assert sorted((row.source_id, row.score) for row in written) == [
        (first.pk, Decimal("3.00")),
        (second.pk, Decimal("4.00")),
    ]
    assert services.evidence_reconcile_for_student(student_id=world.student.pk) == []


def test_observation_counts_and_schedules_a_recompute(django_capture_on_commit_callbacks):
    world = make_world()
    teacher = TeacherFactory(district=world.student.district)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        evidence = services.evidence_add_observation(
            student=world.student,
            competency=world.first,
            score="3.5",
            author=teacher,
            note="Explained ratios at the board",
            observed_at=T0,
        )
    assert len(callbacks) == 1
    assert (evidence.source, evidence.is_correct, evidence.author) == (
        Evidence.Source.OBSERVATION,
        True,
        teacher,
    )
    mastery = CompetencyMastery.objects.get(student=world.student, competency=world.first)
    assert mastery.state == CompetencyMastery.State.MASTERED
    assert mastery.explanation == "weighted average: only one score, 3.5 (5 Oct) = 3.5 -> Mastery"


def test_teacher_override_wins_and_is_audited():
    world = make_world()
    teacher = TeacherFactory(district=world.student.district)
    EvidenceFactory(student=world.student, competency=world.first, score=Decimal(1), observed_at=T0)
    services.mastery_recompute(student_id=world.student.pk, now=T0)

    mastery = services.mastery_override(
        student=world.student,
        competency=world.first,
        state="mastered",
        author=teacher,
        note="Showed mastery in a conference",
        now=T0 + minutes(60),
    )

    assert mastery.state == CompetencyMastery.State.MASTERED
    assert mastery.is_overridden is True
    assert mastery.mastered_at == T0 + minutes(60)
    assert mastery.score == Decimal("1.00")  # the calculation is still shown
    assert mastery.explanation.startswith("Teacher override: mastered. Calculated: weighted average")
    override = Evidence.objects.get(source=Evidence.Source.OVERRIDE)
    assert (override.author, override.note) == (teacher, "mastered: Showed mastery in a conference")
    reasons = list(mastery.history.values_list("history_change_reason", flat=True))
    assert "Teacher override (mastered): Showed mastery in a conference" in reasons
    # Unlocking the dependent competency makes it ready without its prerequisite... it already is
    # (the prerequisite is mastered by override).
    # A blank row is not stored (``progress.grid``): its state is derived.
    assert not CompetencyMastery.objects.filter(student=world.student, competency=world.second).exists()
    states = grid.student_states(student_id=world.student.pk, competency_ids=[world.second.pk])
    assert states == {world.second.pk: CompetencyMastery.State.READY}


def test_override_needs_a_note():
    world = make_world()
    with pytest.raises(Exception, match="note"):
        services.mastery_override(
            student=world.student, competency=world.first, state="mastered", author=TeacherFactory(), note=" "
        )


# --- receiver and merging -------------------------------------------------------------------------


@pytest.fixture
def queued(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(tasks.student_recompute, "delay", lambda student_id: calls.append(student_id))
    return calls


def test_a_submit_in_a_transaction_schedules_one_recompute_after_commit(
    django_capture_on_commit_callbacks, queued
):
    world = make_world()
    attempt = assessment_services.attempt_start(assessment=world.first_check, student=world.student, now=T0)
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        assessment_services.attempt_submit(attempt=attempt, now=T0 + minutes(5))
        assert queued == []  # nothing before commit
    assert len(callbacks) == 1
    callbacks[0]()
    assert queued == [world.student.pk]


def test_a_burst_of_events_in_one_transaction_makes_one_job_per_student(
    django_capture_on_commit_callbacks, queued
):
    student, other = StudentFactory(), StudentFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        for attempt_id in (1, 2, 3):
            signals.attempt_scored.send(sender=Attempt, attempt_id=attempt_id, student_id=student.pk)
        signals.attempt_scored.send(sender=Attempt, attempt_id=4, student_id=other.pk)
    assert len(callbacks) == 1
    assert queued == sorted([student.pk, other.pk])


def test_a_rolled_back_transaction_schedules_nothing_and_the_next_one_still_does(
    django_capture_on_commit_callbacks, queued
):
    student = StudentFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.recompute_schedule(student_ids=[student.pk])
            raise RuntimeError
        with transaction.atomic():
            services.recompute_schedule(student_ids=[student.pk])
    assert len(callbacks) == 1
    assert queued == [student.pk]


def test_across_transactions_a_queued_recompute_is_not_queued_twice(
    django_capture_on_commit_callbacks, queued, monkeypatch
):
    monkeypatch.setattr(services, "_recompute_dedupe_enabled", lambda: True)
    student = StudentFactory()
    services.recompute_started(student_id=student.pk)  # clean marker
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            services.recompute_schedule(student_ids=[student.pk])
    assert queued == [student.pk]
    services.recompute_started(student_id=student.pk)  # the task began: the next commit queues again
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.recompute_schedule(student_ids=[student.pk])
    assert queued == [student.pk, student.pk]


def test_the_task_records_evidence_and_recomputes(django_capture_on_commit_callbacks):
    world = make_world()
    with django_capture_on_commit_callbacks(execute=True):
        take(world.first_check, world.student, right=4, now=T0)
    first = CompetencyMastery.objects.get(student=world.student, competency=world.first)
    assert (first.state, first.score, first.level_name) == ("mastered", Decimal("4.00"), "Exceeds")
    assert first.mastered_at == T0 + minutes(5)
    assert grid.student_states(student_id=world.student.pk, competency_ids=[world.second.pk]) == {
        world.second.pk: "ready"
    }
    assert tasks.student_recompute.delay(student_id=world.student.pk).get() == 0  # idempotent


# --- BKT fit --------------------------------------------------------------------------------------


def test_bkt_fit_task_stores_parameters_and_the_next_recompute_uses_them():
    framework = FrameworkFactory(calculation_method=CalculationMethod.BKT)
    competency = CompetencyFactory(framework=framework, code="BKT.1")
    truth = BKTParams(prior=0.3, learn=0.2, guess=0.15, slip=0.1)
    responses = simulate(truth, students=60, steps=8, rng=np.random.default_rng(7))
    students = [StudentFactory() for _ in range(60)]
    rows = []
    for student, sequence in zip(students, responses, strict=True):
        for step, correct in enumerate(sequence):
            rows.append(
                Evidence(
                    student=student,
                    competency=competency,
                    source=Evidence.Source.OBSERVATION,
                    score=Decimal(3 if correct else 1),
                    is_correct=bool(correct),
                    observed_at=T0 + datetime.timedelta(days=int(step)),
                )
            )
    Evidence.objects.bulk_create(rows)

    assert tasks.bkt_fit_all.delay(min_students=20).get() == 1

    fitted = BKTParameters.objects.get(competency=competency)
    assert fitted.sequence_count == 60
    params = BKTParams(fitted.prior, fitted.learn, fitted.guess, fitted.slip, fitted.forget)
    assert params != BKTParams()
    services.mastery_recompute(student_id=students[0].pk, now=T0)
    mastery = CompetencyMastery.objects.get(student=students[0], competency=competency)
    assert mastery.method == CalculationMethod.BKT
    assert mastery.p_known == pytest.approx(p_known_after(list(responses[0]), params))
    assert f"P(known) starts at {fitted.prior:.2f}, guess {fitted.guess:.2f}" in mastery.explanation


def test_bkt_fit_leaves_competencies_with_too_few_students_alone():
    framework = FrameworkFactory(calculation_method=CalculationMethod.BKT)
    competency = CompetencyFactory(framework=framework)
    EvidenceFactory(competency=competency)
    assert tasks.bkt_fit_all.delay().get() == 0
    assert not BKTParameters.objects.filter(competency=competency).exists()


# --- admin ----------------------------------------------------------------------------------------


def test_admin_pages_show_evidence_and_mastery_with_the_calculation(client):
    world = make_world()
    EvidenceFactory(student=world.student, competency=world.first, score=Decimal(3), observed_at=T0)
    services.mastery_recompute(student_id=world.student.pk, now=T0)
    client.force_login(StaffFactory())
    for name in ("evidence", "competencymastery", "bktparameters", "flagthresholds", "interventionflag"):
        assert client.get(f"/admin/progress/{name}/").status_code == 200
    mastery = CompetencyMastery.objects.get(student=world.student, competency=world.first)
    page = client.get(f"/admin/progress/competencymastery/{mastery.pk}/change/")
    assert page.status_code == 200
    assert "weighted average: only one score, 3 (5 Oct) = 3 -&gt; Mastery" in page.content.decode()
    assert client.get("/admin/progress/evidence/add/").status_code == 403
