"""End to end through the HTTP API: a scripted history raises and clears flags, and a rescore that takes a
mastered prerequisite below mastery re-locks only what the student has not started (issue 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from assessments.models import Attempt, RescoreJob
from competencies.models import CalculationMethod, PacingGuide
from progress.flag_services import flags_sweep
from progress.models import CompetencyMastery, Evidence, InterventionFlag
from roster.models import Enrollment
from tests.assessments.conftest import api_client_for, assessment_with
from tests.factories import (
    CompetencyFactory,
    DistrictFactory,
    EnrollmentFactory,
    FrameworkFactory,
    ItemFactory,
    PrerequisiteFactory,
    SectionFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)
from tests.progress.flag_helpers import NOW, at, classroom

pytestmark = pytest.mark.django_db

Status = InterventionFlag.Status
RIGHT, WRONG = "4", "5"  # ItemFactory's short-text items accept "4"


def take(client, assessment, answer: str) -> int:
    """Start the check, answer every item on the form with ``answer`` and submit; the attempt's id."""
    started = client.post(reverse("attempt-start", args=[assessment.pk]))
    assert started.status_code == 201, started.json()
    attempt = started.json()
    for item in attempt["items"]:
        saved = client.put(
            reverse("attempt-response", args=[attempt["id"], item["id"]]), {"answer": answer}, format="json"
        )
        assert saved.status_code == 200, saved.json()
    submitted = client.post(reverse("attempt-submit", args=[attempt["id"]]))
    assert submitted.status_code == 200, submitted.json()
    assert submitted.json()["status"] == "completed"
    return attempt["id"]


def move_to(attempt_id: int, submitted_at) -> None:
    """Time passing: the API ran on the real clock, so the attempt (and its evidence, if the recompute
    already recorded it) is moved to when the script says the student did the work."""
    Attempt.objects.filter(pk=attempt_id).update(
        started_at=submitted_at - timedelta(minutes=5), submitted_at=submitted_at, completed_at=submitted_at
    )
    Evidence.objects.filter(source=Evidence.Source.ATTEMPT, source_id=attempt_id).update(
        observed_at=submitted_at
    )


def open_flags(student) -> dict:
    return {
        (flag.kind, flag.competency.code if flag.competency else None): flag.reason
        for flag in InterventionFlag.objects.filter(student=student).exclude(status=Status.RESOLVED)
    }


def snapshot(student) -> tuple[list, list]:
    flags = list(
        InterventionFlag.objects.filter(student=student)
        .order_by("pk")
        .values_list(
            "pk", "kind", "competency_id", "status", "reason", "suggestion", "resolution_note", "updated_at"
        )
    )
    masteries = list(
        CompetencyMastery.objects.filter(student=student)
        .order_by("pk")
        .values_list("pk", "state", "score", "level_points", "mastered_at", "explanation", "computed_at")
    )
    return flags, masteries


def test_scripted_history_through_the_api_opens_exactly_the_expected_flags_then_clears_stuck():
    # A section (Math 6A) with a pacing guide over 6.RP.A.1 .. 6.RP.A.4 (due 1 Feb, 15 Feb, 1 Mar, 1 Apr
    # 2027), a framework on the four-level scale (3 = mastery, method: latest), a lesson on 6.RP.A.1.
    room = classroom(1)
    student, first = room.students[0], room.competencies[0]
    check = assessment_with([ItemFactory(aligned_to=first)], first, cooldown_hours=0)
    client = api_client_for(student)

    # The student fails the mastery check twice through the API, then stops working. The on-commit
    # recompute does not run inside the test transaction (it would run on the real clock): the nightly
    # sweep below reconciles the attempts' evidence and recomputes, as it does for any missed event.
    failed = [take(client, check, WRONG), take(client, check, WRONG)]
    assert list(Attempt.objects.filter(pk__in=failed).values_list("score", flat=True)) == [0, 0]
    # Time passing: the two attempts were on 2 and 4 March 2027; "today" is Monday 15 March, after the
    # pacing targets of 1 Feb, 15 Feb and 1 Mar.
    move_to(failed[0], at(3, 2))
    move_to(failed[1], at(3, 4))

    flags_sweep(now=NOW)

    assert open_flags(student) == {
        (
            "stuck",
            "6.RP.A.1",
        ): "failed the mastery check for 6.RP.A.1 twice (2 Mar, 4 Mar) and has been on it 13 days",
        ("inactive", None): "no activity for 7 school days (last on 4 Mar)",
        (
            "behind_pace",
            None,
        ): "has mastered 0 of the 3 competencies Math 6A's pacing guide expects by 15 Mar (3 behind)",
        ("predicted_miss", "6.RP.A.4"): (
            "has mastered none of Math 6A's pacing targets since starting on 2 Mar; 6.RP.A.4 is due 1 Apr"
        ),
    }
    stuck = InterventionFlag.objects.get(student=student, kind="stuck")
    assert stuck.suggestion == "Re-watch “Ratios with tape diagrams” (https://example.org/ratios)"
    assert stuck.opened_at == NOW
    assert CompetencyMastery.objects.get(student=student, competency=first).state == "in_progress"

    # The student comes back on Tuesday 16 March and passes the check through the API.
    passed = take(client, check, RIGHT)
    move_to(passed, at(3, 16))
    flags_sweep(now=NOW + timedelta(days=1))

    stuck.refresh_from_db()
    assert (stuck.status, stuck.is_auto_resolved, stuck.resolved_by, stuck.resolution_note) == (
        Status.RESOLVED,
        True,
        None,
        "cleared: mastered 6.RP.A.1 on 16 Mar",
    )
    inactive = InterventionFlag.objects.get(student=student, kind="inactive")
    assert (inactive.status, inactive.is_auto_resolved, inactive.resolution_note) == (
        Status.RESOLVED,
        True,
        "cleared: activity resumed on 16 Mar",
    )
    assert open_flags(student) == {
        (
            "behind_pace",
            None,
        ): "has mastered 1 of the 3 competencies Math 6A's pacing guide expects by 16 Mar (2 behind)",
        ("predicted_miss", "6.RP.A.4"): (
            "at 0.5 competencies a week (1 mastered since 2 Mar), 6.RP.A.4 due 1 Apr would be reached around 27 Apr"
        ),
    }
    mastery = CompetencyMastery.objects.get(student=student, competency=first)
    assert (mastery.state, mastery.mastered_at) == ("mastered", at(3, 16))

    # The sweep, run twice more the same day, changes nothing: no row, no value, no updated_at.
    before = snapshot(student)
    evidence_before = list(
        Evidence.objects.order_by("pk").values_list("pk", "score", "observed_at", "recorded_at")
    )
    for _ in range(2):
        result = flags_sweep(now=NOW + timedelta(days=1))
        assert (result.masteries_changed, result.flags_opened, result.flags_resolved) == (0, 0, 0)
        assert snapshot(student) == before
    assert (
        list(Evidence.objects.order_by("pk").values_list("pk", "score", "observed_at", "recorded_at"))
        == evidence_before
    )


def test_a_rescore_below_mastery_regresses_and_relocks_only_what_was_not_started(
    django_capture_on_commit_callbacks,
):
    district = DistrictFactory()
    framework = FrameworkFactory(district=district, calculation_method=CalculationMethod.LATEST)
    a, b, c = (
        CompetencyFactory(framework=framework, code=code, statement=code, position=position)
        for position, code in enumerate(["7.A", "7.B", "7.C"], start=1)
    )
    PrerequisiteFactory(prerequisite=a, competency=b)
    PrerequisiteFactory(prerequisite=a, competency=c)
    section = SectionFactory(school__district=district)
    PacingGuide.objects.create(section=section, framework=framework)
    teacher, student = TeacherFactory(district=district), StudentFactory(district=district)
    EnrollmentFactory(section=section, user=teacher, role=Enrollment.Role.TEACHER)
    EnrollmentFactory(section=section, user=student, role=Enrollment.Role.STUDENT)
    item_a = ItemFactory(district=district, aligned_to=a)
    check_a = assessment_with([item_a], a)
    check_b = assessment_with([ItemFactory(district=district, aligned_to=b)], b)
    client = api_client_for(student)

    def states() -> dict[str, str]:
        response = client.get(reverse("my-path"))
        assert response.status_code == 200
        return {row["code"]: row["state"] for row in response.json()}

    # The student masters A, then starts B (one attempt, not yet met); C stays untouched. The recompute
    # runs after each commit, as in production.
    with django_capture_on_commit_callbacks(execute=True):
        take(client, check_a, RIGHT)
    assert states() == {"7.A": "mastered", "7.B": "ready", "7.C": "ready"}
    with django_capture_on_commit_callbacks(execute=True):
        take(client, check_b, WRONG)
    assert states() == {"7.A": "mastered", "7.B": "in_progress", "7.C": "ready"}

    # Staff change A's key so that the student's answer becomes wrong: the response names the rescoring
    # job, which runs after commit, and the recompute follows it.
    staff = api_client_for(StaffFactory(district=district))
    with django_capture_on_commit_callbacks(execute=True):
        patched = staff.patch(reverse("item-detail", args=[item_a.pk]), {"accepted": [WRONG]}, format="json")
    assert patched.status_code == 200, patched.json()
    # The job ran eagerly from its on-commit callback (Celery is eager in tests), then the recompute.
    job = RescoreJob.objects.get(pk=patched.json()["rescore_job"])
    assert (job.status, job.total) == (RescoreJob.Status.COMPLETED, 1)
    assert Attempt.objects.get(assessment=check_a).score == 0

    # The documented rule (progress.services.mastery_recompute): A goes back to in progress, B keeps its
    # state because the student started it, C (never started) is locked again.
    assert states() == {"7.A": "in_progress", "7.B": "in_progress", "7.C": "locked"}

    response = api_client_for(teacher).get("/api/v1/flags/?status=open")
    assert response.status_code == 200
    regressed = [row for row in response.json() if row["kind"] == "regressed"]
    assert [(row["student"], row["competency"], row["status"], row["reason"]) for row in regressed] == [
        (student.pk, a.pk, "open", "the mastery level for 7.A dropped from 4 to none (no longer mastered)")
    ]
