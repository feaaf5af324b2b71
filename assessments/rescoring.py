"""Rescoring: re-applying a corrected key (points, alignments) to every response it affects.

A key change raises the item's ``key_version`` and creates a ``RescoreJob``; the job runs on the
Celery worker (queue ``bulk``) after the change commits. The job works set-based, in batches of
``ASSESSMENTS_RESCORE_BATCH_SIZE`` responses (default 5,000) taken by id range:

1. the batch's *distinct* answers are scored in Python by ``assessments.scoring`` (the very functions
   that score a submit, so a rescored score is exactly a fresh score; a choice item has a handful of
   distinct answers, a short-text item at most one per row);
2. on PostgreSQL one statement (a data-modifying CTE) joins the responses to that ``(answer, score)``
   VALUES list, updates their score, stamps ``scored_key_version`` and inserts a ``ResponseScoreChange``
   (old and new score) for each response whose score changed. SQLite, used by the demo, takes the same
   steps with ``bulk_update``/``bulk_create``;
3. the totals (score, max score, passed) and per-competency scores of the batch's completed attempts
   are recomputed set-based from their responses, and the attempts are announced (below);
4. the job's ``done`` and ``changed`` are recounted from the database.

Each batch is one transaction holding the job row's lock, and only responses still below the target
key version are touched, so a re-run changes nothing and a job whose worker died mid-way resumes
exactly where its last committed batch ended; two runners of one job take turns batch by batch.

Extended-text (rubric) responses keep their teacher's score: a rescore only stamps the key version,
and when the item's points or its rubric's top level now lie below the score, clamps the score to the
lower of the two (a teacher's 4 of 4 becomes 3 when the item is now worth 3).

Announcements: a batch sends ``attempts_rescored`` once (``attempt_ids``, ``student_ids``) rather than
``attempt_scored`` per attempt, which for a popular item would be tens of thousands of signals. While no
receiver listens to ``attempts_rescored``, ``attempt_scored`` is sent per attempt instead, so mastery
follows either way.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from assessments import scoring, signals
from assessments.models import (
    Assessment,
    Attempt,
    AttemptCompetencyScore,
    AttemptItem,
    Item,
    ItemAlignment,
    RescoreJob,
    Response,
    ResponseScoreChange,
)
from competencies.models import MasteryLevel
from roster.models import User

DEFAULT_BATCH_SIZE = 5_000
_NO_UPPER_BOUND = 2**63 - 1


# --- what a score depends on ----------------------------------------------------------------------


def _decimal_text(value: Any) -> str | None:
    """A canonical text for a number, so that 2, 2.0 and 2.000000 compare equal."""
    if value is None:
        return None
    return format(Decimal(str(value)).normalize(), "f")


def item_key_snapshot(item: Item) -> dict[str, Any]:
    """Everything a score depends on: type, points, key and alignments, as JSON-ready data.

    Pure over the item's loaded data: no query when ``choices``, ``rubric_levels`` and ``alignments``
    are prefetched (three otherwise). Two snapshots are equal exactly when every response would score
    the same against both. Only the *correct* choice ids count: adding or renaming a wrong choice
    changes no score.
    """
    rubric_points = sorted(Decimal(str(level.points)) for level in item.rubric_levels.all())
    return {
        "type": item.type,
        "max_points": _decimal_text(item.max_points),
        "partial_credit": bool(item.partial_credit),
        "correct_choice_ids": sorted(choice.pk for choice in item.choices.all() if choice.is_correct),
        "answer_value": _decimal_text(item.answer_value),
        "answer_tolerance": _decimal_text(item.answer_tolerance or 0),
        "accepted_answers": sorted(str(text) for text in item.accepted_answers or ()),
        "rubric_points": [_decimal_text(points) for points in rubric_points],
        "alignments": {
            str(alignment.competency_id): _decimal_text(alignment.points)
            for alignment in sorted(item.alignments.all(), key=lambda alignment: alignment.competency_id)
        },
    }


def _snapshot_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        field: {"before": before.get(field), "after": after.get(field)}
        for field in sorted(set(before) | set(after))
        if before.get(field) != after.get(field)
    }


def _scoring_key(snapshot: dict[str, Any]) -> scoring.ItemKey:
    return scoring.ItemKey(
        type=snapshot["type"],
        points=Decimal(snapshot["max_points"]),
        correct_ids=tuple(snapshot["correct_choice_ids"]),
        partial_credit=snapshot["partial_credit"],
        value=None if snapshot["answer_value"] is None else Decimal(snapshot["answer_value"]),
        tolerance=Decimal(snapshot["answer_tolerance"] or 0),
        accepted=tuple(snapshot["accepted_answers"]),
    )


def _rubric_cap(snapshot: dict[str, Any]) -> Decimal:
    """The highest score a rubric response may keep: the item's points, or the rubric's top level."""
    cap = Decimal(snapshot["max_points"])
    if snapshot["rubric_points"]:
        cap = min(cap, max(Decimal(points) for points in snapshot["rubric_points"]))
    return scoring.quantize(cap)


# --- creating jobs --------------------------------------------------------------------------------


def _pending_responses(item_ids: Iterable[int]) -> QuerySet[Response]:
    """Scored responses of the items whose key version is below the item's current one."""
    return Response.objects.filter(item_id__in=list(item_ids), scored_key_version__lt=F("item__key_version"))


def _enqueue(job_id: int) -> None:
    from assessments import tasks  # tasks import this module

    tasks.rescore_job_run.delay(job_id)


def rescore_job_create(
    *,
    items: list[Item] | None = None,
    assessment: Assessment | None = None,
    user: User | None = None,
    reason: str = "",
    changes: dict | None = None,
    force: bool | None = None,
    enqueue: bool = True,
) -> RescoreJob:
    """Record a rescoring job (who, why, what changed) and run it on the worker after commit.

    ``items``: rescore their responses below the current key version (after a key change).
    ``assessment``: rescore every scored response of the items on the assessment's forms. ``force``
    (the default for an assessment) first raises those items' key versions by one, so that the
    version stamp still tells a re-run what is done; it re-applies the current key to every response
    of those items, whichever assessment they were given in. ``total`` counts the responses to do.
    ``enqueue=False`` leaves running the job to the caller (the benchmark, tests).
    """
    if (items is None) == (assessment is None):
        raise ValueError("Give either items or an assessment.")
    if force is None:
        force = assessment is not None
    now = timezone.now()
    with transaction.atomic():
        if assessment is not None:
            item_ids = sorted(
                set(
                    AttemptItem.objects.filter(attempt__assessment=assessment).values_list(
                        "item_id", flat=True
                    )
                )
            )
        else:
            item_ids = sorted({item.pk for item in items or ()})
        if force and item_ids:
            Item.objects.filter(pk__in=item_ids).update(key_version=F("key_version") + 1, updated_at=now)
            changes = {
                **(changes or {}),
                "forced": {"item_ids": item_ids, "note": "the current key re-applied to every response"},
            }
        job = RescoreJob.objects.create(
            assessment=assessment,
            requested_by=user,
            reason=reason,
            changes=changes or {},
            total=_pending_responses(item_ids).count() if item_ids else 0,
        )
        job.items.set(item_ids)
        if enqueue:
            transaction.on_commit(partial(_enqueue, job.pk))
    return job


def item_key_change_record(
    *,
    item: Item,
    before: dict[str, Any],
    after: dict[str, Any],
    user: User | None = None,
    reason: str = "",
    enqueue: bool = True,
) -> RescoreJob | None:
    """After an item was saved: when its key snapshot changed, raise its ``key_version`` by one and
    create the rescoring job (returned; ``None`` when nothing that scores changed).

    ``before`` and ``after`` are ``item_key_snapshot`` results taken around the change. ``item`` gets
    its new ``key_version``. Used by the item API (``item_update``) and the Item admin.
    """
    if before == after:
        return None
    with transaction.atomic():
        Item.objects.filter(pk=item.pk).update(key_version=F("key_version") + 1, updated_at=timezone.now())
        item.refresh_from_db(fields=["key_version", "updated_at"])
        changes = {
            str(item.pk): {
                "key_version": {"before": item.key_version - 1, "after": item.key_version},
                **_snapshot_diff(before, after),
            }
        }
        return rescore_job_create(items=[item], user=user, reason=reason, changes=changes, enqueue=enqueue)


# --- reading jobs ---------------------------------------------------------------------------------


def access_rescore_job(*, user: User, job_id: int) -> RescoreJob:
    """A job on the staff member's district's items or assessment. One query; DoesNotExist else."""
    return (
        RescoreJob.objects.filter(
            Q(items__district_id=user.district_id) | Q(assessment__district_id=user.district_id)
        )
        .distinct()
        .get(pk=job_id)
    )


# --- running jobs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """One item of a running job: the key version to reach and the key to score with."""

    item_id: int
    key_version: int
    snapshot: dict[str, Any]

    @property
    def is_rubric(self) -> bool:
        return self.snapshot["type"] == Item.Type.EXTENDED_TEXT


@dataclass
class _BatchResult:
    processed: int
    attempt_ids: list[int]


def _batch_size(batch_size: int | None) -> int:
    size = batch_size or getattr(settings, "ASSESSMENTS_RESCORE_BATCH_SIZE", DEFAULT_BATCH_SIZE)
    return max(1, int(size))


def _remaining(targets: list[_Target]) -> int:
    if not targets:
        return 0
    pending = Q()
    for target in targets:
        pending |= Q(item_id=target.item_id, scored_key_version__lt=target.key_version)
    return Response.objects.filter(pending).count()


def _progress_update(job_id: int, total: int, targets: list[_Target], **fields: Any) -> int:
    """Recount done and changed from the data (never added up), so a re-run cannot overcount.
    Returns the number of responses still to do."""
    remaining = _remaining(targets)
    done = min(total, max(0, total - remaining))
    changed = min(done, ResponseScoreChange.objects.filter(job_id=job_id).count())
    RescoreJob.objects.filter(pk=job_id).update(done=done, changed=changed, **fields)
    return remaining


def _batch_upper_bound(target: _Target, lower: int, size: int) -> int:
    """The id of the ``size``-th pending response after ``lower``; no bound for the last batch."""
    upper = (
        Response.objects.filter(
            item_id=target.item_id, scored_key_version__lt=target.key_version, pk__gt=lower
        )
        .order_by("pk")
        .values_list("pk", flat=True)[size - 1 : size]
    )
    found = list(upper)
    return found[0] if found else _NO_UPPER_BOUND


def _score_answer_text(answer_text: str | None, key: scoring.ItemKey) -> Decimal:
    answer = None if answer_text is None else json.loads(answer_text)
    score = scoring.score_response(answer, key)
    return score if score is not None else scoring.ZERO


_PG_RESCORE_SQL = """
WITH answers (answer, new_score) AS (VALUES {values}),
target AS (
    SELECT r.id, r.attempt_id, r.score AS old_score, r.scored_key_version AS old_key_version,
           {new_score} AS new_score
    FROM {response} r {join}
    WHERE r.item_id = %(item)s AND r.scored_key_version < %(version)s
      AND r.id > %(lower)s AND r.id <= %(upper)s
),
updated AS (
    UPDATE {response} r SET score = t.new_score, scored_key_version = %(version)s
    FROM target t
    WHERE r.id = t.id AND r.scored_key_version < %(version)s
    RETURNING r.id, r.attempt_id, t.old_score, t.new_score, t.old_key_version
),
recorded AS (
    INSERT INTO {change} (job_id, response_id, old_score, new_score, old_key_version, new_key_version,
                          created_at)
    SELECT %(job)s, u.id, u.old_score, u.new_score, u.old_key_version, %(version)s, %(now)s
    FROM updated u
    WHERE u.old_score IS DISTINCT FROM u.new_score
    ON CONFLICT (job_id, response_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM updated),
       (SELECT count(*) FROM recorded),
       (SELECT coalesce(array_agg(DISTINCT attempt_id), '{{}}') FROM updated)
"""


def _batch_postgresql(*, job_id: int, target: _Target, lower: int, upper: int, now: datetime) -> _BatchResult:
    """Two queries: the batch's distinct answers, then one statement that rescores and records."""
    quote = connection.ops.quote_name
    response_table = quote(Response._meta.db_table)
    params: dict[str, Any] = {
        "item": target.item_id,
        "version": target.key_version,
        "lower": lower,
        "upper": upper,
        "job": job_id,
        "now": now,
    }
    if target.is_rubric:
        params["cap"] = _rubric_cap(target.snapshot)
        values, join = "(NULL::jsonb, NULL::numeric)", ""
        new_score = "CASE WHEN r.score > %(cap)s THEN %(cap)s ELSE r.score END"
    else:
        key = _scoring_key(target.snapshot)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT r.answer::text FROM {response_table} r "
                "WHERE r.item_id = %s AND r.scored_key_version < %s AND r.id > %s AND r.id <= %s",
                [target.item_id, target.key_version, lower, upper],
            )
            answers = [row[0] for row in cursor.fetchall()]
        if not answers:
            return _BatchResult(processed=0, attempt_ids=[])
        rows = []
        for index, answer_text in enumerate(answers):
            # A SQL NULL answer (never answered) joins as the JSON null, which scores the same.
            params[f"a{index}"] = "null" if answer_text is None else answer_text
            params[f"s{index}"] = _score_answer_text(answer_text, key)
            rows.append(f"(%(a{index})s::jsonb, %(s{index})s::numeric)")
        values = ", ".join(rows)
        join = "JOIN answers a ON coalesce(r.answer, 'null'::jsonb) = a.answer"
        new_score = "a.new_score"
    sql = _PG_RESCORE_SQL.format(
        values=values,
        join=join,
        new_score=new_score,
        response=response_table,
        change=quote(ResponseScoreChange._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        processed, _recorded, attempt_ids = cursor.fetchone()
    return _BatchResult(processed=processed, attempt_ids=list(attempt_ids))


def _batch_generic(*, job_id: int, target: _Target, lower: int, upper: int, now: datetime) -> _BatchResult:
    """The same batch with the ORM (SQLite): read the rows, score distinct answers, write in bulk."""
    rows = list(
        Response.objects.filter(
            item_id=target.item_id,
            scored_key_version__lt=target.key_version,
            pk__gt=lower,
            pk__lte=upper,
        ).values_list("pk", "attempt_id", "answer", "score", "scored_key_version")
    )
    if not rows:
        return _BatchResult(processed=0, attempt_ids=[])
    key = None if target.is_rubric else _scoring_key(target.snapshot)
    cap = _rubric_cap(target.snapshot) if target.is_rubric else None
    memo: dict[str, Decimal] = {}
    updates: list[Response] = []
    changes: list[ResponseScoreChange] = []
    for pk, _attempt_id, answer, old_score, old_key_version in rows:
        if key is None:
            new_score = min(old_score, cap) if old_score is not None and cap is not None else old_score
        else:
            memo_key = json.dumps(answer, sort_keys=True)
            if memo_key not in memo:
                memo[memo_key] = scoring.score_response(answer, key) or scoring.ZERO
            new_score = memo[memo_key]
        updates.append(Response(pk=pk, score=new_score, scored_key_version=target.key_version))
        if old_score != new_score:
            changes.append(
                ResponseScoreChange(
                    job_id=job_id,
                    response_id=pk,
                    old_score=old_score,
                    new_score=new_score,
                    old_key_version=old_key_version,
                    new_key_version=target.key_version,
                    created_at=now,
                )
            )
    Response.objects.bulk_update(updates, ["score", "scored_key_version"])
    if changes:
        ResponseScoreChange.objects.bulk_create(changes, ignore_conflicts=True)
    return _BatchResult(processed=len(rows), attempt_ids=sorted({row[1] for row in rows}))


def _id_set(ids: Iterable[int]) -> Any:
    """The right-hand side of an ``__in`` over many ids: on PostgreSQL one array parameter (a long
    IN list costs Django more than the query costs the database), elsewhere the list itself."""
    ids = list(ids)
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (ids,))
    return ids


def attempts_recompute(*, attempt_ids: Iterable[int]) -> list[tuple[int, int]]:
    """Recompute the totals and per-competency scores of the completed attempts among ``attempt_ids``
    from their stored response scores, set-based (the rule of ``services._attempt_complete``), and
    write only what differs from what is stored.

    Returns ``(attempt_id, student_id)`` of the attempts whose result changed. At most nine queries
    whatever the number of attempts. Attempts still awaiting rubric grading are left alone: grading
    completes them.
    """
    stored = {
        pk: (student_id, (score, max_score, is_passed))
        for pk, student_id, score, max_score, is_passed in Attempt.objects.filter(
            pk__in=_id_set(attempt_ids), status=Attempt.Status.COMPLETED
        ).values_list("pk", "student_id", "score", "max_score", "is_passed")
    }
    if not stored:
        return []
    ids = sorted(stored)
    id_set = _id_set(ids)
    form: dict[int, list[int]] = defaultdict(list)
    max_points: dict[int, Decimal] = {}
    for attempt_id, item_id, points in AttemptItem.objects.filter(attempt_id__in=id_set).values_list(
        "attempt_id", "item_id", "item__max_points"
    ):
        form[attempt_id].append(item_id)
        max_points[item_id] = points
    scores: dict[tuple[int, int], Decimal] = {
        (attempt_id, item_id): score
        for attempt_id, item_id, score in Response.objects.filter(attempt_id__in=id_set).values_list(
            "attempt_id", "item_id", "score"
        )
        if score is not None
    }
    alignments_of: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
    scale_of: dict[int, int | None] = {}
    for item_id, competency_id, points, scale_id in (
        ItemAlignment.objects.filter(item_id__in=list(max_points))
        .order_by("item_id", "competency_id")
        .values_list("item_id", "competency_id", "points", "competency__framework__mastery_scale_id")
    ):
        alignments_of[item_id].append((competency_id, points))
        scale_of[competency_id] = scale_id
    levels_by_scale: dict[int, list[scoring.Level]] = defaultdict(list)
    scale_ids = {scale_id for scale_id in scale_of.values() if scale_id is not None}
    for scale_id, points, is_mastery in MasteryLevel.objects.filter(scale_id__in=scale_ids).values_list(
        "scale_id", "points", "is_mastery"
    ):
        levels_by_scale[scale_id].append(scoring.Level(points=points, is_mastery=is_mastery))
    stored_rows: dict[tuple[int, int], tuple[int, tuple]] = {
        (attempt_id, competency_id): (pk, tuple(values))
        for pk, attempt_id, competency_id, *values in AttemptCompetencyScore.objects.filter(
            attempt_id__in=id_set
        ).values_list(
            "pk", "attempt_id", "competency_id", "earned", "possible", "score", "level_points", "is_met"
        )
    }

    changed_attempts: set[int] = set()
    rows_to_write: list[AttemptCompetencyScore] = []
    rows_kept: set[tuple[int, int]] = set()
    totals: list[tuple[int, Decimal, Decimal, bool]] = []
    zero = Decimal(0)
    for attempt_id in ids:
        items = sorted(form.get(attempt_id, []))
        earned: dict[int, Decimal] = defaultdict(Decimal)
        possible: dict[int, Decimal] = defaultdict(Decimal)
        for item_id in items:
            score = scores.get((attempt_id, item_id), zero)
            for competency_id, points in alignments_of.get(item_id, []):
                earned[competency_id] += score / max_points[item_id] * points
                possible[competency_id] += points
        met: list[bool] = []
        for competency_id in possible:
            scale_id = scale_of.get(competency_id)
            result = scoring.competency_result(
                earned=earned[competency_id],
                possible=possible[competency_id],
                levels=levels_by_scale.get(scale_id, []) if scale_id is not None else [],
            )
            met.append(result.is_met)
            values = (result.earned, result.possible, result.scale_score, result.level_points, result.is_met)
            key = (attempt_id, competency_id)
            rows_kept.add(key)
            if key not in stored_rows or stored_rows[key][1] != values:
                changed_attempts.add(attempt_id)
                rows_to_write.append(
                    AttemptCompetencyScore(
                        attempt_id=attempt_id,
                        competency_id=competency_id,
                        earned=result.earned,
                        possible=result.possible,
                        score=result.scale_score,
                        level_points=result.level_points,
                        is_met=result.is_met,
                    )
                )
        total = scoring.quantize(sum((scores.get((attempt_id, item_id), zero) for item_id in items), zero))
        maximum = scoring.quantize(sum((max_points[item_id] for item_id in items), zero))
        is_passed = all(met) if met else bool(maximum) and total / maximum >= scoring.DEFAULT_MASTERY_FRACTION
        if stored[attempt_id][1] != (total, maximum, is_passed):
            changed_attempts.add(attempt_id)
            totals.append((attempt_id, total, maximum, is_passed))

    stale = [pk for key, (pk, _) in stored_rows.items() if key not in rows_kept]
    for key in stored_rows:
        if key not in rows_kept:
            changed_attempts.add(key[0])
    if stale:
        AttemptCompetencyScore.objects.filter(pk__in=_id_set(stale)).delete()
    if rows_to_write:
        AttemptCompetencyScore.objects.bulk_create(
            rows_to_write,
            update_conflicts=True,
            unique_fields=["attempt", "competency"],
            update_fields=["earned", "possible", "score", "level_points", "is_met"],
        )
    _attempt_totals_write(totals)
    return [(attempt_id, stored[attempt_id][0]) for attempt_id in ids if attempt_id in changed_attempts]


def _attempt_totals_write(totals: list[tuple[int, Decimal, Decimal, bool]]) -> None:
    """One UPDATE ... FROM (VALUES ...) on PostgreSQL; ``bulk_update`` elsewhere."""
    if not totals:
        return
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Attempt._meta.db_table)
        rows = ", ".join(["(%s::bigint, %s::numeric, %s::numeric, %s::boolean)"] * len(totals))
        params = [value for row in totals for value in row]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} a SET score = v.score, max_score = v.max_score, is_passed = v.is_passed "
                f"FROM (VALUES {rows}) v (id, score, max_score, is_passed) WHERE a.id = v.id",
                params,
            )
        return
    Attempt.objects.bulk_update(
        [
            Attempt(pk=attempt_id, score=score, max_score=maximum, is_passed=is_passed)
            for attempt_id, score, maximum, is_passed in totals
        ],
        ["score", "max_score", "is_passed"],
    )


def _announce(recomputed: list[tuple[int, int]]) -> None:
    if not recomputed:
        return
    if signals.attempts_rescored.has_listeners(Attempt):
        signals.attempts_rescored.send(
            sender=Attempt,
            attempt_ids=[attempt_id for attempt_id, _ in recomputed],
            student_ids=sorted({student_id for _, student_id in recomputed}),
        )
        return
    for attempt_id, student_id in recomputed:
        signals.attempt_scored.send(sender=Attempt, attempt_id=attempt_id, student_id=student_id)


def _targets(job: RescoreJob) -> list[_Target]:
    items = job.items.order_by("pk").prefetch_related("choices", "rubric_levels", "alignments")
    return [
        _Target(item_id=item.pk, key_version=item.key_version, snapshot=item_key_snapshot(item))
        for item in items
    ]


def _rescore_batch(
    *, job_id: int, target: _Target, lower: int, size: int, total: int, targets: list[_Target]
) -> tuple[int, int] | None:
    """One batch in one transaction: the pending responses of ``target`` after id ``lower``, up to
    ``size`` of them. Returns the batch's upper id bound and the responses the job still has to do,
    or ``None`` when the job row is gone. The query count does not depend on ``size``.
    """
    now = timezone.now()
    with transaction.atomic():
        # The job row's lock makes concurrent runners of one job (a redelivered message beside a
        # re-enqueued one) take turns, batch by batch.
        if not RescoreJob.objects.select_for_update().filter(pk=job_id).exists():
            return None
        upper = _batch_upper_bound(target, lower, size)
        run = _batch_postgresql if connection.vendor == "postgresql" else _batch_generic
        result = run(job_id=job_id, target=target, lower=lower, upper=upper, now=now)
        if result.processed:
            _announce(attempts_recompute(attempt_ids=result.attempt_ids))
        remaining = _progress_update(job_id, total, targets)
    return upper, remaining


def rescore_job_run(*, job_id: int, batch_size: int | None = None) -> RescoreJob:
    """Run (or resume) a job to the end: every pending response of its items rescored in batches,
    attempt totals and competency scores following, progress recounted after each batch.

    Idempotent: only responses below the item's key version are touched, so a second run changes
    nothing, and a run after a crash continues from the data. A failure marks the job ``failed``
    with the error and is raised again (the task retries transient database errors).
    """
    size = _batch_size(batch_size)
    job = RescoreJob.objects.get(pk=job_id)
    RescoreJob.objects.filter(pk=job_id).update(
        status=RescoreJob.Status.RUNNING,
        started_at=Coalesce(F("started_at"), timezone.now()),
        finished_at=None,
        error="",
    )
    try:
        targets = _targets(job)
        remaining = 0
        # A second pass picks up anything a concurrent writer left below the version mid-run.
        for _pass in range(2):
            for target in targets:
                lower = 0
                while lower < _NO_UPPER_BOUND:
                    step = _rescore_batch(
                        job_id=job_id, target=target, lower=lower, size=size, total=job.total, targets=targets
                    )
                    if step is None:
                        return job
                    lower, remaining = step
            if not remaining:
                break
        RescoreJob.objects.filter(pk=job_id).update(
            status=RescoreJob.Status.COMPLETED, finished_at=timezone.now()
        )
    except Exception as error:
        # The connection itself may be gone; then the task's retry (or a re-run) will tell.
        with contextlib.suppress(Exception):
            RescoreJob.objects.filter(pk=job_id).update(
                status=RescoreJob.Status.FAILED,
                error=f"{type(error).__name__}: {error}"[:5000],
                finished_at=timezone.now(),
            )
        raise
    job.refresh_from_db()
    return job
