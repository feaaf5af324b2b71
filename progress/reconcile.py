"""The reconciler: find the students whose stored mastery lags their scored work, and recompute them.

A recompute is published after the submit commits; if the broker was down (or the worker died
between the evidence and the mastery), the message is gone. Nothing records that: the data says it.
A student is behind when

* a completed attempt has a competency result with no attempt evidence carrying that score (the
  recompute never ran after the submit, or a rescore changed the result since), or
* a leaf competency's stored mastery counts a different number of evidence rows than the student
  has on it (the evidence was written but the mastery was not recomputed from it).

Both are set-based queries, whatever the number of students. Beat runs ``progress_reconcile`` every
five minutes (``mastery.celery``); ``manage.py reconcile`` runs it by hand. Recomputing is idempotent,
so a student caught up twice (by the reconciler and a late message) ends the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from celery import shared_task
from django.db import OperationalError
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery

from assessments.models import Attempt, AttemptCompetencyScore
from assessments.rescoring import rescore_jobs_requeue_stale
from competencies.models import Competency
from progress import services
from progress.models import CompetencyMastery, Evidence

logger = logging.getLogger(__name__)

#: Students caught up per run at most; the next run (five minutes later) takes the rest.
RECONCILE_BATCH = 500


@dataclass
class ReconcileResult:
    found: int = 0
    student_ids: list[int] = field(default_factory=list)
    masteries_changed: int = 0


def students_behind(*, limit: int | None = None) -> list[int]:
    """Ids of the students whose stored mastery lags their scored attempts, ascending. Two queries."""
    evidence_of_result = Evidence.objects.filter(
        source=Evidence.Source.ATTEMPT,
        source_id=OuterRef("attempt_id"),
        competency_id=OuterRef("competency_id"),
        score=OuterRef("score"),
        is_correct=OuterRef("is_met"),
    )
    unrecorded = set(
        AttemptCompetencyScore.objects.filter(attempt__status=Attempt.Status.COMPLETED)
        .filter(~Exists(evidence_of_result))
        .values_list("attempt__student_id", flat=True)
        .distinct()
    )
    stored_count = (
        CompetencyMastery.objects.filter(
            student_id=OuterRef("student_id"), competency_id=OuterRef("competency_id")
        )
        .order_by()
        .values("evidence_count")[:1]
    )
    leaves = ~Exists(Competency.objects.filter(parent_id=OuterRef("competency_id")))
    # Read as (student, competency) groups: a ``values_list("student_id")`` here would regroup by
    # student and compare the wrong counts.
    uncounted = {
        row["student_id"]
        for row in Evidence.objects.exclude(source=Evidence.Source.OVERRIDE)
        .filter(leaves)
        .values("student_id", "competency_id")
        .annotate(count=Count("pk"), stored=Subquery(stored_count, output_field=IntegerField()))
        .filter(Q(stored__isnull=True) | ~Q(stored=F("count")))
        .order_by()
    }
    behind = sorted(unrecorded | uncounted)
    return behind if limit is None else behind[:limit]


def progress_catch_up(*, limit: int = RECONCILE_BATCH, dry_run: bool = False) -> ReconcileResult:
    """Recompute (evidence, mastery, flags) each student found behind, up to ``limit`` of them."""
    student_ids = students_behind(limit=limit)
    result = ReconcileResult(found=len(student_ids), student_ids=student_ids)
    if dry_run:
        return result
    for student_id in student_ids:
        result.masteries_changed += len(services.student_progress_refresh(student_id=student_id))
    if student_ids:
        logger.info(
            "reconciler: caught up %d student(s) (%d mastery changes)",
            len(student_ids),
            result.masteries_changed,
        )
    return result


@shared_task(
    name="progress.reconcile.progress_reconcile",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def progress_reconcile(limit: int = RECONCILE_BATCH) -> dict[str, int]:
    """Beat, every five minutes (queue nightly): catch up the students whose mastery lags their work."""
    result = progress_catch_up(limit=limit)
    # Rescoring jobs whose publish failed (the broker was down when the key changed) go out again too.
    requeued = rescore_jobs_requeue_stale()
    return {
        "students": result.found,
        "masteries_changed": result.masteries_changed,
        "rescore_jobs_requeued": len(requeued),
    }
