"""Rescoring: re-applying a corrected key (points, alignments) to every response it affects.

A key change raises the item's ``key_version`` and creates a ``RescoreJob``; the job runs on the
Celery worker (queue ``bulk``) after the change commits. The job works set-based, in batches of
``ASSESSMENTS_RESCORE_BATCH_SIZE`` responses (default 100,000), keyset-paginated on the response id
(index ``response_item_id_keyset`` on ``(item_id, id)``, migration 0003).

On PostgreSQL a batch is three statements whatever its size, and no row passes through Python:

1. the job row's lock;
2. ONE data-modifying statement takes the next pending responses, joins them to the run's answer map
   (a temporary table of ``(item, key version, answer) -> score``), updates their score, stamps
   ``scored_key_version``, inserts a ``ResponseScoreChange`` (old and new score) for each response
   whose score changed and adds the batch to the job's ``done`` and ``changed``. The map is filled
   with the *distinct* answers the batches meet, scored once by ``assessments.scoring`` (the very
   functions that score a submit, so a rescored score is exactly a fresh score): when a batch meets
   answers the map lacks, they are scored, inserted in one query, and the statement runs again for
   the same rows (a choice item's handful of answers: once per job);
3. ONE statement (``attempts_recompute``) recomputes the totals (score, max score, passed) and the
   per-competency scores of the batch's completed attempts from their responses, writes only what
   differs, deletes competency rows no longer aligned, and names the attempts whose result changed;
   when only how answers score changed (not points, alignments or rubric), only the attempts whose
   response score changed are recomputed (the others' results cannot change).

Every statement of a batch costs in proportion to the batch, never to the tables: at a million
responses a plan that hash-joins the batch against a whole table (a sequential scan of every
response, attempt, form row and competency score, once per batch) made the job grow with batches x
table size, several times the cost of one ``UPDATE`` of the same rows. So the rows a batch writes are
reached by their physical address (``ctid = ANY (ARRAY(...))``, a TID scan: the addresses are read
in the same statement, under the same snapshot; a row a concurrent writer moved meanwhile fails the
recheck and is left for the run's second pass), and the rows it reads by index, one lookup per
attempt (``CROSS JOIN LATERAL (... OFFSET 0)``, which the planner cannot turn into a hash join over
the whole table).

A run sets ``jit = off`` and a larger ``work_mem`` for its session (compiling these plans cost more
than running them) and restores them afterwards. SQLite, used by the demo, takes the same steps with
the ORM (``bulk_update``/``bulk_create``, the recompute in Python: ``_attempts_recompute_python``,
the reference the SQL is tested against). The job's ``done`` and ``changed`` are recounted from the
data at the end of the run.

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
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from competencies.models import Competency, Framework, MasteryLevel
from roster.models import User

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 100_000
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
    """Publish a committed job. A broker that cannot be reached must not fail the change that made the
    job (it is committed): the job stays pending and ``rescore_jobs_requeue_stale`` publishes it again."""
    from assessments import tasks  # tasks import this module

    try:
        tasks.rescore_job_run.delay(job_id)
    except Exception as error:  # any broker failure: the job row is the record of the work
        logger.warning(
            "broker unavailable: rescore job %s not queued (%s: %s); it will be re-queued",
            job_id,
            type(error).__name__,
            error,
        )


def rescore_jobs_requeue_stale(*, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
    """Publish again the jobs still pending after ``older_than`` (their message was never sent or was
    lost). A job resumes from the data, so a second message for a job that did start is harmless."""
    cutoff = timezone.now() - older_than
    job_ids = list(
        RescoreJob.objects.filter(status=RescoreJob.Status.PENDING, created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for job_id in job_ids:
        _enqueue(job_id)
    return job_ids


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
    #: Only how answers score changed (not points, alignments or rubric): then an attempt's result
    #: can change only where a response's score did, and only those attempts are recomputed.
    scores_only: bool = False

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


# --- PostgreSQL: one statement per batch ------------------------------------------------------------

#: A session's map of ``(item, key version, answer) -> score``, filled with the distinct answers the
#: batches meet, scored once in Python. A temporary table: never logged, private to the connection.
_ANSWER_MAP = "rescore_answer_score"

_PG_RESCORE_SQL = """
WITH span AS MATERIALIZED (
    SELECT r.ctid AS row_id, r.id, r.attempt_id, r.answer, r.score, r.scored_key_version
    FROM {response} r
    WHERE r.item_id = %(item)s AND r.scored_key_version < %(version)s
      AND r.id > %(lower)s AND r.id <= %(upper)s
    ORDER BY r.id
    LIMIT %(size)s
),
target AS (
    SELECT s.row_id, s.id, s.attempt_id, s.answer, s.score AS old_score,
           s.scored_key_version AS old_key_version, {new_score} AS new_score, {matched} AS matched
    FROM span s {join}
),
updated AS (
    UPDATE {response} r SET score = t.new_score, scored_key_version = %(version)s
    FROM target t
    WHERE r.ctid = ANY (ARRAY(SELECT row_id FROM target WHERE matched))
      AND r.id = t.id AND t.matched AND r.scored_key_version < %(version)s
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
),
counts AS (SELECT (SELECT count(*) FROM updated) AS updated, (SELECT count(*) FROM recorded) AS recorded),
progress AS (
    UPDATE {job} j SET done = least(j.total, j.done + c.updated),
                       changed = least(least(j.total, j.done + c.updated), j.changed + c.recorded)
    FROM counts c
    WHERE j.id = %(job)s
    RETURNING 1
)
SELECT (SELECT count(*) FROM span),
       (SELECT max(id) FROM span),
       (SELECT coalesce(array_agg(DISTINCT attempt_id), '{{}}') FROM updated
        WHERE NOT %(changed_only)s OR old_score IS DISTINCT FROM new_score),
       (SELECT coalesce(array_agg(DISTINCT coalesce(answer, 'null'::jsonb)::text), '{{}}')
        FROM target WHERE NOT matched),
       (SELECT count(*) FROM progress)
"""


#: Session settings for a run: no JIT (compiling the batch statements' plans costs more than running
#: them: seconds per batch) and memory for the batch's sorts and hashes instead of temporary files.
_SESSION_SETTINGS = {"jit": "off", "work_mem": "64MB"}


@contextlib.contextmanager
def _run_session() -> Any:
    """On PostgreSQL, for one run: the temporary answer map and the session settings (two queries),
    dropped and restored afterwards whatever happens (two more). Nothing elsewhere."""
    if connection.vendor != "postgresql":
        yield
        return
    names = sorted(_SESSION_SETTINGS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_ANSWER_MAP} (item_id bigint NOT NULL, "
            "key_version integer NOT NULL, answer jsonb NOT NULL, score numeric NOT NULL, "
            "PRIMARY KEY (item_id, key_version, answer))"
        )
        cursor.execute(
            "SELECT " + ", ".join("current_setting(%s)" for _ in names) + ", "
            + ", ".join("set_config(%s, %s, false)" for _ in names),
            [*names, *(value for name in names for value in (name, _SESSION_SETTINGS[name]))],
        )  # fmt: skip
        previous = cursor.fetchone()[: len(names)]
    try:
        yield
    finally:
        with contextlib.suppress(Exception), connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{_ANSWER_MAP}")
            cursor.execute(
                "SELECT " + ", ".join("set_config(%s, %s, false)" for _ in names),
                [value for name, old in zip(names, previous, strict=True) for value in (name, old)],
            )


def _answer_map_add(target: _Target, answer_texts: list[str]) -> None:
    """Score ``answer_texts`` (the JSON text of distinct answers) with the target's key; one query."""
    key = _scoring_key(target.snapshot)
    scores = [_score_answer_text(None if text == "null" else text, key) for text in answer_texts]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_ANSWER_MAP} (item_id, key_version, answer, score) "
            "SELECT %s, %s, a.answer, a.score FROM unnest(%s::jsonb[], %s::numeric[]) a (answer, score) "
            "ON CONFLICT DO NOTHING",
            [target.item_id, target.key_version, answer_texts, scores],
        )


def _batch_statement(*, job_id: int, target: _Target, lower: int, upper: int, size: int, now: datetime):
    """Run the batch statement: returns (span rows, span's last id, attempt ids, unscored answers)."""
    quote = connection.ops.quote_name
    params: dict[str, Any] = {
        "item": target.item_id,
        "version": target.key_version,
        "lower": lower,
        "upper": upper,
        "size": size,
        "job": job_id,
        "now": now,
        "changed_only": target.scores_only,
    }
    if target.is_rubric:
        params["cap"] = _rubric_cap(target.snapshot)
        join = ""
        new_score = "CASE WHEN s.score > %(cap)s THEN %(cap)s ELSE s.score END"
        matched = "true"
    else:
        join = (
            f"LEFT JOIN {_ANSWER_MAP} m ON m.item_id = %(item)s AND m.key_version = %(version)s "
            "AND m.answer = coalesce(s.answer, 'null'::jsonb)"
        )
        new_score, matched = "m.score", "m.answer IS NOT NULL"
    sql = _PG_RESCORE_SQL.format(
        response=quote(Response._meta.db_table),
        change=quote(ResponseScoreChange._meta.db_table),
        job=quote(RescoreJob._meta.db_table),
        join=join,
        new_score=new_score,
        matched=matched,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        spanned, last_id, attempt_ids, unscored, _progress = cursor.fetchone()
    return spanned, last_id, list(attempt_ids), list(unscored)


def _rescore_batch_postgresql(
    *, job_id: int, target: _Target, lower: int, size: int
) -> tuple[int, bool] | None:
    """One batch in one transaction, keyset-paginated on the response id: the next ``size`` pending
    responses of ``target`` after id ``lower``. Returns the batch's last id and whether more may
    follow, or ``None`` when the job row is gone.

    Queries: the job row's lock; the batch statement (rescore, record changes, count progress); when
    the batch holds answers the map has not scored yet, their insertion into the map and the
    statement again for the same rows; the attempts' recompute. None depends on the batch's size.
    """
    now = timezone.now()
    with transaction.atomic():
        # The job row's lock makes concurrent runners of one job (a redelivered message beside a
        # re-enqueued one) take turns, batch by batch.
        if not RescoreJob.objects.select_for_update().filter(pk=job_id).exists():
            return None
        spanned, last_id, attempt_ids, unscored = _batch_statement(
            job_id=job_id, target=target, lower=lower, upper=_NO_UPPER_BOUND, size=size, now=now
        )
        if unscored:
            _answer_map_add(target, unscored)
            _, _, more_ids, unscored = _batch_statement(
                job_id=job_id, target=target, lower=lower, upper=last_id, size=size, now=now
            )
            if unscored:  # pragma: no cover - the map was just filled with these very answers
                raise RuntimeError(f"Rescoring left answers unscored: {unscored[:5]}")
            attempt_ids = sorted(set(attempt_ids) | set(more_ids))
        if attempt_ids:
            _announce(attempts_recompute(attempt_ids=attempt_ids))
    if not spanned:
        return lower, False
    return last_id, spanned >= size


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


_PG_RECOMPUTE_SQL = """
WITH batch AS MATERIALIZED (
    SELECT a.*
    FROM unnest(%(ids)s::bigint[]) AS x (id)
    CROSS JOIN LATERAL (
        SELECT a.id, a.student_id, a.ctid AS row_id, a.score, a.max_score, a.is_passed
        FROM {attempt} a WHERE a.id = x.id AND a.status = %(completed)s
        OFFSET 0
    ) a
),
answered AS MATERIALIZED (
    SELECT r.attempt_id, r.item_id, r.score
    FROM batch b
    CROSS JOIN LATERAL (
        SELECT r.attempt_id, r.item_id, r.score FROM {response} r WHERE r.attempt_id = b.id OFFSET 0
    ) r
),
form AS MATERIALIZED (
    SELECT ai.attempt_id, ai.item_id, i.max_points, coalesce(r.score, 0) AS score
    FROM batch b
    CROSS JOIN LATERAL (
        SELECT ai.attempt_id, ai.item_id FROM {attempt_item} ai WHERE ai.attempt_id = b.id OFFSET 0
    ) ai
    JOIN {item} i ON i.id = ai.item_id
    LEFT JOIN answered r ON r.attempt_id = ai.attempt_id AND r.item_id = ai.item_id
),
sums AS (
    SELECT f.attempt_id, al.competency_id, sum(f.score / f.max_points * al.points) AS earned,
           sum(al.points) AS possible
    FROM form f JOIN {alignment} al ON al.item_id = f.item_id
    GROUP BY f.attempt_id, al.competency_id
),
scales AS (
    SELECT c.id AS competency_id, fw.mastery_scale_id AS scale_id, max(l.points) AS top,
           max(l.points) FILTER (WHERE l.is_mastery) AS mastery
    FROM {competency} c
    JOIN {framework} fw ON fw.id = c.framework_id
    LEFT JOIN {level} l ON l.scale_id = fw.mastery_scale_id
    WHERE c.id IN (SELECT DISTINCT competency_id FROM sums)
    GROUP BY c.id, fw.mastery_scale_id
),
fractions AS (
    SELECT s.attempt_id, s.competency_id, s.earned, s.possible, sc.scale_id, sc.top, sc.mastery,
           least(greatest(CASE WHEN s.possible > 0 THEN s.earned / s.possible ELSE 0 END, 0), 1) AS fraction
    FROM sums s JOIN scales sc ON sc.competency_id = s.competency_id
),
scored AS (
    SELECT f.attempt_id, f.competency_id, round(f.earned, 2) AS earned, round(f.possible, 2) AS possible,
           CASE WHEN f.mastery IS NULL THEN round(f.fraction * 100, 2) ELSE round(f.fraction * f.top, 2) END
               AS score,
           f.fraction, f.scale_id, f.mastery
    FROM fractions f
),
results AS (
    SELECT s.attempt_id, s.competency_id, s.earned, s.possible, s.score, lv.points AS level_points,
           CASE WHEN s.mastery IS NULL THEN s.fraction >= %(default_fraction)s
                ELSE coalesce(lv.points >= s.mastery, false) END AS is_met
    FROM scored s
    LEFT JOIN LATERAL (
        SELECT max(l.points) AS points FROM {level} l
        WHERE s.mastery IS NOT NULL AND l.scale_id = s.scale_id AND l.points <= s.score
    ) lv ON true
),
stored AS MATERIALIZED (
    SELECT st.*
    FROM batch b
    CROSS JOIN LATERAL (
        SELECT st.ctid AS row_id, st.id, st.attempt_id, st.competency_id, st.earned, st.possible, st.score,
               st.level_points, st.is_met
        FROM {score} st WHERE st.attempt_id = b.id
        OFFSET 0
    ) st
),
differing AS MATERIALIZED (
    SELECT res.*, st.id AS stored_id, st.row_id AS stored_row FROM results res
    LEFT JOIN stored st ON st.attempt_id = res.attempt_id AND st.competency_id = res.competency_id
    WHERE st.id IS NULL
       OR (st.earned, st.possible, st.score, st.level_points, st.is_met)
          IS DISTINCT FROM (res.earned, res.possible, res.score, res.level_points, res.is_met)
),
rewritten_scores AS (
    UPDATE {score} st SET earned = d.earned, possible = d.possible, score = d.score,
                          level_points = d.level_points, is_met = d.is_met
    FROM differing d
    WHERE st.ctid = ANY (ARRAY(SELECT stored_row FROM differing WHERE stored_row IS NOT NULL))
      AND st.id = d.stored_id
    RETURNING st.attempt_id
),
inserted_scores AS (
    INSERT INTO {score} (attempt_id, competency_id, earned, possible, score, level_points, is_met)
    SELECT attempt_id, competency_id, earned, possible, score, level_points, is_met FROM differing
    WHERE stored_id IS NULL
    ON CONFLICT (attempt_id, competency_id) DO UPDATE SET
        earned = EXCLUDED.earned, possible = EXCLUDED.possible, score = EXCLUDED.score,
        level_points = EXCLUDED.level_points, is_met = EXCLUDED.is_met
    RETURNING attempt_id
),
stale AS (
    DELETE FROM {score} st
    WHERE st.ctid = ANY (ARRAY(
        SELECT s.row_id FROM stored s
        LEFT JOIN results res ON res.attempt_id = s.attempt_id AND res.competency_id = s.competency_id
        WHERE res.attempt_id IS NULL
    ))
    RETURNING st.attempt_id
),
totals AS (
    SELECT b.id, round(coalesce(sum(f.score), 0), 2) AS score, round(coalesce(sum(f.max_points), 0), 2)
           AS max_score
    FROM batch b LEFT JOIN form f ON f.attempt_id = b.id
    GROUP BY b.id
),
met AS (SELECT attempt_id, bool_and(is_met) AS all_met FROM results GROUP BY attempt_id),
passed AS (
    SELECT t.id, t.score, t.max_score,
           CASE WHEN m.all_met IS NOT NULL THEN m.all_met
                WHEN t.max_score > 0 THEN t.score / t.max_score >= %(default_fraction)s
                ELSE false END AS is_passed
    FROM totals t LEFT JOIN met m ON m.attempt_id = t.id
),
new_totals AS MATERIALIZED (
    SELECT p.*, b.row_id FROM passed p JOIN batch b ON b.id = p.id
    WHERE (b.score, b.max_score, b.is_passed) IS DISTINCT FROM (p.score, p.max_score, p.is_passed)
),
rewritten AS (
    UPDATE {attempt} a SET score = p.score, max_score = p.max_score, is_passed = p.is_passed
    FROM new_totals p
    WHERE a.ctid = ANY (ARRAY(SELECT row_id FROM new_totals)) AND a.id = p.id
      AND (a.score, a.max_score, a.is_passed) IS DISTINCT FROM (p.score, p.max_score, p.is_passed)
    RETURNING a.id
)
SELECT b.id, b.student_id FROM batch b
WHERE b.id IN (
    SELECT attempt_id FROM rewritten_scores UNION SELECT attempt_id FROM inserted_scores
    UNION SELECT attempt_id FROM stale UNION SELECT id FROM rewritten
)
ORDER BY b.id
"""


def attempts_recompute(*, attempt_ids: Iterable[int]) -> list[tuple[int, int]]:
    """Recompute the totals and per-competency scores of the completed attempts among ``attempt_ids``
    from their stored response scores (the rule of ``services._attempt_complete``), and write only
    what differs from what is stored.

    Returns ``(attempt_id, student_id)`` of the attempts whose result changed, by id. Attempts still
    awaiting rubric grading are left alone: grading completes them. On PostgreSQL this is ONE
    set-based statement (totals, competency upsert, stale rows deleted) whatever the number of
    attempts, whose cost follows the number of attempts, not the size of the tables: each attempt's
    rows are looked up by index and rewritten by address (see the module docstring); elsewhere at
    most nine queries (``_attempts_recompute_python``).
    """
    ids = sorted(set(attempt_ids))
    if not ids:
        return []
    if connection.vendor != "postgresql":
        return _attempts_recompute_python(attempt_ids=ids)
    quote = connection.ops.quote_name
    sql = _PG_RECOMPUTE_SQL.format(
        attempt=quote(Attempt._meta.db_table),
        attempt_item=quote(AttemptItem._meta.db_table),
        item=quote(Item._meta.db_table),
        response=quote(Response._meta.db_table),
        alignment=quote(ItemAlignment._meta.db_table),
        competency=quote(Competency._meta.db_table),
        framework=quote(Framework._meta.db_table),
        level=quote(MasteryLevel._meta.db_table),
        score=quote(AttemptCompetencyScore._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "ids": ids,
                "completed": Attempt.Status.COMPLETED.value,
                "default_fraction": scoring.DEFAULT_MASTERY_FRACTION,
            },
        )
        return [(attempt_id, student_id) for attempt_id, student_id in cursor.fetchall()]


def _attempts_recompute_python(*, attempt_ids: Iterable[int]) -> list[tuple[int, int]]:
    """``attempts_recompute`` in Python over the loaded rows (SQLite; the reference the SQL of
    PostgreSQL is tested against). At most nine queries whatever the number of attempts."""
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


#: Snapshot fields that change how an answer scores and nothing else.
_SCORING_ONLY_FIELDS = frozenset(
    {"key_version", "type", "partial_credit", "correct_choice_ids", "answer_value", "answer_tolerance",
     "accepted_answers"}
)  # fmt: skip


def _scores_only(job: RescoreJob, item_id: int) -> bool:
    """Whether the job's recorded change of the item touched only how answers score (not forced,
    not points, alignments or rubric). Unknown changes count as touching everything."""
    changes = job.changes if isinstance(job.changes, dict) else {}
    change = changes.get(str(item_id))
    if "forced" in changes or not isinstance(change, dict) or not change:
        return False
    return set(change) <= _SCORING_ONLY_FIELDS


def _targets(job: RescoreJob) -> list[_Target]:
    items = job.items.order_by("pk").prefetch_related("choices", "rubric_levels", "alignments")
    return [
        _Target(
            item_id=item.pk,
            key_version=item.key_version,
            snapshot=item_key_snapshot(item),
            scores_only=_scores_only(job, item.pk),
        )
        for item in items
    ]


def _rescore_batch_generic(
    *, job_id: int, target: _Target, lower: int, size: int, total: int, targets: list[_Target]
) -> tuple[int, bool] | None:
    """One batch in one transaction with the ORM (SQLite): the pending responses of ``target`` after
    id ``lower``, up to ``size`` of them, progress recounted from the data. Returns the batch's upper
    id bound and whether more may follow, or ``None`` when the job row is gone. The query count does
    not depend on ``size``.
    """
    now = timezone.now()
    with transaction.atomic():
        if not RescoreJob.objects.select_for_update().filter(pk=job_id).exists():
            return None
        upper = _batch_upper_bound(target, lower, size)
        result = _batch_generic(job_id=job_id, target=target, lower=lower, upper=upper, now=now)
        if result.processed:
            _announce(attempts_recompute(attempt_ids=result.attempt_ids))
        _progress_update(job_id, total, targets)
    return upper, upper < _NO_UPPER_BOUND


def _rescore_target(*, job: RescoreJob, target: _Target, size: int, targets: list[_Target]) -> bool:
    """Every pending response of one target, batch after batch; ``False`` when the job row is gone."""
    lower, more = 0, True
    while more:
        if connection.vendor == "postgresql":
            step = _rescore_batch_postgresql(job_id=job.pk, target=target, lower=lower, size=size)
        else:
            step = _rescore_batch_generic(
                job_id=job.pk, target=target, lower=lower, size=size, total=job.total, targets=targets
            )
        if step is None:
            return False
        lower, more = step
    return True


def rescore_job_run(*, job_id: int, batch_size: int | None = None) -> RescoreJob:
    """Run (or resume) a job to the end: every pending response of its items rescored in batches,
    attempt totals and competency scores following, progress counted in each batch's transaction.

    Idempotent: only responses below the item's key version are touched, so a second run changes
    nothing, and a run after a crash continues from the data. A failure marks the job ``failed``
    with the error and is raised again (the task retries transient database errors). At the end
    ``done`` and ``changed`` are recounted from the data.
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
        with _run_session():
            # A second pass picks up anything a concurrent writer left below the version mid-run.
            for _pass in range(2):
                for target in targets:
                    if not _rescore_target(job=job, target=target, size=size, targets=targets):
                        return job
                remaining = _remaining(targets)
                if not remaining:
                    break
        done = min(job.total, max(0, job.total - remaining))
        changed = min(done, ResponseScoreChange.objects.filter(job_id=job_id).count())
        RescoreJob.objects.filter(pk=job_id).update(
            status=RescoreJob.Status.COMPLETED, finished_at=timezone.now(), done=done, changed=changed
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
