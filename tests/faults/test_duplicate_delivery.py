"""The same task message delivered twice has no double effect: no second evidence row, flag, history
row or score change; the counts a job reports are the same.

First in process (each task applied twice with the same arguments), then through a real worker: the
same message (same task id, as a broker redelivers it) published twice and run twice.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from assessments import services as assessment_services
from assessments import tasks as assessment_tasks
from assessments.models import Attempt, RescoreJob, Response, ResponseScoreChange
from progress import flag_services, reconcile
from progress import services as progress_services
from progress import tasks as progress_tasks
from progress.flag_tasks import sweep_flags_nightly
from progress.models import CompetencyMastery, Evidence, InterventionFlag
from tests.assessments.test_rescore_worker import build_world, key_change_b_is_right, world_state
from tests.faults.support import task_succeeded, wait_until
from tests.faults.test_broker_down import STUDENTS, Room, evidence_state, mastery_state, room
from tests.faults.test_worker_killed import sweep_state, sweep_world
from tests.worker_support import redis_flush

D = Decimal


def submitted_room(tag: str) -> Room:
    """A room whose students all submitted (answers by index), with no recompute run yet."""
    world = room(tag)
    now = timezone.now()
    for index, attempt in enumerate(world.attempts):
        for position, item in enumerate(world.items):
            answer = "5" if (index + position) % 3 else "4"
            assessment_services.response_save(attempt=attempt, item=item, answer=answer, now=now)
        assessment_services.attempt_submit(attempt=attempt, now=now)
    return world


def effects(world: Room) -> dict:
    """Everything a recompute writes for the room's students, history rows included."""
    students = world.students
    return {
        "evidence": evidence_state(world),
        "mastery": mastery_state(world),
        "evidence_history": Evidence.history.filter(student__in=students).count(),
        "mastery_history": CompetencyMastery.history.filter(student__in=students).count(),
        "flags": sorted(
            InterventionFlag.objects.filter(student__in=students).values_list("kind", "status", "reason")
        ),
    }


@pytest.mark.fault
@pytest.mark.django_db
def test_every_task_applied_twice_with_the_same_arguments_has_one_effect():
    world = submitted_room("twice")
    for student in world.students:
        progress_tasks.student_recompute.apply(kwargs={"student_id": student.pk}).get()
    once = effects(world)
    assert len(once["evidence"]) == STUDENTS and once["evidence_history"] == STUDENTS
    for student in world.students:
        assert progress_tasks.student_recompute.apply(kwargs={"student_id": student.pk}).get() == 0
    assert effects(world) == once

    rescored = build_world(400, "twice-rescore")
    job = key_change_b_is_right(rescored, enqueue=False)
    assessment_tasks.rescore_job_run.apply(args=(job.pk,), kwargs={"batch_size": 50}).get()
    first = (RescoreJob.objects.values_list("done", "changed").get(pk=job.pk), world_state(rescored))
    assessment_tasks.rescore_job_run.apply(args=(job.pk,), kwargs={"batch_size": 50}).get()
    assert (RescoreJob.objects.values_list("done", "changed").get(pk=job.pk), world_state(rescored)) == first
    assert first[0] == (400, 200)
    assert ResponseScoreChange.objects.filter(job=job).count() == 200  # one per changed response, once

    swept = sweep_world("twice-sweep", size=40)
    counts = sweep_flags_nightly.apply(kwargs={"section_id": swept.section.pk}).get()
    after_sweep = sweep_state(swept)
    again = sweep_flags_nightly.apply(kwargs={"section_id": swept.section.pk}).get()
    assert sweep_state(swept) == after_sweep
    assert counts["flags_opened"] > 0
    assert (again["masteries_changed"], again["flags_opened"], again["flags_resolved"]) == (0, 0, 0)

    # The rescored world's students have results but no evidence yet: the first run catches them up,
    # the second finds nobody behind.
    first_run = reconcile.progress_reconcile.apply().get()
    evidence_rows = Evidence.objects.count()
    assert first_run["students"] == 100 and evidence_rows > 0
    assert reconcile.progress_reconcile.apply().get() == {
        "students": 0,
        "masteries_changed": 0,
        "rescore_jobs_requeued": 0,
    }
    assert Evidence.objects.count() == evidence_rows


@pytest.mark.fault
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_same_message_delivered_twice_to_a_real_worker_has_one_effect(private_redis, workers):
    world, reference = submitted_room("redelivered"), submitted_room("reference")
    for student in reference.students:  # a clean single run, in process
        progress_services.student_progress_refresh(student_id=student.pk)
    rescored, rescored_reference = (
        build_world(400, "redelivered-rescore"),
        build_world(400, "reference-rescore"),
    )
    job = key_change_b_is_right(rescored, enqueue=False)
    reference_job = key_change_b_is_right(rescored_reference, enqueue=False)
    assessment_tasks.rescore_job_run.apply(args=(reference_job.pk,), kwargs={"batch_size": 50}).get()
    swept, swept_reference = (
        sweep_world("redelivered-sweep", size=40),
        sweep_world("reference-sweep", size=40),
    )
    flag_services.flags_sweep(section_id=swept_reference.section.pk)
    redis_flush(private_redis.url)  # the submits' own recomputes: this test sends its messages itself

    messages = []
    for student in world.students:
        messages.append(f"recompute-{student.pk}")
        for _ in range(2):
            progress_tasks.student_recompute.apply_async(
                kwargs={"student_id": student.pk}, task_id=messages[-1]
            )
    for _ in range(2):
        assessment_tasks.rescore_job_run.apply_async(
            args=(job.pk,), kwargs={"batch_size": 50}, task_id="rescore"
        )
        sweep_flags_nightly.apply_async(kwargs={"section_id": swept.section.pk}, task_id="sweep")
    messages += ["rescore", "sweep"]
    worker = workers()
    wait_until(
        lambda: all(task_succeeded(worker, message) == 2 for message in messages),
        timeout=300,
        interval=0.5,
        what="every message to run twice",
    )

    print(f"\nduplicate delivery: {len(messages)} messages each run twice by a real worker")
    assert Attempt.objects.filter(student__in=world.students, status="completed").count() == STUDENTS
    expected, actual = effects(reference), effects(world)
    assert actual == expected
    assert actual["evidence_history"] == STUDENTS  # each evidence row written once
    finished = RescoreJob.objects.get(pk=job.pk)
    reference_job.refresh_from_db()
    assert (finished.status, finished.done, finished.changed) == ("completed", 400, 200)
    assert (finished.done, finished.changed) == (reference_job.done, reference_job.changed)
    assert ResponseScoreChange.objects.filter(job=job).count() == 200
    assert Response.objects.filter(item=rescored.item, scored_key_version=2).count() == 400
    assert world_state(rescored) == world_state(rescored_reference)
    assert sweep_state(swept) == sweep_state(swept_reference)
