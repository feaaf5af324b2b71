"""A worker killed (``kill -9``) in the middle of a flag sweep and of a rescore: the message comes back
to the restarted worker by itself, the job completes, and the end state equals a clean run on an
identical copy.

Redelivery is Redis's: with ``acks_late`` the killed worker never acknowledged the message, so it
stays in the transport's unacked set; a worker hands it out again once the visibility timeout has
passed (an hour in production; the restarted worker here runs with ``CELERY_VISIBILITY_TIMEOUT=1``,
read by ``mastery.celery``, so it takes the message back as it starts). Nobody re-sends anything.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from assessments import rescoring, tasks
from assessments.models import RescoreJob, Response
from competencies.models import CalculationMethod, PacingGuide, PacingTarget
from progress import flag_services
from progress.flag_tasks import sweep_flags_nightly
from progress.models import CompetencyMastery, Evidence, InterventionFlag
from roster.models import Enrollment, Section, User
from tests.assessments.test_rescore_worker import build_world, key_change_b_is_right, world_state
from tests.factories import CompetencyFactory, FrameworkFactory, SectionFactory, TeacherFactory
from tests.faults.support import task_succeeded, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SWEEP_STUDENTS = 240
#: One time for every copy built by this module, so that two copies hold the same evidence times.
BASE_TIME = timezone.now().replace(second=0, microsecond=0)
_source_ids = itertools.count(5_000_000)
MASTERY_FIELDS = (
    "state", "score", "level_name", "evidence_count", "failed_checks", "mastered_at", "last_activity_at",
    "explanation",
)  # fmt: skip


@dataclass
class SweepWorld:
    section: Section
    students: list[User]
    competencies: list


def sweep_world(tag: str, size: int = SWEEP_STUDENTS) -> SweepWorld:
    """A section of ``size`` students on a four-competency pacing guide; student ``i`` has
    ``i % 4`` mastery-check results, some met, over the last weeks, and no stored mastery yet."""
    section = SectionFactory(title="Sweep")  # the same names in both copies: reasons quote them
    district = section.school.district
    framework = FrameworkFactory(district=district, calculation_method=CalculationMethod.LATEST)
    competencies = [
        CompetencyFactory(framework=framework, code=f"S.{index}", statement=f"Skill {index}")
        for index in range(4)
    ]
    guide = PacingGuide.objects.create(section=section, framework=framework)
    today = timezone.localdate()
    PacingTarget.objects.bulk_create(
        PacingTarget(guide=guide, competency=competency, target_date=today + timedelta(days=30 * index - 45))
        for index, competency in enumerate(competencies)
    )
    teacher = TeacherFactory(district=district)
    Enrollment.objects.create(section=section, user=teacher, role=Enrollment.Role.TEACHER)
    students = User.objects.bulk_create(
        User(
            username=f"{tag}-{index}",
            first_name=f"S{index:03d}",
            last_name=tag,
            role=User.Role.STUDENT,
            district=district,
            password="!",
        )
        for index in range(size)
    )
    Enrollment.objects.bulk_create(
        Enrollment(section=section, user=student, role=Enrollment.Role.STUDENT) for student in students
    )
    now = BASE_TIME
    Evidence.objects.bulk_create(
        Evidence(
            student=student,
            competency=competencies[check % 2],
            source=Evidence.Source.ATTEMPT,
            source_id=next(_source_ids),
            is_summative=True,
            score=Decimal(3 if (index + check) % 3 == 0 else 1),
            is_correct=(index + check) % 3 == 0,
            observed_at=now - timedelta(days=20 - 3 * check, hours=index % 7),
        )
        for index, student in enumerate(students)
        for check in range(index % 4)
    )
    return SweepWorld(section=section, students=students, competencies=competencies)


def sweep_state(world: SweepWorld) -> dict:
    """Masteries and flags keyed by the student's and competency's rank, to compare two copies."""
    student_rank = {student.pk: rank for rank, student in enumerate(world.students)}
    competency_rank = {competency.pk: rank for rank, competency in enumerate(world.competencies)}
    return {
        "masteries": sorted(
            (student_rank[student_id], competency_rank[competency_id], *rest)
            for student_id, competency_id, *rest in CompetencyMastery.objects.filter(
                student__in=world.students
            ).values_list("student_id", "competency_id", *MASTERY_FIELDS)
        ),
        "flags": sorted(
            (student_rank[student_id], competency_rank.get(competency_id, -1), kind, status, reason)
            for student_id, competency_id, kind, status, reason in InterventionFlag.objects.filter(
                student__in=world.students
            ).values_list("student_id", "competency_id", "kind", "status", "reason")
        ),
        "evidence": Evidence.objects.filter(student__in=world.students).count(),
    }


def test_a_worker_killed_mid_sweep_completes_on_restart_as_a_clean_run(workers):
    interrupted, reference = sweep_world("killed"), sweep_world("clean")
    flag_services.flags_sweep(section_id=reference.section.pk)  # uninterrupted, in process
    expected = sweep_state(reference)
    # Sparse storage (``progress.grid``): the stored rows are those with something to say, 300 of the
    # 960 (student, competency) pairs; the others are derived on read.
    rows = len(expected["masteries"])
    assert rows == 300 and SWEEP_STUDENTS * 4 == 960 and expected["flags"]

    worker = workers()
    message = sweep_flags_nightly.delay(section_id=interrupted.section.pk)
    masteries = CompetencyMastery.objects.filter(student__in=interrupted.students)
    wait_until(lambda: masteries.count() >= rows // 4, interval=0.005, what="a quarter of the sweep")
    worker.kill()

    done_at_kill = masteries.count()
    assert 0 < done_at_kill < rows  # killed mid-sweep
    assert task_succeeded(worker, message.id) == 0

    restarted = workers(CELERY_VISIBILITY_TIMEOUT="1")  # takes the unacknowledged message back
    wait_until(lambda: task_succeeded(restarted, message.id), what="the redelivered sweep")

    print(f"\nsweep killed after {done_at_kill} of {rows} mastery rows; redelivered and completed")
    assert sweep_state(interrupted) == expected


def test_a_worker_killed_mid_rescore_completes_on_restart_as_a_clean_run(workers):
    count, batch_size = 4_000, 50
    interrupted, reference = build_world(count, "fault-killed"), build_world(count, "fault-clean")
    reference_job = key_change_b_is_right(reference, enqueue=False)
    rescoring.rescore_job_run(job_id=reference_job.pk, batch_size=batch_size)  # uninterrupted
    reference_job.refresh_from_db()

    job = key_change_b_is_right(interrupted, enqueue=False)
    worker = workers()
    message = tasks.rescore_job_run.delay(job.pk, batch_size=batch_size)
    wait_until(
        lambda: 0 < RescoreJob.objects.get(pk=job.pk).done < count // 4,
        interval=0.005,
        what="the first batches",
    )
    worker.kill()

    stuck = RescoreJob.objects.get(pk=job.pk)
    assert stuck.status == RescoreJob.Status.RUNNING
    assert 0 < stuck.done < count
    # no half batch survives the kill: what the data says is done is what the job says
    assert Response.objects.filter(item=interrupted.item, scored_key_version=2).count() == stuck.done

    restarted = workers(CELERY_VISIBILITY_TIMEOUT="1")
    wait_until(lambda: task_succeeded(restarted, message.id), what="the redelivered rescore")

    finished = RescoreJob.objects.get(pk=job.pk)
    print(f"\nrescore killed after {stuck.done} of {count} responses; redelivered and completed")
    assert (finished.status, finished.total, finished.done, finished.changed) == (
        RescoreJob.Status.COMPLETED,
        reference_job.total,
        reference_job.done,
        reference_job.changed,
    )
    assert (finished.total, finished.changed) == (count, count // 2)
    assert world_state(interrupted) == world_state(reference)
