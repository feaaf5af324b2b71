"""Intervention flags from a scripted history: raised with their reasons, cleared by themselves, never
duplicated, and the teacher's actions audited."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from progress import flag_services, services
from progress.models import FlagThresholds, InterventionFlag
from tests.progress.flag_helpers import NOW, at, check, classroom, mastery

pytestmark = pytest.mark.django_db

Kind = InterventionFlag.Kind
Status = InterventionFlag.Status


def open_flags(student):
    return {
        (flag.kind, flag.competency.code if flag.competency else None): flag.reason
        for flag in InterventionFlag.objects.filter(student=student).exclude(status=Status.RESOLVED)
    }


def refresh(student, now=NOW):
    """What the recompute task does: mastery from the evidence, then the flags."""
    return services.student_progress_refresh(student_id=student.pk, now=now)


def test_fail_twice_stop_working_fall_behind_then_master():
    room = classroom(1)
    student, (first, *_rest) = room.students[0], room.competencies
    check(student, first, at(3, 2))
    check(student, first, at(3, 4))

    refresh(student)

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
    stuck = InterventionFlag.objects.get(student=student, kind=Kind.STUCK)
    assert stuck.suggestion == "Re-watch “Ratios with tape diagrams” (https://example.org/ratios)"
    assert stuck.opened_at == NOW

    # The student comes back on Tuesday and passes the check.
    check(student, first, at(3, 16), score="3", met=True)
    refresh(student, now=NOW + timedelta(days=1))

    stuck.refresh_from_db()
    assert (stuck.status, stuck.is_auto_resolved, stuck.resolution_note) == (
        Status.RESOLVED,
        True,
        "cleared: mastered 6.RP.A.1 on 16 Mar",
    )
    inactive = InterventionFlag.objects.get(student=student, kind=Kind.INACTIVE)
    assert inactive.resolution_note == "cleared: activity resumed on 16 Mar"
    assert open_flags(student) == {
        (
            "behind_pace",
            None,
        ): "has mastered 1 of the 3 competencies Math 6A's pacing guide expects by 16 Mar (2 behind)",
        ("predicted_miss", "6.RP.A.4"): (
            "at 0.5 competencies a week (1 mastered since 2 Mar), 6.RP.A.4 due 1 Apr would be reached around 27 Apr"
        ),
    }


def test_raising_twice_makes_one_row_and_changes_nothing():
    room = classroom(1)
    student, first = room.students[0], room.competencies[0]
    check(student, first, at(3, 2))
    check(student, first, at(3, 4))
    refresh(student)
    before = list(InterventionFlag.objects.order_by("pk").values_list("pk", "status", "reason", "updated_at"))

    result = flag_services.flags_refresh_for_student(student_id=student.pk, now=NOW)

    assert (result.opened, result.resolved, result.updated) == ([], [], [])
    assert (
        list(InterventionFlag.objects.order_by("pk").values_list("pk", "status", "reason", "updated_at"))
        == before
    )


def test_a_direct_duplicate_insert_is_refused_by_the_database():
    room = classroom(1)
    student, first = room.students[0], room.competencies[0]
    values = {"student": student, "reason": "r", "suggestion": "s", "opened_at": NOW}
    InterventionFlag.objects.create(kind=Kind.STUCK, competency=first, **values)
    InterventionFlag.objects.create(kind=Kind.INACTIVE, **values)
    with pytest.raises(IntegrityError), transaction.atomic():
        InterventionFlag.objects.create(
            kind=Kind.STUCK, competency=first, status=Status.ACKNOWLEDGED, **values
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        InterventionFlag.objects.create(kind=Kind.INACTIVE, **values)
    # A resolved one does not count: the flag may be raised again later.
    InterventionFlag.objects.create(kind=Kind.STUCK, competency=first, status=Status.RESOLVED, **values)


def test_thresholds_come_from_the_students_district():
    room = classroom(1)
    student, first = room.students[0], room.competencies[0]
    FlagThresholds.objects.create(
        district=student.district,
        stuck_failed_checks=3,
        stuck_days=30,
        inactive_school_days=10,
        behind_pace_margin=3,
    )
    check(student, first, at(3, 2))
    check(student, first, at(3, 4))
    refresh(student)
    assert set(open_flags(student)) == {("predicted_miss", "6.RP.A.4")}


def test_prerequisite_gap_names_the_overridden_prerequisite():
    room = classroom(1)
    student, (first, second, *_) = room.students[0], room.competencies
    from tests.factories import PrerequisiteFactory

    PrerequisiteFactory(prerequisite=first, competency=second)
    mastery(
        student,
        first,
        state="mastered",
        score="3",
        level_points="3",
        is_overridden=True,
        mastered_at=at(3, 1),
    )
    mastery(student, second, state="in_progress", first_activity_at=at(3, 12), failed_checks=1)
    check(student, second, at(3, 12))
    flag_services.flags_refresh_for_student(student_id=student.pk, now=NOW)
    gap = InterventionFlag.objects.get(student=student, kind=Kind.PREREQUISITE_GAP)
    assert gap.competency == second
    assert gap.reason == (
        "failed the mastery check for 6.RP.A.2 (12 Mar) and its prerequisite 6.RP.A.1 was mastered by a teacher override"
    )
    assert (
        gap.suggestion
        == "Revisit 6.RP.A.1: re-watch “Ratios with tape diagrams” (https://example.org/ratios)"
    )


def test_a_lowered_level_raises_regressed_until_it_recovers():
    room = classroom(1)
    student, first = room.students[0], room.competencies[0]
    check(student, first, at(3, 12), score="3", met=True)
    refresh(student)
    # A rescore lowers the check below mastery: the recompute reports the drop.
    evidence = student.evidence.get()
    evidence.score, evidence.is_correct = 2, False
    evidence.save()
    changes = refresh(student)
    assert [(c.old_level_points, c.new_level_points) for c in changes if c.competency_id == first.pk] == [
        (3, 2)
    ]
    regressed = InterventionFlag.objects.get(student=student, kind=Kind.REGRESSED)
    assert regressed.reason == "the mastery level for 6.RP.A.1 dropped from 3 to 2 (no longer mastered)"
    refresh(student)  # no new change: the flag stays while the level is below 3
    regressed.refresh_from_db()
    assert regressed.status == Status.OPEN

    check(student, first, at(3, 15, 9), score="3", met=True)
    refresh(student)
    regressed.refresh_from_db()
    assert (regressed.status, regressed.resolution_note) == (
        Status.RESOLVED,
        "cleared: the level for 6.RP.A.1 recovered to 3",
    )


def test_teacher_actions_store_who_and_the_note_with_history():
    room = classroom(1)
    student, teacher, first = room.students[0], room.teacher, room.competencies[0]
    check(student, first, at(3, 2))
    check(student, first, at(3, 4))
    refresh(student)
    stuck = InterventionFlag.objects.get(student=student, kind=Kind.STUCK)

    flag_services.flag_acknowledge(flag=stuck, user=teacher, note="Seeing her Tuesday")
    stuck.refresh_from_db()
    assert (stuck.status, stuck.resolved_by, stuck.resolution_note) == (
        Status.ACKNOWLEDGED,
        teacher,
        "Seeing her Tuesday",
    )
    assert stuck.history.first().history_user == teacher

    with pytest.raises(ValidationError):
        flag_services.flag_snooze(flag=stuck, user=teacher, until=date(2027, 3, 15), now=NOW)
    flag_services.flag_snooze(
        flag=stuck, user=teacher, until=date(2027, 3, 17), note="After the quiz", now=NOW
    )
    stuck.refresh_from_db()
    assert (stuck.status, stuck.snoozed_until, stuck.resolution_note) == (
        Status.SNOOZED,
        date(2027, 3, 17),
        "After the quiz",
    )

    # Still snoozed on its last day; reopened by the first refresh after it.
    flag_services.flags_refresh_for_student(student_id=student.pk, now=NOW + timedelta(days=2))
    stuck.refresh_from_db()
    assert stuck.status == Status.SNOOZED
    result = flag_services.flags_refresh_for_student(student_id=student.pk, now=NOW + timedelta(days=3))
    stuck.refresh_from_db()
    assert (stuck.status, stuck.snoozed_until, result.reopened) == (Status.OPEN, None, [stuck.pk])

    flag_services.flag_resolve(flag=stuck, user=teacher, note="Retaught in a small group", now=NOW)
    stuck.refresh_from_db()
    assert (stuck.status, stuck.is_auto_resolved, stuck.resolved_by, stuck.resolution_note) == (
        Status.RESOLVED,
        False,
        teacher,
        "Retaught in a small group",
    )
    with pytest.raises(ValidationError):
        flag_services.flag_acknowledge(flag=stuck, user=teacher)

    # Resolved by hand: not raised again while nothing new happens; a third failed check raises it again.
    flag_services.flags_refresh_for_student(student_id=student.pk, now=NOW)
    assert not InterventionFlag.objects.filter(student=student, kind=Kind.STUCK, status=Status.OPEN).exists()
    check(student, first, at(3, 15, 9))
    refresh(student)
    again = InterventionFlag.objects.get(student=student, kind=Kind.STUCK, status=Status.OPEN)
    assert again.reason.startswith("failed the mastery check for 6.RP.A.1 3 times (2 Mar, 4 Mar, 15 Mar)")


def test_stuck_suggestion_names_the_peers_stuck_on_the_same_competency():
    room = classroom(3, names=[("Ana", "Ruiz"), ("Ben", "Ode"), ("Cy", "Lee")])
    first = room.competencies[0]
    for student in room.students[:2]:
        check(student, first, at(3, 10))
        check(student, first, at(3, 12))
        services.mastery_recompute(student_id=student.pk, now=NOW)
    flag_services.flags_refresh_for_students(student_ids=[s.pk for s in room.students], now=NOW)
    ana = InterventionFlag.objects.get(student=room.students[0], kind=Kind.STUCK)
    assert ana.suggestion == (
        "Re-watch “Ratios with tape diagrams” (https://example.org/ratios); "
        "small group with Ben Ode (also stuck on 6.RP.A.1)"
    )
    assert ana.suggestion_data["peers"] == [{"id": room.students[1].pk, "name": "Ben Ode"}]


def test_digest_one_email_per_teacher_with_the_new_flags(mailoutbox):
    room = classroom(1, names=[("Ana", "Ruiz")])
    student, first = room.students[0], room.competencies[0]
    check(student, first, at(3, 2))
    check(student, first, at(3, 4))
    refresh(student)
    other = classroom(1)  # another section, another teacher, no flags yet

    assert flag_services.teacher_digest_send(now=NOW + timedelta(hours=15)) == 1
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["teacher@example.org"]
    assert message.subject == "4 new intervention flags (16 Mar)"
    assert "- Ana Ruiz: Stuck on 6.RP.A.1\n  Why: failed the mastery check for 6.RP.A.1 twice" in message.body
    assert "  Next: Re-watch “Ratios with tape diagrams” (https://example.org/ratios)" in message.body
    assert other.teacher.email == "teacher@example.org"

    # The next day: nothing new, no email.
    assert flag_services.teacher_digest_send(now=NOW + timedelta(days=1, hours=15)) == 0
    assert len(mailoutbox) == 1


def test_stuck_needs_at_least_one_failed_check():
    """Zero would flag every ready competency as stuck (and blank ones are not stored to be flagged)."""
    room = classroom(1)
    thresholds = FlagThresholds(district=room.section.school.district, stuck_failed_checks=0)
    with pytest.raises(ValidationError) as error:
        thresholds.full_clean()
    assert error.value.message_dict == {
        "stuck_failed_checks": ["Ensure this value is greater than or equal to 1."]
    }
    thresholds.stuck_failed_checks = 1
    thresholds.full_clean()
