"""generate_district: sizes, determinism, exact counts, and the refusals of the command."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from assessments.models import Attempt, AttemptCompetencyScore, AttemptItem, Item, Response
from competencies.models import Competency, PacingTarget, Prerequisite
from mastery import district
from progress.models import CompetencyMastery, Evidence
from roster.models import Enrollment, Section, User

pytestmark = pytest.mark.django_db

SMALL = district.Size(students=45, sections=3, competencies=15, items=60, responses=600)


def _sample_checksum() -> str:
    """A digest of what a seed decides: answers, scores, times and evidence of the first rows."""
    digest = hashlib.sha256()
    for row in Response.objects.order_by("pk").values_list("attempt_id", "item_id", "answer", "score")[:300]:
        digest.update(repr(row).encode())
    for row in Evidence.objects.order_by("pk").values_list(
        "student_id", "competency_id", "score", "is_correct", "is_summative", "observed_at"
    )[:200]:
        digest.update(repr(row).encode())
    for row in User.objects.order_by("pk").values_list("username", "first_name", "last_name")[:50]:
        digest.update(repr(row).encode())
    return digest.hexdigest()


def test_sizes_scale_every_count_but_the_framework():
    assert district.Size.of() == district.Size(30_000, 1_200, 150, 3_000, 3_000_000)
    assert district.Size.of(scale=0.1) == district.Size(3_000, 120, 150, 600, 300_000)
    # Items never fewer than five per leaf (120 leaves), so every check draws five different ones.
    assert district.Size.of(scale=0.01) == district.Size(300, 12, 150, 600, 30_000)
    assert district.Size.of(students=3_000) == district.Size.of(scale=0.1)
    assert district.Size.of(scale=0.1).attempts == 60_000
    with pytest.raises(ValueError, match="above 0"):
        district.Size.of(scale=0)


def test_same_seed_same_district_another_seed_another():
    first = district.generate(size=SMALL, seed=7)
    checksum = _sample_checksum()
    again = district.generate(size=SMALL, seed=7, replace=True)
    assert again == first
    assert _sample_checksum() == checksum
    district.generate(size=SMALL, seed=8, replace=True)
    assert _sample_checksum() != checksum


def test_counts_are_exact_and_rows_consistent():
    counts = district.generate(size=SMALL, seed=3)
    strands, units, leaves = 1, 2, 12
    teachers = 1  # three sections, five a teacher
    assert counts == {
        "competencies": 15,
        "prerequisites": leaves - 1,
        "items": 60,
        "assessments": 2 * leaves,
        "sections": 3,
        "pacing targets": 3 * leaves,
        "users": 45 + teachers,
        "enrollments": 3 + 45,
        "attempts": 120,
        "attempt items": 600,
        "responses": 600,
        "competency results": 120,
        "evidence": 120,
    }
    assert Competency.objects.filter(parent=None).count() == strands
    assert Competency.objects.filter(parent__parent=None, parent__isnull=False).count() == units
    assert Prerequisite.objects.count() == leaves - 1
    assert Item.objects.count() == 60
    assert PacingTarget.objects.count() == 36
    assert User.objects.filter(role="student").count() == 45
    # The first section holds every student it can (40), the rest share the others.
    sizes = sorted(
        Enrollment.objects.filter(role="student", section=section).count()
        for section in Section.objects.all()
    )
    assert sizes == [2, 3, 40]
    assert Attempt.objects.filter(status="completed").count() == 120
    assert AttemptItem.objects.count() == Response.objects.count() == 600
    assert Evidence.objects.count() == AttemptCompetencyScore.objects.count() == 120
    assert CompetencyMastery.objects.count() == 0
    # Each attempt's score is the sum of its responses, and its evidence is its competency result.
    attempt = Attempt.objects.order_by("pk").first()
    earned = sum(response.score for response in Response.objects.filter(attempt=attempt))
    assert attempt.score == earned
    result = AttemptCompetencyScore.objects.get(attempt=attempt)
    assert result.score == earned * Decimal("0.8")
    assert result.is_met == (result.score >= 3)
    evidence = Evidence.objects.get(source="attempt", source_id=attempt.pk)
    assert (evidence.score, evidence.is_correct, evidence.observed_at) == (
        result.score,
        result.is_met,
        attempt.submitted_at,
    )
    assert evidence.is_summative == (attempt.assessment.kind == "mastery_check")
    # Responses answer the item's key when they scored.
    response = Response.objects.select_related("item").filter(score=1).first()
    assert Decimal(response.answer) == response.item.answer_value


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY and sequences: PostgreSQL")
def test_copy_moves_sequences_past_the_written_ids():
    district.generate(size=SMALL, seed=3)
    user = User.objects.create(username="after-the-district")
    assert user.pk == User.objects.order_by("-pk").values_list("pk", flat=True)[1] + 1
    evidence = Evidence.objects.order_by("pk").first()
    evidence.pk = None
    evidence.source_id = None
    evidence.save()
    assert evidence.pk == 121


def test_copy_text_is_built_column_by_column_without_escapes():
    """Numbers right-aligned (PostgreSQL reads the leading spaces), floats fixed-point, NULL for a
    constant None and for masked rows, timestamps in UTC, strings at their own lengths."""
    text = district.copy_text(
        [
            np.array([7, 1234]),
            np.array([0.8, 12.5]),
            np.array([True, False]),
            np.ma.masked_array(np.array([3, 0]), mask=[False, True]),
            None,
            "1",
            np.array(["2026-01-02T03:04:05", "2025-12-31T23:59:59"], dtype="datetime64[s]"),
            np.array(["ab", ""]),
        ],
        2,
    )
    assert text == (
        b"   7\t 0.800000\tt\t3\t\\N\t1\t2026-01-02 03:04:05+00\tab\n"
        b"1234\t12.500000\tf\t\\N\t\\N\t1\t2025-12-31 23:59:59+00\t\n"
    )
    # One width for every column: the same text, laid out as one array.
    assert district.copy_text([np.array([5, 60]), "x"], 2) == b" 5\tx\n60\tx\n"
    with pytest.raises(ValueError, match="escaping"):
        district.copy_text([np.array(["tab\there", "ok"])], 2)
    with pytest.raises(ValueError, match="escaping"):
        district.copy_text(["back\\slash"], 1)


def _definitions() -> tuple[list, list]:
    tables = [model._meta.db_table for model in district.BULK_MODELS]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) OR confrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
            [tables, tables],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY 1, 2",
            [tables],
        )
        return constraints, cursor.fetchall()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="bulk_load: PostgreSQL")
def test_bulk_load_makes_every_index_and_constraint_again():
    before = _definitions()
    assert len(before[0]) > 20 and len(before[1]) > 20
    district.generate(size=SMALL, seed=3)
    assert _definitions() == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="bulk_load: PostgreSQL")
def test_bulk_load_checks_the_foreign_keys_and_rolls_everything_back():
    before = _definitions()
    with (
        pytest.raises(IntegrityError, match="foreign key"),
        transaction.atomic(),
        district.bulk_load(district.BULK_MODELS),
    ):
        # An evidence row of a student and a competency that do not exist.
        district.write_rows(
            Evidence,
            1,
            {
                "id": np.array([1]),
                "student_id": np.array([999_999]),
                "competency_id": np.array([999_999]),
                "source": "observation",
                "is_summative": "f",
                "score": "1.00",
                "is_correct": "f",
                "observed_at": np.datetime64("2026-01-02T00:00:00", "s"),
                "recorded_at": np.datetime64("2026-01-02T00:00:00", "s"),
                "author_id": None,
                "note": "",
            },
            freeze=True,
        )
    assert _definitions() == before
    assert Evidence.objects.count() == 0


def test_command_refuses_a_database_that_is_not_empty():
    User.objects.create(username="already-here")
    with pytest.raises(CommandError, match="pass --replace"):
        call_command("generate_district", students=45, competencies=15, stdout=_Sink())
    assert User.objects.count() == 1
    assert Attempt.objects.count() == 0


def test_command_replace_writes_the_district_and_reports_progress():
    User.objects.create(username="already-here")
    out = _Sink()
    call_command("generate_district", students=45, competencies=15, replace=True, stdout=out)
    assert not User.objects.filter(username="already-here").exists()
    assert User.objects.filter(role="student").count() == 45
    # 45 students of 30,000: 4,500 of 3,000,000 responses, every other count in proportion.
    assert (
        "Generating 45 students, 2 sections, 15 competencies, 60 items, 4,500 responses (seed 1)." in out.text
    )
    assert "responses: 4,500 rows" in out.text
    assert "District generated: 4,500 responses." in out.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"students": 0}, "--students must be at least 1"),
        ({"scale": -1.0}, "--scale: the scale must be above 0"),
    ],
)
def test_command_rejects_bad_sizes(options, message):
    with pytest.raises(CommandError, match=message):
        call_command("generate_district", stdout=_Sink(), **options)
    assert User.objects.count() == 0


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, message: str = "", *args, **kwargs) -> None:
        self.text += message + "\n"

    def flush(self) -> None:
        pass
