"""Receivers of what lower layers announce. They only schedule work after commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.dispatch import receiver

from assessments import signals
from progress import services


@receiver(signals.attempt_scored, dispatch_uid="progress.schedule_recompute_on_attempt_scored")
def schedule_recompute_on_attempt_scored(*, student_id: int, **_: object) -> None:
    """An attempt was completed or regraded: recompute that student after commit (merged per transaction)."""
    services.recompute_schedule(student_ids=[student_id])


@receiver(signals.attempts_rescored, dispatch_uid="progress.schedule_recompute_on_attempts_rescored")
def schedule_recompute_on_attempts_rescored(*, student_ids: Iterable[int] = (), **_: object) -> None:
    """A rescoring batch changed attempts: recompute each affected student once after commit. The task
    reconciles all of the student's attempt evidence, so the attempt ids are not needed."""
    services.recompute_schedule(student_ids=student_ids)
