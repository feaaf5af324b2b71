"""The nightly sweep: recompute mastery and flags for every student; running it twice changes nothing."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from progress import flag_services
from progress.flag_tasks import sweep_flags_nightly, teacher_digest_daily
from progress.models import CompetencyMastery, InterventionFlag
from tests.progress.flag_helpers import NOW, at, check, classroom

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        list(
            InterventionFlag.objects.order_by("pk").values_list(
                "pk", "kind", "status", "reason", "updated_at"
            )
        ),
        list(CompetencyMastery.objects.order_by("pk").values_list("pk", "state", "score", "computed_at")),
    )


def test_sweep_raises_the_expected_flags_and_twice_changes_nothing():
    room = classroom(2, names=[("Ana", "Ruiz"), ("Ben", "Ode")])
    ana = room.students[0]
    check(ana, room.competencies[0], at(3, 2))
    check(ana, room.competencies[0], at(3, 4))

    result = flag_services.flags_sweep(now=NOW)

    assert (result.students, result.flags_opened, result.flags_resolved) == (2, 6, 0)
    # One new stored row: Ana's first competency; the other seven are blank (``progress.grid``).
    assert result.masteries_changed == 1
    flags = {
        (flag.student.first_name, flag.kind, flag.competency.code if flag.competency else None): flag.reason
        for flag in InterventionFlag.objects.select_related("student", "competency")
    }
    assert flags == {
        (
            "Ana",
            "stuck",
            "6.RP.A.1",
        ): "failed the mastery check for 6.RP.A.1 twice (2 Mar, 4 Mar) and has been on it 13 days",
        ("Ana", "inactive", None): "no activity for 7 school days (last on 4 Mar)",
        (
            "Ana",
            "behind_pace",
            None,
        ): "has mastered 0 of the 3 competencies Math 6A's pacing guide expects by 15 Mar (3 behind)",
        ("Ana", "predicted_miss", "6.RP.A.4"): (
            "has mastered none of Math 6A's pacing targets since starting on 2 Mar; 6.RP.A.4 is due 1 Apr"
        ),
        # Ben never started: inactive since the term began (24 Aug 2026), and behind pace.
        ("Ben", "inactive", None): "no activity yet: 145 school days since 24 Aug",
        (
            "Ben",
            "behind_pace",
            None,
        ): "has mastered 0 of the 3 competencies Math 6A's pacing guide expects by 15 Mar (3 behind)",
    }
    before = snapshot()

    again = flag_services.flags_sweep(now=NOW)

    assert again == flag_services.SweepResult(
        students=2, masteries_changed=0, flags_opened=0, flags_resolved=0
    )
    assert snapshot() == before


def test_sweep_of_one_section_and_the_resolution_on_mastery():
    room, other = classroom(1), classroom(1)
    student = room.students[0]
    check(student, room.competencies[0], at(3, 2))
    check(student, room.competencies[0], at(3, 4))
    assert flag_services.flags_sweep(section_id=room.section.pk, now=NOW).students == 1
    assert not InterventionFlag.objects.filter(student=other.students[0]).exists()

    check(student, room.competencies[0], at(3, 15, 9), score="3", met=True)
    result = flag_services.flags_sweep(section_id=room.section.pk, now=NOW)

    assert (result.flags_opened, result.flags_resolved) == (0, 2)
    resolved = InterventionFlag.objects.filter(status="resolved").order_by("kind")
    assert [(flag.kind, flag.is_auto_resolved, flag.resolution_note) for flag in resolved] == [
        ("inactive", True, "cleared: activity resumed on 15 Mar"),
        ("stuck", True, "cleared: mastered 6.RP.A.1 on 15 Mar"),
    ]


def test_sweep_flags_command_prints_the_counts_and_refuses_an_unknown_section(capsys):
    room = classroom(1)
    call_command("sweep_flags", "--section", str(room.section.pk))
    output = capsys.readouterr().out
    assert output.startswith("students: 1, masteries changed: 0, flags opened: ")
    assert output.strip().endswith("flags resolved: 0")
    with pytest.raises(CommandError, match="No section with id 999999"):
        call_command("sweep_flags", "--section", "999999")


def test_tasks_run_the_sweep_and_the_digest(mailoutbox):
    room = classroom(1)
    counts = sweep_flags_nightly.delay().get()
    assert counts["students"] == 1
    assert teacher_digest_daily.delay().get() == 1  # the flags just opened, to the one teacher
    assert mailoutbox[0].to == [room.teacher.email]


@pytest.mark.parametrize("size", [3, 30])
def test_flag_refresh_query_count_is_flat(django_assert_num_queries, size):
    room = classroom(size)
    for student in room.students:
        check(student, room.competencies[0], at(3, 2))
        check(student, room.competencies[0], at(3, 4))
    flag_services.flags_sweep(now=NOW)
    ids = [student.pk for student in room.students]
    # Lock (with thresholds and last activity), enrolments, flags, masteries (with their failed
    # checks), pacing targets, catalogue, the stuck classmates; nothing differs, so nothing is
    # written. Inside the test's transaction: no savepoint, no commit setting of its own. Elsewhere
    # than PostgreSQL the ORM path (``progress.flag_portable``) reads them in 20, as flat.
    with django_assert_num_queries(7 if connection.vendor == "postgresql" else 20):
        result = flag_services.flags_refresh_for_students(student_ids=ids, now=NOW)
    assert (result.opened, result.resolved, result.updated) == ([], [], [])
