"""Receivers of what lower layers announce. They only schedule work after commit.

Publishing never fails the request that committed the work: when the broker cannot be reached the
submission is already committed and scored, so the error is logged and the recompute is left to the
reconciler (``progress.reconcile``), which finds the students whose mastery lags their evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import suppress

from django.core.cache import cache
from django.db import transaction
from django.dispatch import receiver

from assessments import signals
from progress import services

logger = logging.getLogger(__name__)

_PENDING_ATTRIBUTE = "_progress_receivers_pending_recomputes"


def recomputes_publish(student_ids: Iterable[int]) -> list[int]:
    """Queue one ``student_recompute`` per student now; returns the ids that could not be queued.

    Fails fast (``mastery.celery`` bounds the publish retries): after the first failure the broker is
    taken to be down and the remaining students are not tried, so a request never waits on it once
    per student. Nothing is lost: the reconciler catches them up when the broker returns.
    """
    from progress import tasks  # the task module imports the services this module imports

    ids = sorted({int(student_id) for student_id in student_ids})
    dedupe = services._recompute_dedupe_enabled()
    for index, student_id in enumerate(ids):
        key = services.recompute_dedupe_key(student_id)
        try:
            if dedupe and not cache.add(key, 1, services.RECOMPUTE_DEDUPE_SECONDS):
                continue  # already queued and not started (see ``services.recompute_schedule``)
            tasks.student_recompute.delay(student_id=student_id)
        except Exception as error:  # any broker or cache failure: the work is committed
            unqueued = ids[index:]
            if dedupe:
                # The marker would hold back the next commit's publish; if the cache is down too,
                # it expires by itself.
                with suppress(Exception):
                    cache.delete(key)
            logger.warning(
                "broker unavailable: recompute of %d student(s) %s not queued (%s: %s); "
                "the reconciler will catch them up",
                len(unqueued),
                unqueued[:20],
                type(error).__name__,
                error,
            )
            return unqueued
    return []


def recompute_after_commit(*, student_ids: Iterable[int]) -> None:
    """``services.recompute_schedule`` with a publish that cannot fail the committing request.

    Merged: every call inside one transaction adds to one set of student ids and one ``on_commit``
    callback publishes them, one task per student; outside a transaction, publish at once.
    """
    ids = {int(student_id) for student_id in student_ids}
    if not ids:
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        recomputes_publish(ids)
        return
    pending = getattr(connection, _PENDING_ATTRIBUTE, None)
    # A rolled-back transaction (or savepoint) drops its callbacks: then the set is stale.
    if pending is None or not any(entry[1] is pending["flush"] for entry in connection.run_on_commit):

        def flush() -> None:
            state = connection.__dict__.pop(_PENDING_ATTRIBUTE, None)
            recomputes_publish(state["ids"] if state else ())

        pending = {"ids": set(), "flush": flush}
        setattr(connection, _PENDING_ATTRIBUTE, pending)
        transaction.on_commit(flush)
    pending["ids"].update(ids)


@receiver(signals.attempt_scored, dispatch_uid="progress.schedule_recompute_on_attempt_scored")
def schedule_recompute_on_attempt_scored(*, student_id: int, **_: object) -> None:
    """An attempt was completed or regraded: recompute that student after commit (merged per transaction)."""
    recompute_after_commit(student_ids=[student_id])


@receiver(signals.attempts_rescored, dispatch_uid="progress.schedule_recompute_on_attempts_rescored")
def schedule_recompute_on_attempts_rescored(*, student_ids: Iterable[int] = (), **_: object) -> None:
    """A rescoring batch changed attempts: recompute each affected student once after commit. The task
    reconciles all of the student's attempt evidence, so the attempt ids are not needed."""
    recompute_after_commit(student_ids=student_ids)
