"""The district recompute stores exactly what the per-student ``mastery_recompute`` stores."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from competencies.models import CalculationMethod, Competency
from mastery import district
from progress import district as progress_district
from progress import grid, services, tasks
from progress.models import BKTParameters, CompetencyMastery, Evidence
from progress.services import mastery_recompute
from roster.models import User

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY and ON CONFLICT: PostgreSQL"),
]

SIZE = district.Size(students=45, sections=3, competencies=15, items=60, responses=3_000)
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
FIELDS = (
    "state",
    "score",
    "level_points",
    "level_name",
    "p_known",
    "method",
    "evidence_count",
    "explanation",
    "mastered_at",
    "first_activity_at",
    "last_activity_at",
    "failed_checks",
    "is_overridden",
    "is_unlocked_by_teacher",
)


def _snapshot() -> dict[tuple[int, int], tuple]:
    return {
        (row[0], row[1]): row[2:]
        for row in CompetencyMastery.objects.values_list("student_id", "competency_id", *FIELDS)
    }


def _teacher_rows(students: list[int], leaves: list[int]) -> None:
    """What teachers did before the recompute: an override, an unlock, an observation."""
    CompetencyMastery.objects.filter(student_id__in=students).delete()
    CompetencyMastery.objects.create(student_id=students[0], competency_id=leaves[5], is_overridden=True)
    CompetencyMastery.objects.create(
        student_id=students[1], competency_id=leaves[9], is_unlocked_by_teacher=True
    )


@pytest.fixture
def small_district():
    district.generate(size=SIZE, seed=11)
    leaves = list(
        Competency.objects.filter(children__isnull=True).order_by("pk").values_list("pk", flat=True)
    )
    students = list(User.objects.filter(role="student").order_by("pk").values_list("pk", flat=True))
    # Every method on at least one leaf (the generator cycles through them), fitted BKT on one.
    methods = set(Competency.objects.filter(pk__in=leaves).values_list("calculation_method", flat=True))
    assert methods == {method.value for method in CalculationMethod}
    bkt_leaf = Competency.objects.filter(pk__in=leaves, calculation_method=CalculationMethod.BKT).first()
    BKTParameters.objects.create(
        competency=bkt_leaf, prior=0.3, learn=0.2, guess=0.25, slip=0.08, forget=0.01, fitted_at=NOW
    )
    teacher = User.objects.filter(role="teacher").first()
    Evidence.objects.create(
        student_id=students[2],
        competency_id=leaves[0],
        source=Evidence.Source.OBSERVATION,
        is_summative=False,
        score=Decimal("3.50"),
        is_correct=True,
        observed_at=datetime(2026, 5, 1, 9, 0, tzinfo=UTC),
        author=teacher,
    )
    Evidence.objects.create(
        student_id=students[0],
        competency_id=leaves[5],
        source=Evidence.Source.OVERRIDE,
        is_summative=False,
        score=Decimal("3.00"),
        is_correct=True,
        observed_at=datetime(2026, 5, 2, 9, 0, tzinfo=UTC),
        author=teacher,
        note="mastered: shown in class",
    )
    return students, leaves


def test_district_recompute_equals_the_per_student_recompute(small_district):
    students, leaves = small_district
    _teacher_rows(students, leaves)
    for student_id in students:
        mastery_recompute(student_id=student_id, now=NOW)
    expected = _snapshot()
    # Sparse storage (``progress.grid``): 313 of the 675 (student, competency) pairs have something to
    # store; the other 362 are blank (locked or ready, no evidence) and derived on read.
    assert len(expected) == 313

    _teacher_rows(students, leaves)
    CompetencyMastery.objects.exclude(is_overridden=True).exclude(is_unlocked_by_teacher=True).delete()
    result = progress_district.district_recompute(now=NOW)
    assert (result.students, result.rows, result.written) == (45, 45 * 15, 313)
    actual = _snapshot()
    assert actual.keys() == expected.keys()
    different = {key: (expected[key], actual[key]) for key in expected if expected[key] != actual[key]}
    assert different == {}
    # Something of every kind is in there.
    states = {row[0] for row in actual.values()}
    assert states == {"ready", "in_progress", "mastered"}  # ready: the teacher's unlock
    every = list(Competency.objects.values_list("pk", flat=True))
    derived = grid.blank_states(
        student_ids=students, competency_ids=every, stored={key: row[0] for key, row in actual.items()}
    )
    assert len(derived) == 45 * 15 - 313
    assert set(derived.values()) == {"locked", "ready"}
    assert actual[(students[0], leaves[5])][0] == "mastered"
    assert actual[(students[0], leaves[5])][7].startswith("Teacher override: mastered. Calculated: ")
    assert any(row[4] is not None for row in actual.values())  # p_known from BKT
    # Every method met evidence: the comparison covered them all.
    used = {row[5] for row in actual.values() if row[6] and row[5]}
    assert used == {method.value for method in CalculationMethod}


def test_a_second_run_writes_nothing_and_agrees_with_the_live_path(small_district):
    students, _ = small_district
    first = progress_district.district_recompute(now=NOW)
    assert first.written == 311  # the stored rows; the 364 blank ones are derived on read
    stored = _snapshot()
    again = progress_district.district_recompute(now=datetime(2026, 6, 11, tzinfo=UTC))
    assert again.written == 0
    assert set(CompetencyMastery.objects.values_list("computed_at", flat=True)) == {NOW}
    # The live path, after the district one, finds nothing to change (mastered_at kept, and so on).
    later = datetime(2026, 6, 12, tzinfo=UTC)
    for student_id in students:
        assert mastery_recompute(student_id=student_id, now=later) == []
    assert _snapshot() == stored


def test_a_changed_score_rewrites_only_what_it_changes(small_district):
    students, _ = small_district
    progress_district.district_recompute(now=NOW)
    evidence = (
        Evidence.objects.filter(student_id=students[3], source="attempt").order_by("-observed_at").first()
    )
    evidence.score = Decimal("0.00") if evidence.score else Decimal("4.00")
    evidence.is_correct = evidence.score >= 3
    evidence.save()
    result = progress_district.district_recompute(now=datetime(2026, 6, 11, tzinfo=UTC))
    district_rows = _snapshot()
    changed = set(
        CompetencyMastery.objects.filter(computed_at=datetime(2026, 6, 11, tzinfo=UTC)).values_list(
            "student_id", flat=True
        )
    )
    assert changed == {students[3]}
    assert result.written >= 1
    mastery_recompute(student_id=students[3], now=datetime(2026, 6, 11, tzinfo=UTC))
    assert _snapshot() == district_rows


def test_rows_that_became_blank_are_deleted_unless_a_teacher_unlocked_them(small_district):
    students, leaves = small_district
    progress_district.district_recompute(now=NOW)
    blank = [
        leaf
        for leaf in leaves
        if not CompetencyMastery.objects.filter(student_id=students[4], competency_id=leaf).exists()
    ][:2]
    # As an earlier version stored them: a blank row, and one a teacher unlocked.
    CompetencyMastery.objects.create(student_id=students[4], competency_id=blank[0], state="locked")
    CompetencyMastery.objects.create(
        student_id=students[4], competency_id=blank[1], state="ready", is_unlocked_by_teacher=True
    )
    result = progress_district.district_recompute(now=NOW, collect_changes=True)
    assert result.written == 2  # one deleted, the unlocked one given its method and explanation
    assert list(
        CompetencyMastery.objects.filter(student_id=students[4], competency_id__in=blank).values_list(
            "competency_id", "state", "is_unlocked_by_teacher"
        )
    ) == [(blank[1], "ready", True)]
    # The deleted row said "locked"; its derived state is what the student sees now.
    derived = grid.student_states(student_id=students[4], competency_ids=[blank[0]])[blank[0]]
    changes = result.changes.get(students[4], [])
    assert [(c.competency_id, c.old_state, c.new_state) for c in changes] == (
        [] if derived == "locked" else [(blank[0], "locked", derived)]
    )


def test_command_and_task(small_district):
    out = _Sink()
    call_command("recompute_district", stdout=out)
    assert "45 students, 675 mastery rows computed from 601 evidence rows; 311 written" in out.text
    assert tasks.district_recompute.delay().get() == 0


def test_command_names_postgresql_when_on_another_database(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")
    with pytest.raises(CommandError, match="recompute_district needs PostgreSQL"):
        call_command("recompute_district", stdout=_Sink())


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, message: str = "", *args, **kwargs) -> None:
        self.text += message + "\n"

    def flush(self) -> None:
        pass


def test_groups_left_to_the_exact_path_store_the_same(small_district, monkeypatch):
    """The groups ``calculate_many`` leaves to ``_compute_leaf`` (half cents that Decimal's rounding
    decides) are stored exactly as the live path stores them: here every other group is left to it."""
    import dataclasses

    import numpy as np

    from progress import methods

    students, leaves = small_district
    _teacher_rows(students, leaves)
    for student_id in students:
        mastery_recompute(student_id=student_id, now=NOW)
    expected = _snapshot()
    calculate_many = methods.calculate_many
    left: list[int] = []

    def half_exact(*args, **kwargs):
        outcome = calculate_many(*args, **kwargs)
        exact = outcome.exact & (np.arange(outcome.exact.size) % 2 == 0)
        left.append(int((~exact).sum()))
        return dataclasses.replace(outcome, exact=exact)

    monkeypatch.setattr(methods, "calculate_many", half_exact)
    _teacher_rows(students, leaves)
    CompetencyMastery.objects.exclude(is_overridden=True).exclude(is_unlocked_by_teacher=True).delete()
    progress_district.district_recompute(now=NOW)
    assert sum(left) > 100
    actual = _snapshot()
    different = {key: (expected[key], actual[key]) for key in expected if expected[key] != actual[key]}
    assert different == {}


def test_derived_states_are_the_states_a_full_grid_would_store(small_district, monkeypatch):
    """The rule ``progress.grid`` applies on read is the recompute's: store every row (as before sparse
    storage), then store only what is not blank and derive the rest; every state is the same."""
    students, leaves = small_district
    _teacher_rows(students, leaves)
    with monkeypatch.context() as patch:
        patch.setattr(services, "_is_blank", lambda result: False)
        for student_id in students:
            mastery_recompute(student_id=student_id, now=NOW)
    full = dict(
        ((student, competency), state)
        for student, competency, state in CompetencyMastery.objects.values_list(
            "student_id", "competency_id", "state"
        )
    )
    assert len(full) == 45 * 15
    for student_id in students:
        mastery_recompute(student_id=student_id, now=NOW)  # deletes the blank rows
    stored = dict(
        ((student, competency), state)
        for student, competency, state in CompetencyMastery.objects.values_list(
            "student_id", "competency_id", "state"
        )
    )
    assert len(stored) == 313
    every = list(Competency.objects.values_list("pk", flat=True))
    derived = grid.blank_states(student_ids=students, competency_ids=every, stored=stored)
    assert {**stored, **derived} == full
