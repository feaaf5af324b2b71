"""Celery tasks of intervention flags: the nightly sweep and the teacher's daily digest.

Not ``tasks.py`` (autodiscovered): ``progress.apps.ProgressConfig.ready`` imports this module so the
tasks are registered. Both are idempotent: the sweep recomputes from the source of truth, and the
digest covers the 24 hours before it runs.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from progress import flag_services


@shared_task(
    name="progress.flag_tasks.sweep_flags_nightly",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def sweep_flags_nightly(section_id: int | None = None) -> dict[str, int]:
    """Recompute every student's mastery and flags (queue nightly); returns the counts."""
    result = flag_services.flags_sweep(section_id=section_id)
    return {
        "students": result.students,
        "masteries_changed": result.masteries_changed,
        "flags_opened": result.flags_opened,
        "flags_resolved": result.flags_resolved,
    }


@shared_task(
    name="progress.flag_tasks.teacher_digest_daily",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def teacher_digest_daily() -> int:
    """Email each teacher the flags opened since the last digest (queue nightly); returns emails sent."""
    return flag_services.teacher_digest_send()
