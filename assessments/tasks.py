"""Celery tasks of the assessments app: take ids, call one service, nothing else."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from assessments import rescoring


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def rescore_job_run(job_id: int, batch_size: int | None = None) -> None:
    """Run or resume one rescoring job (queue ``bulk``); safe to run again, it resumes from the data."""
    rescoring.rescore_job_run(job_id=job_id, batch_size=batch_size)
