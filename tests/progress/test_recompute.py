"""mastery_recompute: scores, levels, states, explanations, roll-up, override, the re-lock rule, idempotence."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from competencies.models import CalculationMethod, Competency
from progress import grid
from progress.models import CompetencyMastery, Evidence
from progress.services import MasteryChange, mastery_override, mastery_recompute
from tests.factories import (
    CompetencyFactory,
    EvidenceFactory,
    FrameworkFactory,
    PrerequisiteFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = pytest.mark.django_db

MASTERED, IN_PROGRESS, READY, LOCKED = "mastered", "in_progress", "ready", "locked"


def day(n: int) -> datetime.datetime:
    return datetime.datetime(2026, 3, n, 15, 0, tzinfo=datetime.UTC)


NOW = day(20)


def evidence(student, competency, score, when, **fields) -> Evidence:
    return EvidenceFactory(
        student=student, competency=competency, score=Decimal(str(score)), observed_at=when, **fields
    )


def row(student, competency) -> CompetencyMastery:
    """The stored row; for a blank one (not stored, ``progress.grid``), an unsaved row in its derived state."""
    stored = CompetencyMastery.objects.filter(student=student, competency=competency).first()
    if stored is not None:
        return stored
    state = grid.student_states(student_id=student.pk, competency_ids=[competency.pk])[competency.pk]
    return CompetencyMastery(student=student, competency=competency, state=state)


def test_weighted_average_of_three_scores_with_the_calculation_shown():
    competency = CompetencyFactory(code="7.RP.A.1")
    student = StudentFactory()
    # Recorded out of order: the make-up done on 1 Mar was graded last.
    evidence(student, competency, 3, day(14))
    evidence(student, competency, 3, day(7))
    evidence(student, competency, 2, day(1))

    changes = mastery_recompute(student_id=student.pk, now=NOW)

    mastery = row(student, competency)
    assert mastery.score == Decimal("2.83")
    assert (mastery.level_points, mastery.level_name) == (Decimal("2.00"), "Near")
    assert mastery.state == IN_PROGRESS
    assert mastery.method == CalculationMethod.WEIGHTED_AVERAGE
    assert mastery.evidence_count == 3
    assert mastery.explanation == (
        "weighted average: 0.65 x 3 (latest, 14 Mar) + 0.35 x 2.5 (mean of 2 earlier) = 2.83 -> Near"
    )
    assert (mastery.first_activity_at, mastery.last_activity_at) == (day(1), day(14))
    assert mastery.mastered_at is None
    # Before: no row stored, so the derived state (ready: no prerequisites).
    assert changes == [
        MasteryChange(competency.pk, READY, IN_PROGRESS, None, Decimal("2.00"), None, Decimal("2.83"))
    ]


def test_order_is_by_when_the_work_was_done_and_mastery_is_reached():
    competency = CompetencyFactory()
    student = StudentFactory()
    evidence(student, competency, "3.5", day(14))  # latest, recorded first
    evidence(student, competency, 2, day(1))
    evidence(student, competency, 3, day(7))

    mastery_recompute(student_id=student.pk, now=NOW)

    mastery = row(student, competency)
    assert mastery.explanation == (
        "weighted average: 0.65 x 3.5 (latest, 14 Mar) + 0.35 x 2.5 (mean of 2 earlier) = 3.15 -> Mastery"
    )
    assert (mastery.state, mastery.score, mastery.level_name) == (MASTERED, Decimal("3.15"), "Mastery")
    assert mastery.mastered_at == day(14)  # when the student did the work that mastered it


def test_competency_method_overrides_the_framework_default():
    framework = FrameworkFactory(calculation_method=CalculationMethod.WEIGHTED_AVERAGE)
    competency = CompetencyFactory(
        framework=framework, calculation_method=CalculationMethod.HIGHEST, calculation_parameter=None
    )
    student = StudentFactory()
    evidence(student, competency, 4, day(1))
    evidence(student, competency, 1, day(2))
    mastery_recompute(student_id=student.pk, now=NOW)
    mastery = row(student, competency)
    assert (mastery.method, mastery.score, mastery.state) == (
        CalculationMethod.HIGHEST,
        Decimal("4.00"),
        MASTERED,
    )
    assert mastery.explanation == "highest of 2 scores: 4 (1 Mar) = 4 -> Exceeds"


def test_failed_checks_count_summative_evidence_not_met():
    competency = CompetencyFactory()
    student = StudentFactory()
    evidence(student, competency, 1, day(1), is_summative=True)
    evidence(student, competency, 2, day(2), is_summative=True)
    evidence(student, competency, 1, day(3), is_summative=False)  # practice: not a failed check
    mastery_recompute(student_id=student.pk, now=NOW)
    assert row(student, competency).failed_checks == 2


def test_a_prerequisite_unlocks_its_dependent_when_mastered():
    edge = PrerequisiteFactory()
    first, second = edge.prerequisite, edge.competency
    student = StudentFactory()

    mastery_recompute(student_id=student.pk, competency_ids=[first.pk], now=NOW)
    assert (row(student, first).state, row(student, second).state) == (READY, LOCKED)

    evidence(student, first, 4, day(2))
    changes = mastery_recompute(student_id=student.pk, now=NOW)

    assert (row(student, first).state, row(student, second).state) == (MASTERED, READY)
    assert {(change.competency_id, change.old_state, change.new_state) for change in changes} == {
        (first.pk, READY, MASTERED),
        (second.pk, LOCKED, READY),
    }


def test_a_teacher_unlock_makes_a_locked_competency_ready():
    edge = PrerequisiteFactory()
    student = StudentFactory()
    mastery = mastery_override(
        student=student,
        competency=edge.competency,
        state="unlocked",
        author=TeacherFactory(),
        note="Knows it",
    )
    assert (mastery.state, mastery.is_unlocked_by_teacher) == (READY, True)
    assert row(student, edge.prerequisite).state == READY


def test_an_inner_node_rolls_up_from_its_children():
    framework = FrameworkFactory()
    unit = CompetencyFactory(framework=framework, code="7.RP")
    ratios = CompetencyFactory(framework=framework, parent=unit, code="7.RP.A.1")
    rates = CompetencyFactory(framework=framework, parent=unit, code="7.RP.A.2")
    student = StudentFactory()
    evidence(student, ratios, "3.5", day(1))
    evidence(student, rates, 2, day(2))

    mastery_recompute(student_id=student.pk, now=NOW)

    parent = row(student, unit)
    assert (parent.state, parent.score, parent.level_name) == (IN_PROGRESS, Decimal("2.75"), "Near")
    assert parent.evidence_count == 2
    assert parent.explanation == (
        "roll-up: 1 of 2 parts mastered; mean of the parts' scores (3.5 + 2) / 2 = 2.75 -> Near; "
        "mastered when every part is"
    )

    evidence(student, rates, 4, day(3))  # 0.65 x 4 + 0.35 x 2 = 3.3
    mastery_recompute(student_id=student.pk, now=NOW)

    parent = row(student, unit)
    assert (parent.state, parent.score, parent.level_name) == (MASTERED, Decimal("3.40"), "Mastery")
    assert parent.mastered_at == day(3)
    assert (
        parent.explanation
        == "roll-up: 2 of 2 parts mastered; mean of the parts' scores (3.5 + 3.3) / 2 = 3.4 -> Mastery"
    )


def test_an_override_wins_over_the_calculation():
    competency = CompetencyFactory()
    student = StudentFactory()
    evidence(student, competency, 1, day(1))
    mastery_override(
        student=student, competency=competency, state="mastered", author=TeacherFactory(), note="Seen"
    )
    evidence(student, competency, 1, day(2))  # later poor evidence does not undo the override
    mastery_recompute(student_id=student.pk, now=NOW)
    mastery = row(student, competency)
    assert (mastery.state, mastery.is_overridden, mastery.score) == (MASTERED, True, Decimal("1.00"))
    assert mastery.evidence_count == 2  # the override row is an audit record, not a score


def test_a_rescore_below_mastery_re_locks_only_what_the_student_has_not_started():
    framework = FrameworkFactory()
    base = CompetencyFactory(framework=framework, code="A")
    started = CompetencyFactory(framework=framework, code="B")
    finished = CompetencyFactory(framework=framework, code="C")
    untouched = CompetencyFactory(framework=framework, code="D")
    for dependent in (started, finished, untouched):
        PrerequisiteFactory(prerequisite=base, competency=dependent)
    student = StudentFactory()
    base_evidence = evidence(student, base, "3.5", day(1))
    evidence(student, started, 2, day(2))
    evidence(student, finished, 4, day(3))
    mastery_recompute(student_id=student.pk, now=NOW)
    assert [row(student, c).state for c in (base, started, finished, untouched)] == [
        MASTERED,
        IN_PROGRESS,
        MASTERED,
        READY,
    ]

    base_evidence.score = Decimal("2.00")  # what evidence_record_for_attempt does after a rescore
    base_evidence.is_correct = False
    base_evidence.save()
    changes = mastery_recompute(student_id=student.pk, now=NOW)

    assert [row(student, c).state for c in (base, started, finished, untouched)] == [
        IN_PROGRESS,
        IN_PROGRESS,
        MASTERED,
        LOCKED,
    ]
    assert row(student, base).mastered_at is None
    assert {(change.competency_id, change.old_state, change.new_state) for change in changes} == {
        (base.pk, MASTERED, IN_PROGRESS),
        (untouched.pk, READY, LOCKED),
    }
    base_change = next(change for change in changes if change.competency_id == base.pk)
    assert (base_change.old_level_points, base_change.new_level_points) == (Decimal("3.00"), Decimal("2.00"))
    assert (base_change.old_score, base_change.new_score) == (Decimal("3.50"), Decimal("2.00"))


def test_a_second_recompute_changes_nothing_and_writes_nothing():
    framework = FrameworkFactory()
    unit = CompetencyFactory(framework=framework)
    leaves = [CompetencyFactory(framework=framework, parent=unit) for _ in range(3)]
    PrerequisiteFactory(prerequisite=leaves[0], competency=leaves[1])
    student = StudentFactory()
    evidence(student, leaves[0], 3, day(1))
    evidence(student, leaves[2], 1, day(2))
    assert len(mastery_recompute(student_id=student.pk, now=NOW)) == 4
    before = list(CompetencyMastery.objects.order_by("pk").values())
    history_before = CompetencyMastery.history.count()

    with CaptureQueriesContext(connection) as queries:
        assert mastery_recompute(student_id=student.pk, now=day(21)) == []

    writes = [
        q["sql"] for q in queries.captured_queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")
    ]
    assert writes == []
    assert list(CompetencyMastery.objects.order_by("pk").values()) == before
    assert CompetencyMastery.history.count() == history_before


@pytest.mark.parametrize("size", [3, 30])
def test_recompute_query_count_is_flat(django_assert_num_queries, size):
    framework = FrameworkFactory()
    competencies = [CompetencyFactory(framework=framework) for _ in range(size)]
    for earlier, later in itertools.pairwise(competencies):
        PrerequisiteFactory(prerequisite=earlier, competency=later)
    student = StudentFactory()
    for index, competency in enumerate(competencies):
        evidence(student, competency, 3, day(1 + index % 20))
    # lock the student (and read the catalog version), mastery rows, frameworks, competencies,
    # evidence, prerequisites, levels, BKT parameters, bulk insert, history bulk insert (no savepoint:
    # inside the test's transaction, ``atomic(savepoint=False)``)
    with django_assert_num_queries(10):
        mastery_recompute(student_id=student.pk, now=NOW)
    assert CompetencyMastery.objects.filter(student=student, state=MASTERED).count() == size


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the catalog version is kept by triggers")
@pytest.mark.parametrize("size", [3, 30])
def test_a_cached_catalog_saves_four_queries_and_any_catalog_write_invalidates_it(
    django_assert_num_queries, size
):
    """``progress.catalog``: the second student's recompute reads no catalog (PostgreSQL triggers keep
    its version); a bulk write to the catalog (no signal, no save) is seen at once."""
    framework = FrameworkFactory(calculation_method=CalculationMethod.LATEST)
    competencies = [CompetencyFactory(framework=framework) for _ in range(size)]
    first, second = StudentFactory(), StudentFactory()
    for student in (first, second):
        for competency in competencies:
            evidence(student, competency, 2, day(1))
            evidence(student, competency, 4, day(2))
    mastery_recompute(student_id=first.pk, now=NOW)
    # lock the student (and read the catalog version), mastery rows, frameworks, evidence, bulk insert,
    # history bulk insert
    with django_assert_num_queries(6):
        mastery_recompute(student_id=second.pk, now=NOW)
    assert set(CompetencyMastery.objects.filter(student=second).values_list("state", "score")) == {
        (MASTERED, Decimal("4.00"))
    }
    Competency.objects.filter(framework=framework).update(
        calculation_method=CalculationMethod.HIGHEST, calculation_parameter=None
    )
    Evidence.objects.filter(student=second).update(score=Decimal("1.00"))
    Evidence.objects.filter(student=second, observed_at=day(1)).update(score=Decimal("3.50"))
    mastery_recompute(student_id=second.pk, now=NOW)
    assert set(CompetencyMastery.objects.filter(student=second).values_list("method", "score", "state")) == {
        (CalculationMethod.HIGHEST, Decimal("3.50"), MASTERED)
    }
