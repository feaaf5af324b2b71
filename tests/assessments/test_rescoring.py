"""Rescoring after a key change: exact scores for every item type, recorded changes, attempt totals,
idempotent re-runs, flat query counts, the API and the ``rescore`` command. Runs on SQLite and on
PostgreSQL (where each batch is one data-modifying SQL statement)."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assessments import rescoring, services, signals
from assessments.models import (
    Attempt,
    AttemptCompetencyScore,
    Item,
    ItemAlignment,
    ItemChoice,
    RescoreJob,
    Response,
    ResponseScoreChange,
)
from roster.models import User
from tests.assessments.conftest import Bank, api_client_for, assessment_with
from tests.factories import (
    CompetencyFactory,
    FrameworkFactory,
    ItemFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = pytest.mark.django_db


def take(assessment, student: User, item: Item, answer: Any, *, grade: Any = None) -> Attempt:
    """A completed attempt on a one-item form; ``grade`` points for an extended-text answer."""
    attempt = services.attempt_start(assessment=assessment, student=student)
    if answer is not None:
        services.response_save(attempt=attempt, item=item, answer=answer)
    attempt = services.attempt_submit(attempt=attempt)
    if grade is not None:
        response = Response.objects.get(attempt=attempt, item=item)
        services.response_grade(response=response, points=grade, grader=TeacherFactory())
        attempt.refresh_from_db()
    return attempt


def attempt_state(attempt: Attempt) -> tuple:
    """What a result is made of: totals and every competency row."""
    attempt.refresh_from_db()
    return (
        attempt.score,
        attempt.max_score,
        attempt.is_passed,
        attempt.status,
        sorted(
            AttemptCompetencyScore.objects.filter(attempt=attempt).values_list(
                "competency_id", "earned", "possible", "score", "level_points", "is_met"
            )
        ),
    )


def database_state() -> tuple:
    return (
        sorted(Response.objects.values_list("pk", "score", "scored_key_version")),
        sorted(
            ResponseScoreChange.objects.values_list(
                "pk", "job_id", "response_id", "old_score", "new_score", "old_key_version", "new_key_version"
            )
        ),
        sorted(Attempt.objects.values_list("pk", "score", "max_score", "is_passed")),
        sorted(
            AttemptCompetencyScore.objects.values_list(
                "attempt_id", "competency_id", "earned", "possible", "score", "level_points", "is_met"
            )
        ),
    )


D = Decimal


def _cases(bank: Bank) -> dict[str, dict[str, Any]]:
    c = bank.choice
    return {
        # the key named the wrong choice
        "single_choice": {
            "item": bank.single,
            "answers": [c["single_right"].pk, c["single_wrong"].pk, None],
            "change": {
                "choices": [
                    {"id": c["single_right"].pk, "text": "four"},
                    {"id": c["single_wrong"].pk, "text": "five", "correct": True},
                ]
            },
            "old": [D("1.00"), D("0.00"), D("0.00")],
            "new": [D("0.00"), D("1.00"), D("0.00")],
        },
        # partial credit, 3 points: "seven" becomes a fourth correct choice
        "multiple_choice": {
            "item": bank.multiple,
            "answers": [
                [c["two"].pk, c["four"].pk, c["six"].pk],
                [c["two"].pk, c["seven"].pk],
                [c["two"].pk, c["four"].pk],
            ],
            "change": {
                "choices": [
                    {"id": c[name].pk, "text": name, "correct": True}
                    for name in ("two", "four", "six", "seven")
                ]
            },
            "old": [D("3.00"), D("0.00"), D("2.00")],
            "new": [D("2.25"), D("1.50"), D("1.50")],
        },
        # 31.4159 within 0.05 becomes within 0.02
        "numeric": {
            "item": bank.numeric,
            "answers": ["31.4", 31.45, "3.14"],
            "change": {"answer_value": D("31.4159"), "answer_tolerance": D("0.02")},
            "old": [D("2.00"), D("2.00"), D("0.00")],
            "new": [D("2.00"), D("0.00"), D("0.00")],
        },
        # normalised text: case, spaces and the subscript two (NFKC) still match
        "short_text": {
            "item": bank.short,
            "answers": ["  carbon   DIOXIDE ", "co\u2082", "oxygen"],
            "change": {"accepted_answers": ["Oxygen"]},
            "old": [D("1.00"), D("1.00"), D("0.00")],
            "new": [D("0.00"), D("0.00"), D("1.00")],
        },
        # the teacher's scores stay, clamped to the item's new points (4 -> 3)
        "extended_text": {
            "item": bank.extended,
            "answers": ["Full answer", "Half an answer", "Nothing"],
            "grades": [4, 2, 0],
            "change": {
                "max_points": D(3),
                "rubric": [
                    {"points": D(3), "description": "complete"},
                    {"points": D(1), "description": "partial"},
                    {"points": D(0), "description": "none"},
                ],
            },
            "old": [D("4.00"), D("2.00"), D("0.00")],
            "new": [D("3.00"), D("2.00"), D("0.00")],
        },
        # the same key, worth twice the points
        "points": {
            "item": bank.single,
            "answers": [c["single_right"].pk, c["single_wrong"].pk, None],
            "change": {"max_points": D(2)},
            "old": [D("1.00"), D("0.00"), D("0.00")],
            "new": [D("2.00"), D("0.00"), D("0.00")],
        },
    }


@pytest.mark.parametrize(
    "case", ["single_choice", "multiple_choice", "numeric", "short_text", "extended_text", "points"]
)
def test_a_key_change_rescores_exactly_and_records_each_change(bank, case):
    spec = _cases(bank)[case]
    item: Item = spec["item"]
    assessment = assessment_with([item], bank.ratios)
    grades = spec.get("grades", [None] * 3)
    students = [StudentFactory(district=bank.student.district) for _ in spec["answers"]]
    attempts = [
        take(assessment, student, item, answer, grade=grade)
        for student, answer, grade in zip(students, spec["answers"], grades, strict=True)
    ]
    responses = [Response.objects.get(attempt=attempt, item=item) for attempt in attempts]
    assert [response.score for response in responses] == spec["old"]

    staff = StaffFactory(district=bank.student.district)
    item = services.item_update(item=item, data=spec["change"], user=staff, reason="Key corrected")
    job = item.rescore_job
    assert item.key_version == 2
    assert (job.status, job.total, job.done, job.changed) == ("pending", 3, 0, 0)
    assert (job.requested_by, job.reason, list(job.items.all())) == (staff, "Key corrected", [item])
    assert job.changes[str(item.pk)]["key_version"] == {"before": 1, "after": 2}

    job = rescoring.rescore_job_run(job_id=job.pk)

    for response in responses:
        response.refresh_from_db()
    assert [response.score for response in responses] == spec["new"]
    assert {response.scored_key_version for response in responses} == {2}
    expected_changes = {
        (response.pk, old, new, 1, 2)
        for response, old, new in zip(responses, spec["old"], spec["new"], strict=True)
        if old != new
    }
    assert (
        set(
            ResponseScoreChange.objects.filter(job=job).values_list(
                "response_id", "old_score", "new_score", "old_key_version", "new_key_version"
            )
        )
        == expected_changes
    )
    assert (job.status, job.total, job.done, job.changed) == ("completed", 3, 3, len(expected_changes))
    assert job.started_at is not None and job.finished_at is not None

    # Totals and competency scores equal a fresh attempt with the same answers under the new key.
    fresh_assessment = assessment_with([item], bank.ratios)
    for attempt, answer, grade in zip(attempts, spec["answers"], grades, strict=True):
        fresh = take(
            fresh_assessment,
            StudentFactory(district=bank.student.district),
            item,
            answer,
            grade=None if grade is None else min(Decimal(grade), item.max_points),
        )
        assert attempt_state(attempt)[:3] == attempt_state(fresh)[:3]
        assert attempt_state(attempt)[4] == attempt_state(fresh)[4]


def test_a_re_run_changes_nothing(bank):
    assessment = assessment_with(bank.auto_items(), bank.ratios)
    for answer in (bank.choice["single_right"].pk, bank.choice["single_wrong"].pk, None):
        student = StudentFactory(district=bank.student.district)
        attempt = services.attempt_start(assessment=assessment, student=student)
        if answer is not None:
            services.response_save(attempt=attempt, item=bank.single, answer=answer)
        services.attempt_submit(attempt=attempt)
    job = services.item_update(
        item=bank.single,
        data={
            "choices": [
                {"id": bank.choice["single_right"].pk, "text": "four"},
                {"id": bank.choice["single_wrong"].pk, "text": "five", "correct": True},
            ]
        },
    ).rescore_job
    rescoring.rescore_job_run(job_id=job.pk)
    after_first = database_state()
    assert len(after_first[1]) == 2

    job = rescoring.rescore_job_run(job_id=job.pk)

    assert database_state() == after_first
    assert (job.status, job.total, job.done, job.changed) == ("completed", 3, 3, 2)


def test_small_batches_end_where_one_batch_ends(bank):
    """Batches by id range: with a batch of one response the result is the same as with one batch."""
    assessment = assessment_with([bank.multiple], bank.ratios)
    c = bank.choice
    answers = [[c["two"].pk], [c["two"].pk, c["seven"].pk], None, [c["four"].pk, c["six"].pk]] * 2
    for answer in answers:
        take(assessment, StudentFactory(district=bank.student.district), bank.multiple, answer)
    change = {"partial_credit": False}
    job = services.item_update(item=bank.multiple, data=change).rescore_job
    job = rescoring.rescore_job_run(job_id=job.pk, batch_size=1)
    assert (job.total, job.done, job.changed) == (8, 8, 4)  # the 1.00 partial scores become 0
    assert set(Response.objects.values_list("score", flat=True)) == {D("0.00")}


def test_an_alignment_change_recomputes_competency_scores_without_score_changes(bank):
    assessment = assessment_with([bank.single], bank.ratios)
    attempt = take(assessment, bank.student, bank.single, bank.choice["single_right"].pk)
    before = attempt_state(attempt)
    assert {row[0] for row in before[4]} == {bank.ratios.pk, bank.rates.pk}

    job = services.item_update(
        item=bank.single, data={"alignments": [{"competency": bank.ratios, "points": D(1)}]}
    ).rescore_job
    job = rescoring.rescore_job_run(job_id=job.pk)

    assert (job.total, job.done, job.changed) == (1, 1, 0)
    assert job.changes[str(bank.single.pk)]["alignments"] == {
        "before": {str(bank.ratios.pk): "1", str(bank.rates.pk): "1"},
        "after": {str(bank.ratios.pk): "1"},
    }
    after = attempt_state(attempt)
    assert [row[0] for row in after[4]] == [bank.ratios.pk]
    assert after[:3] == before[:3]
    assert Response.objects.get(attempt=attempt).scored_key_version == 2


def test_a_change_that_scores_nothing_differently_creates_no_job(bank):
    c = bank.choice
    item = services.item_update(
        item=bank.single,
        data={
            "stem": "Pick the four",
            "choices": [
                {"id": c["single_right"].pk, "text": "4", "correct": True},
                {"id": c["single_wrong"].pk, "text": "5"},
                {"text": "a new wrong choice"},
            ],
        },
    )
    assert (item.rescore_job, item.key_version, RescoreJob.objects.count()) == (None, 1, 0)


def test_responses_of_open_and_ungraded_attempts_are_left_alone(bank):
    assessment = assessment_with([bank.single, bank.extended], bank.ratios)
    open_attempt = services.attempt_start(assessment=assessment, student=bank.student)
    services.response_save(attempt=open_attempt, item=bank.single, answer=bank.choice["single_right"].pk)
    ungraded = services.attempt_start(assessment=assessment, student=StudentFactory())
    services.response_save(attempt=ungraded, item=bank.single, answer=bank.choice["single_right"].pk)
    ungraded = services.attempt_submit(attempt=ungraded)
    assert ungraded.status == Attempt.Status.SUBMITTED

    job = services.item_update(item=bank.single, data={"max_points": D(5)}).rescore_job
    job = rescoring.rescore_job_run(job_id=job.pk)

    assert (job.total, job.done, job.changed) == (1, 1, 1)  # the submitted attempt's choice answer
    assert Response.objects.get(attempt=open_attempt).score is None
    ungraded.refresh_from_db()
    assert (ungraded.status, ungraded.score) == (Attempt.Status.SUBMITTED, None)
    assert Response.objects.get(attempt=ungraded, item=bank.single).score == D("5.00")


def test_rescored_attempts_are_announced_once_per_batch(bank, monkeypatch):
    assessment = assessment_with([bank.single], bank.ratios)
    attempts = [
        take(assessment, StudentFactory(district=bank.student.district), bank.single, answer)
        for answer in (bank.choice["single_right"].pk, None, bank.choice["single_wrong"].pk)
    ]
    bulk: list[dict] = []
    single: list[dict] = []

    def on_bulk(sender, **kwargs):
        bulk.append(kwargs)

    def on_single(sender, **kwargs):
        single.append(kwargs)

    signals.attempt_scored.connect(on_single, weak=False)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(signals.attempts_rescored, "receivers", [])
            job = services.item_update(item=bank.single, data={"max_points": D(2)}).rescore_job
            rescoring.rescore_job_run(job_id=job.pk)
        # while nobody listens to the bulk announcement: one attempt_scored per attempt
        assert sorted(call["attempt_id"] for call in single) == sorted(a.pk for a in attempts)

        single.clear()
        signals.attempts_rescored.connect(on_bulk, weak=False)
        job = services.item_update(item=bank.single, data={"max_points": D(3)}).rescore_job
        rescoring.rescore_job_run(job_id=job.pk, batch_size=2)
    finally:
        signals.attempt_scored.disconnect(on_single)
        signals.attempts_rescored.disconnect(on_bulk)
    assert single == []
    assert [sorted(call["attempt_ids"]) for call in bulk] == [
        sorted(a.pk for a in attempts[:2]),
        [attempts[2].pk],
    ]
    assert sorted(bulk[0]["student_ids"]) == sorted(a.student_id for a in attempts[:2])


def _world_with_responses(count: int) -> tuple[Item, RescoreJob]:
    competency = CompetencyFactory()
    item = ItemFactory(type=Item.Type.SINGLE_CHOICE, aligned_to=competency)
    right = ItemChoice.objects.create(item=item, text="right", is_correct=True, position=1)
    wrong = ItemChoice.objects.create(item=item, text="wrong", position=2)
    assessment = assessment_with([item], competency)
    for index in range(count):
        take(assessment, StudentFactory(), item, [right.pk, wrong.pk, None][index % 3])
    job = services.item_update(
        item=item,
        data={
            "choices": [
                {"id": right.pk, "text": "right"},
                {"id": wrong.pk, "text": "wrong", "correct": True},
            ]
        },
    ).rescore_job
    return item, job


@pytest.mark.parametrize("responses", [3, 12])
def test_the_query_count_of_a_batch_does_not_grow_with_its_rows(django_assert_num_queries, responses):
    _, job = _world_with_responses(responses)
    # job, running, items + choices, rubric levels and alignments; on PostgreSQL the run's temporary
    # answer map and session settings; then one batch (savepoint, job lock; on PostgreSQL the batch
    # statement, the new answers into the map and the statement again, ONE set-based recompute of
    # the attempts; on SQLite upper bound, read, bulk update, bulk insert, attempts, form, responses,
    # alignments, scale levels, stored competency scores, upsert competency scores, attempt totals,
    # remaining, changed, progress; release); remaining, changed, completed; on PostgreSQL the map
    # dropped and the settings restored; the refresh.
    with django_assert_num_queries(21 if connection.vendor == "postgresql" else 28):
        job = rescoring.rescore_job_run(job_id=job.pk)
    assert (job.total, job.done, job.changed) == (responses, responses, 2 * responses // 3)


@pytest.mark.parametrize("batches", [1, 3])
def test_each_further_batch_costs_an_exact_number_of_queries(django_assert_num_queries, batches):
    """Nine responses in batches of 9 // batches: a further batch adds 5 queries on PostgreSQL
    (savepoint, lock, statement, recompute, release; its answers are already in the map) and 18 on
    SQLite; a run whose last batch was full ends with one empty batch (4 queries on PostgreSQL:
    savepoint, lock, statement, release; 8 on SQLite: with upper bound, read and the progress)."""
    _, job = _world_with_responses(9)
    if connection.vendor == "postgresql":
        expected = {1: 21 + 4, 3: 21 + 2 * 5 + 4}[batches]
    else:
        expected = {1: 28 + 8, 3: 28 + 2 * 18 + 8}[batches]
    with django_assert_num_queries(expected):
        job = rescoring.rescore_job_run(job_id=job.pk, batch_size=9 // batches)
    assert (job.status, job.total, job.done, job.changed) == ("completed", 9, 9, 6)
    assert ResponseScoreChange.objects.filter(job=job).count() == 6


#: The tables a batch reads and writes row by row: their size grows with the district.
_LARGE_TABLES = {
    "assessments_response",
    "assessments_attempt",
    "assessments_attemptitem",
    "assessments_attemptcompetencyscore",
}


def _scans_of_large_tables(plan: dict) -> list[tuple[str, str, bool]]:
    """Every scan node of a large table in an EXPLAIN (FORMAT JSON) plan: (table, node type, whether
    it is bounded by an index condition or row addresses, rather than reading the whole table)."""
    found = []
    if plan.get("Relation Name") in _LARGE_TABLES and plan["Node Type"] != "ModifyTable":
        bounded = any(key in plan for key in ("Index Cond", "TID Cond", "Recheck Cond"))
        found.append((plan["Relation Name"], plan["Node Type"], bounded))
    for child in plan.get("Plans", []):
        found.extend(_scans_of_large_tables(child))
    return found


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL statements' plans")
def test_a_batch_reaches_its_rows_by_index_or_address_never_by_scanning_a_table():
    """A batch's cost must follow the batch, not the tables: a hash join of a batch's 40,000 attempts
    against the whole of each table (a sequential or full index scan, once per batch) made a
    million-response rescore grow with batches x table size. Planned for a batch of that size, with
    sequential scans priced out as on a district's tables, every scan of a large table in the batch
    statement and the recompute has an index condition or row addresses."""
    _, job = _world_with_responses(6)
    with CaptureQueriesContext(connection) as captured:
        rescoring.rescore_job_run(job_id=job.pk)
        assert rescoring.attempts_recompute(attempt_ids=range(10**9, 10**9 + 40_000)) == []  # none exist
    statements = [
        query["sql"] for query in captured.captured_queries if query["sql"].lstrip().startswith("WITH")
    ]
    assert len(statements) == 4  # batch statement, again once the answers are scored, recompute, 40,000
    scans = []
    with rescoring._run_session(), transaction.atomic(), connection.cursor() as cursor:  # the answer map
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in statements:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
            scans.extend(_scans_of_large_tables(cursor.fetchone()[0][0]["Plan"]))
    assert {table for table, _, _ in scans} == _LARGE_TABLES
    assert [scan for scan in scans if not scan[2]] == []


def _results_state(attempt_ids: list[int]) -> tuple:
    return (
        sorted(
            Attempt.objects.filter(pk__in=attempt_ids).values_list("pk", "score", "max_score", "is_passed")
        ),
        sorted(
            AttemptCompetencyScore.objects.filter(attempt_id__in=attempt_ids).values_list(
                "attempt_id", "competency_id", "earned", "possible", "score", "level_points", "is_met"
            )
        ),
    )


def _spoil_results(attempt_ids: list[int], stale_competency) -> None:
    """Wrong totals, one competency row wrong, one missing, one that should not exist."""
    Attempt.objects.filter(pk__in=attempt_ids).update(score=D("99.00"), max_score=D(0), is_passed=True)
    rows = AttemptCompetencyScore.objects.filter(attempt_id__in=attempt_ids).order_by("pk")
    rows.filter(pk=rows[0].pk).update(earned=D("0.01"), is_met=True)
    rows.filter(pk=rows[1].pk).delete()
    AttemptCompetencyScore.objects.create(
        attempt_id=attempt_ids[0], competency=stale_competency, earned=1, possible=1, score=1, is_met=True
    )


def test_the_set_based_recompute_equals_a_from_scratch_computation(bank):
    """Totals and competency scores recomputed (one SQL statement on PostgreSQL) are exactly what the
    submit computed and what the Python reference computes, for every item type, both scales (a
    framework without a scale: met at 80 %), partial scores, unanswered and rubric-graded items."""
    unscaled = CompetencyFactory(framework=FrameworkFactory(mastery_scale=None))
    ItemAlignment.objects.create(item=bank.numeric, competency=unscaled, points=D(3))
    ItemAlignment.objects.create(item=bank.short, competency=unscaled, points=D("0.5"))
    assessment = assessment_with([*bank.auto_items(), bank.extended], bank.ratios)
    c = bank.choice
    answer_sets = [
        (c["single_right"].pk, [c["two"].pk, c["four"].pk], "31.4", "co2", 4),
        (c["single_wrong"].pk, [c["two"].pk, c["seven"].pk], "3", "oxygen", 2),
        (None, None, None, None, 0),
        (c["single_right"].pk, [c["two"].pk, c["four"].pk, c["six"].pk], "31.45", "Carbon dioxide", 2),
    ]
    attempts = []
    for single, multiple, numeric, short, grade in answer_sets:
        attempt = services.attempt_start(assessment=assessment, student=StudentFactory())
        for item, answer in (
            (bank.single, single),
            (bank.multiple, multiple),
            (bank.numeric, numeric),
            (bank.short, short),
            (bank.extended, "My explanation"),
        ):
            if answer is not None:
                services.response_save(attempt=attempt, item=item, answer=answer)
        services.attempt_submit(attempt=attempt)
        response = Response.objects.get(attempt=attempt, item=bank.extended)
        services.response_grade(response=response, points=grade, grader=TeacherFactory())
        attempts.append(Attempt.objects.get(pk=attempt.pk))
    ids = sorted(attempt.pk for attempt in attempts)
    submitted = _results_state(ids)
    assert {row[1] for row in submitted[1]} == {bank.ratios.pk, bank.rates.pk, unscaled.pk}
    assert [row[1:] for row in submitted[0]] == [
        (D("10.00"), D("11.00"), True),
        (D("2.00"), D("11.00"), False),
        (D("0.00"), D("11.00"), False),
        (D("9.00"), D("11.00"), True),
    ]
    stale = CompetencyFactory()
    expected_changed = [(attempt.pk, attempt.student_id) for attempt in sorted(attempts, key=lambda a: a.pk)]

    _spoil_results(ids, stale)
    assert rescoring.attempts_recompute(attempt_ids=ids) == expected_changed
    assert _results_state(ids) == submitted
    assert rescoring.attempts_recompute(attempt_ids=ids) == []  # nothing differs: nothing written

    _spoil_results(ids, stale)
    assert rescoring._attempts_recompute_python(attempt_ids=ids) == expected_changed
    assert _results_state(ids) == submitted


def test_a_scoring_only_change_recomputes_only_the_attempts_whose_score_changed(bank, monkeypatch):
    """A new key (not points, alignments or rubric) can change a result only where a score changed."""
    assessment = assessment_with([bank.single], bank.ratios)
    right, wrong = bank.choice["single_right"].pk, bank.choice["single_wrong"].pk
    attempts = [
        take(assessment, StudentFactory(district=bank.student.district), bank.single, answer)
        for answer in (right, None, wrong, None)
    ]
    recomputed: list[list[int]] = []
    original = rescoring.attempts_recompute

    def spy(*, attempt_ids):
        recomputed.append(sorted(attempt_ids))
        return original(attempt_ids=attempt_ids)

    monkeypatch.setattr(rescoring, "attempts_recompute", spy)
    job = services.item_update(
        item=bank.single,
        data={"choices": [{"id": right, "text": "four"}, {"id": wrong, "text": "five", "correct": True}]},
    ).rescore_job
    job = rescoring.rescore_job_run(job_id=job.pk)
    changed_attempts = sorted([attempts[0].pk, attempts[2].pk])
    if connection.vendor == "postgresql":
        assert recomputed == [changed_attempts]
    else:  # the ORM path recomputes every attempt of the batch; unchanged ones are not written
        assert recomputed == [sorted(attempt.pk for attempt in attempts)]
    assert (job.done, job.changed) == (4, 2)
    assert [attempt_state(attempt)[0] for attempt in attempts] == [D("0.00"), D("0.00"), D("1.00"), D("0.00")]

    recomputed.clear()
    job = services.item_update(item=bank.single, data={"max_points": D(2)}).rescore_job
    rescoring.rescore_job_run(job_id=job.pk)  # points changed: every attempt is recomputed
    assert recomputed == [sorted(attempt.pk for attempt in attempts)]


# --- API ------------------------------------------------------------------------------------------


@pytest.fixture
def district_bank(bank):
    """The bank's items owned by the student's district, with staff of that district."""
    Item.objects.update(district=bank.student.district)
    bank.single.refresh_from_db()
    return bank, StaffFactory(district=bank.student.district)


def test_a_patch_that_changes_the_key_answers_with_its_rescore_job(
    district_bank, django_capture_on_commit_callbacks
):
    bank, staff = district_bank
    assessment = assessment_with([bank.single], bank.ratios)
    for answer in (bank.choice["single_right"].pk, bank.choice["single_wrong"].pk):
        take(assessment, StudentFactory(district=bank.student.district), bank.single, answer)
    client = api_client_for(staff)
    url = reverse("item-detail", args=[bank.single.pk])

    stem_only = client.patch(url, {"stem": "Pick it"}, format="json").json()
    assert "rescore_job" not in stem_only

    with django_capture_on_commit_callbacks(execute=True):  # the task runs in process here
        changed = client.patch(
            url,
            {
                "choices": [
                    {"id": bank.choice["single_right"].pk, "text": "four"},
                    {"id": bank.choice["single_wrong"].pk, "text": "five", "correct": True},
                ],
                "reason": "The key named the wrong choice.",
            },
            format="json",
        )
    assert changed.status_code == 200, changed.json()
    job_id = changed.json()["rescore_job"]
    assert changed.json()["key_version"] == 2

    moved = client.patch(url, {"alignments": [{"competency": bank.ratios.pk, "points": "2"}]}, format="json")
    assert moved.json()["key_version"] == 3
    assert moved.json()["rescore_job"] == job_id + 1

    progress = client.get(reverse("rescore-job-detail", args=[job_id]))
    assert progress.status_code == 200
    body = progress.json()
    assert {key: body[key] for key in ("id", "status", "total", "done", "changed", "reason", "items")} == {
        "id": job_id,
        "status": "completed",
        "total": 2,
        "done": 2,
        "changed": 2,
        "reason": "The key named the wrong choice.",
        "items": [bank.single.pk],
    }
    assert {"created_at", "started_at", "finished_at"} <= set(body)
    pending = client.get(reverse("rescore-job-detail", args=[job_id + 1])).json()
    assert (pending["status"], pending["total"], pending["done"]) == ("pending", 2, 0)


def test_rescore_jobs_are_visible_to_their_districts_staff_only(district_bank):
    bank, staff = district_bank
    job = services.item_update(item=bank.single, data={"max_points": D(2)}).rescore_job
    url = reverse("rescore-job-detail", args=[job.pk])
    assert api_client_for(staff).get(url).status_code == 200
    assert api_client_for(StaffFactory()).get(url).status_code == 404
    assert api_client_for(StaffFactory()).get(reverse("rescore-job-detail", args=[999])).status_code == 404
    assert api_client_for(TeacherFactory(district=staff.district)).get(url).status_code == 403
    assert api_client_for(bank.student).get(url).status_code == 403


# --- the command ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_rescore_command_waits_with_a_progress_bar(bank):
    assessment = assessment_with([bank.single], bank.ratios)
    for answer in (bank.choice["single_right"].pk, None, bank.choice["single_wrong"].pk):
        take(assessment, StudentFactory(), bank.single, answer)
    # The key was fixed in the database by hand; the command re-applies it to every response.
    ItemChoice.objects.filter(pk=bank.choice["single_right"].pk).update(is_correct=False)
    ItemChoice.objects.filter(pk=bank.choice["single_wrong"].pk).update(is_correct=True)
    out = StringIO()

    # A transactional test: the job is enqueued on commit and runs in process, as in the demo.
    call_command("rescore", "--item", str(bank.single.pk), "--wait", "--reason", "hand fix", stdout=out)

    job = RescoreJob.objects.get()
    text = out.getvalue()
    assert f"Rescoring job {job.pk} started: 3 responses to rescore." in text
    assert "[" + "#" * 30 + "] 100%     3/3 rescored, 2 changed" in text
    assert f"Job {job.pk} completed: 3 of 3 responses rescored, 2 changed." in text
    assert (job.reason, job.total, job.done, job.changed) == ("hand fix", 3, 3, 2)
    assert Item.objects.get(pk=bank.single.pk).key_version == 2


@pytest.mark.django_db(transaction=True)
def test_rescore_command_for_an_assessment(bank):
    assessment = assessment_with([bank.single, bank.short], bank.ratios)
    take_two = services.attempt_start(assessment=assessment, student=bank.student)
    services.attempt_submit(attempt=take_two)
    out = StringIO()
    call_command("rescore", "--assessment", str(assessment.pk), stdout=out)
    job = RescoreJob.objects.get()
    assert (job.assessment, sorted(job.items.values_list("pk", flat=True))) == (
        assessment,
        sorted([bank.single.pk, bank.short.pk]),
    )
    assert (job.status, job.total, job.done, job.changed) == ("completed", 2, 2, 0)


@pytest.mark.parametrize("argument", ["--item", "--assessment"])
def test_rescore_command_refuses_unknown_ids(db, argument):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("rescore", argument, "424242", stdout=StringIO())


def test_another_frameworks_alignment_is_kept_apart(bank):
    """Alignments to a second framework (another scale) are recomputed with that framework's scale."""
    other = CompetencyFactory(framework=FrameworkFactory())
    ItemAlignment.objects.create(item=bank.numeric, competency=other, points=D(2))
    assessment = assessment_with([bank.numeric], bank.ratios)
    attempt = take(assessment, bank.student, bank.numeric, "31.44")
    job = services.item_update(item=bank.numeric, data={"answer_tolerance": D("0.01")}).rescore_job
    rescoring.rescore_job_run(job_id=job.pk)
    fresh = take(assessment_with([bank.numeric], bank.ratios), StudentFactory(), bank.numeric, "31.44")
    assert attempt_state(attempt)[:3] == attempt_state(fresh)[:3] == (D("0.00"), D("2.00"), False)
    assert attempt_state(attempt)[4] == attempt_state(fresh)[4]


# --- admin ----------------------------------------------------------------------------------------


def test_the_job_admin_shows_progress_who_why_what_changed_and_the_score_changes(bank, client):
    assessment = assessment_with([bank.single], bank.ratios)
    attempts = [
        take(assessment, StudentFactory(), bank.single, answer)
        for answer in (bank.choice["single_right"].pk, bank.choice["single_wrong"].pk)
    ]
    staff = StaffFactory(district=bank.student.district)
    job = services.item_update(
        item=bank.single, data={"max_points": D(3)}, user=staff, reason="Worth more"
    ).rescore_job
    rescoring.rescore_job_run(job_id=job.pk)
    client.force_login(staff)

    listed = client.get(reverse("admin:assessments_rescorejob_changelist"))
    assert listed.status_code == 200
    assert b"width:100%" in listed.content and b"Worth more" in listed.content

    page = client.get(reverse("admin:assessments_rescorejob_change", args=[job.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Worth more" in text and str(staff) in text
    assert "&quot;max_points&quot;" in text  # what changed, before and after
    response = Response.objects.get(attempt=attempts[0])
    assert f"<td>{response.pk}</td>" in text and "1.00 &rarr; 3.00" in text
    assert f"?job__id__exact={job.pk}" in text
    assert 'name="_save"' not in text  # a record of what happened: nothing to edit

    changes = client.get(
        reverse("admin:assessments_responsescorechange_changelist") + f"?job__id__exact={job.pk}"
    )
    assert changes.status_code == 200
