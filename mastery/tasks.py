"""Celery tasks of the top layer: the nightly retention purge (``mastery.privacy.responses_purge``)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from mastery import privacy


@shared_task(
    name="mastery.tasks.responses_purge_nightly",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def responses_purge_nightly() -> int:
    """Idempotent: a second run finds nothing left to purge. Returns the responses purged."""
    return privacy.responses_purge().responses
