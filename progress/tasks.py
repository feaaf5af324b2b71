"""Celery tasks of the progress app: take ids, call one service. Idempotent, enqueued after commit."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from progress import services


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def student_recompute(student_id: int) -> int:
    """Reconcile the student's evidence, recompute their mastery and refresh their flags (queue live).

    Returns the number of mastery changes.
    """
    return len(services.student_progress_refresh(student_id=student_id))


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def bkt_fit_all(min_students: int | None = None) -> int:
    """Nightly: fit BKT parameters for every competency that uses BKT (queue nightly).

    Returns the number of competencies fitted.
    """
    arguments = {} if min_students is None else {"min_students": min_students}
    return len(services.bkt_parameters_fit_all(**arguments))


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def district_recompute(framework_ids: list[int] | None = None) -> int:
    """Recompute every student's mastery of every competency at once (queue bulk; ``progress.district``).

    Returns the number of mastery rows written.
    """
    from progress.district import district_recompute as recompute

    return recompute(framework_ids=framework_ids).written
