"""The nightly item statistics task (imported by ``AssessmentsConfig.ready``: autodiscovery only
imports ``tasks.py``)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from assessments import item_statistics


@shared_task(
    name="assessments.item_statistics_refresh",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def item_statistics_refresh() -> int:
    """Recompute every item's facility and discrimination; idempotent (an upsert per item)."""
    return item_statistics.item_statistics_refresh()
