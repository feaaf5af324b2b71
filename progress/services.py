"""Every write of the progress app: evidence, the stored mastery computed from it, teacher overrides,
lesson views, BKT fits, and the scheduling of background recomputes.

Mastery is never computed on a request: a receiver of ``assessments.signals.attempt_scored`` schedules
``progress.tasks.student_recompute`` after commit (``recompute_schedule``), and the task rebuilds the
student's evidence and mastery from the source of truth, so running it twice changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from assessments.models import Assessment, Attempt, AttemptCompetencyScore
from competencies.models import (
    CalculationMethod,
    Competency,
    LearningResource,
    MasteryLevel,
    PacingGuide,
)
from progress import catalog, grid, methods
from progress.bkt import BKTParams, fit_em
from progress.models import BKTParameters, CompetencyMastery, Evidence, ResourceView
from roster.audit import audit_record
from roster.models import AuditEvent, Enrollment, User

State = CompetencyMastery.State

#: A nightly fit needs at least this many students' sequences on a competency to replace the defaults.
BKT_FIT_MIN_STUDENTS = 20
#: Seconds a "recompute queued" marker lives in a shared cache (see ``recompute_schedule``).
RECOMPUTE_DEDUPE_SECONDS = 300


# --- scheduling -----------------------------------------------------------------------------------

_PENDING_ATTRIBUTE = "_progress_pending_recomputes"


def _recompute_dedupe_enabled() -> bool:
    """Cross-transaction dedupe needs a cache every web process and worker share (Redis, Memcached)."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    return not backend.endswith(("LocMemCache", "DummyCache"))


def recompute_dedupe_key(student_id: int) -> str:
    return f"recompute:{student_id}"


def _enqueue_recomputes(student_ids: Iterable[int]) -> None:
    from progress import tasks  # the task module imports this one

    dedupe = _recompute_dedupe_enabled()
    for student_id in sorted(set(student_ids)):
        # The marker means "a recompute is queued and has not started": the task deletes it before
        # reading anything, so a commit after that start always queues a fresh run.
        if dedupe and not cache.add(recompute_dedupe_key(student_id), 1, RECOMPUTE_DEDUPE_SECONDS):
            continue
        tasks.student_recompute.delay(student_id=student_id)


def recompute_schedule(*, student_ids: Iterable[int]) -> None:
    """Queue one ``student_recompute`` per student after the current transaction commits.

    Merged: every call inside one transaction adds to one set of student ids, and one ``on_commit``
    callback queues one task per student, so a burst of events makes one job per student. Across
    transactions, with a shared cache, a student whose recompute is already queued (not started) is
    not queued again. The task is idempotent, so a duplicate run is harmless anyway.
    """
    ids = {int(student_id) for student_id in student_ids}
    if not ids:
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _enqueue_recomputes(ids)
        return
    pending = getattr(connection, _PENDING_ATTRIBUTE, None)
    # A rolled-back transaction (or savepoint) drops its callbacks: then the set is stale.
    if pending is None or not any(entry[1] is pending["flush"] for entry in connection.run_on_commit):

        def flush() -> None:
            state = connection.__dict__.pop(_PENDING_ATTRIBUTE, None)
            _enqueue_recomputes(state["ids"] if state else ())

        pending = {"ids": set(), "flush": flush}
        setattr(connection, _PENDING_ATTRIBUTE, pending)
        transaction.on_commit(flush)
    pending["ids"].update(ids)


def recompute_started(*, student_id: int) -> None:
    """Called first by the task: later commits must queue a new run (see ``recompute_schedule``)."""
    if _recompute_dedupe_enabled():
        cache.delete(recompute_dedupe_key(student_id))


# --- evidence -------------------------------------------------------------------------------------

_EVIDENCE_FIELDS = ("student_id", "score", "is_correct", "is_summative", "observed_at")


def _evidence_sync(
    *, scores: list[dict[str, Any]], existing: list[Evidence], attempt_ids: set[int]
) -> list[Evidence]:
    """Make the attempt evidence of ``attempt_ids`` equal to ``scores``; write only what differs."""
    by_key = {(row.source_id, row.competency_id): row for row in existing}
    to_create: list[Evidence] = []
    to_update: list[Evidence] = []
    wanted: set[tuple[int, int]] = set()
    for score in scores:
        key = (score["attempt_id"], score["competency_id"])
        wanted.add(key)
        values = {
            "student_id": score["student_id"],
            "score": score["score"],
            "is_correct": score["is_met"],
            "is_summative": score["kind"] == Assessment.Kind.MASTERY_CHECK,
            "observed_at": score["submitted_at"],
        }
        row = by_key.get(key)
        if row is None:
            to_create.append(
                Evidence(
                    source=Evidence.Source.ATTEMPT,
                    source_id=score["attempt_id"],
                    competency_id=score["competency_id"],
                    **values,
                )
            )
        elif any(getattr(row, field) != value for field, value in values.items()):
            for field, value in values.items():
                setattr(row, field, value)
            row.recorded_at = timezone.now()
            to_update.append(row)
    if to_create:
        bulk_create_with_history(to_create, Evidence)
    if to_update:
        bulk_update_with_history(to_update, Evidence, [*_EVIDENCE_FIELDS, "recorded_at"])
    # A rescore that removed an alignment leaves evidence with no result behind: delete it one row at a
    # time (rare) so that the history keeps what was there.
    for key, row in by_key.items():
        if key not in wanted and row.source_id in attempt_ids:
            row.delete()
    return to_create + to_update


def _attempt_scores(attempts: Q) -> list[dict[str, Any]]:
    return list(
        AttemptCompetencyScore.objects.filter(attempts, attempt__status=Attempt.Status.COMPLETED).values(
            "attempt_id",
            "competency_id",
            "score",
            "is_met",
            student_id=F("attempt__student_id"),
            kind=F("attempt__assessment__kind"),
            submitted_at=F("attempt__submitted_at"),
        )
    )


def evidence_record_for_attempt(*, attempt_id: int) -> list[Evidence]:
    """Write one Evidence per competency of a completed attempt; returns the rows written.

    Score is the competency's scale score on the attempt, ``is_correct`` whether it was met,
    ``is_summative`` whether the attempt was a mastery check, and ``observed_at`` the attempt's
    ``submitted_at`` (when the student did the work, not when a grader finished). Upsert on
    (source, source_id, competency): recording again writes nothing; a rescore replaces the score in
    place and the history table keeps the old one. Locks the attempt row so that two recorders of one
    attempt cannot both insert. Five queries when nothing changed.
    """
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().filter(pk=attempt_id).only("pk", "status").first()
        if attempt is None or attempt.status != Attempt.Status.COMPLETED:
            return []
        scores = _attempt_scores(Q(attempt_id=attempt_id))
        existing = list(Evidence.objects.filter(source=Evidence.Source.ATTEMPT, source_id=attempt_id))
        return _evidence_sync(scores=scores, existing=existing, attempt_ids={attempt_id})


def evidence_reconcile_for_student(*, student_id: int) -> list[Evidence]:
    """Bring the attempt evidence of every completed attempt of the student in line with its results.

    Catches events that were lost (a crash between commit and enqueue) and rescores: the comparison
    is set-based, two queries when nothing changed, whatever the number of attempts.
    """
    with transaction.atomic(savepoint=False):  # inside the refresh: no savepoint round trips
        if connection.vendor != "postgresql":  # SQLite's raw rows carry no decimals or datetimes
            scores = _attempt_scores(Q(attempt__student_id=student_id))
            existing = list(Evidence.objects.filter(student_id=student_id, source=Evidence.Source.ATTEMPT))
            completed = Attempt.objects.filter(student_id=student_id, status=Attempt.Status.COMPLETED)
            attempt_ids = set(completed.values_list("pk", flat=True))
            return _evidence_sync(scores=scores, existing=existing, attempt_ids=attempt_ids)
        # Every completed attempt with its results (one row with no competency for an attempt that has
        # none): plain SQL, as this runs after every submit.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT a.id, s.competency_id, s.score, s.is_met, a.student_id, m.kind, a.submitted_at
                FROM {Attempt._meta.db_table} a
                JOIN {Assessment._meta.db_table} m ON m.id = a.assessment_id
                LEFT JOIN {AttemptCompetencyScore._meta.db_table} s ON s.attempt_id = a.id
                WHERE a.student_id = %s AND a.status = %s
                """,
                [student_id, Attempt.Status.COMPLETED.value],
            )
            rows = cursor.fetchall()
        fields = ("attempt_id", "competency_id", "score", "is_met", "student_id", "kind", "submitted_at")
        scores = [dict(zip(fields, row, strict=True)) for row in rows if row[1] is not None]
        existing = list(Evidence.objects.filter(student_id=student_id, source=Evidence.Source.ATTEMPT))
        return _evidence_sync(scores=scores, existing=existing, attempt_ids={row[0] for row in rows})


def _scale_levels(competency: Competency) -> list[tuple[Decimal, str, bool]]:
    scale_id = competency.framework.mastery_scale_id
    if scale_id is None:
        return []
    return [
        (points, name, is_mastery)
        for points, name, is_mastery in MasteryLevel.objects.filter(scale_id=scale_id).values_list(
            "points", "name", "is_mastery"
        )
    ]


def _mastery_points(levels: list[tuple[Decimal, str, bool]]) -> Decimal | None:
    return next((points for points, _, is_mastery in levels if is_mastery), None)


def evidence_add_observation(
    *,
    student: User,
    competency: Competency,
    score: Decimal | int | str,
    author: User,
    note: str = "",
    observed_at: datetime | None = None,
) -> Evidence:
    """A teacher's observation of the student's work on the competency, on the mastery scale.

    It counts in the calculation like any score (practice, not a failed mastery check) and is met when
    it reaches the scale's mastery level. Schedules the student's recompute after commit.
    """
    try:
        value = Decimal(str(score))
    except ArithmeticError:
        raise ValidationError("The score must be a number.") from None
    if not value.is_finite() or value < 0:
        raise ValidationError("The score must be a number of at least 0.")
    levels = _scale_levels(competency)
    mastery_points = _mastery_points(levels)
    with transaction.atomic():
        evidence = Evidence(
            student=student,
            competency=competency,
            source=Evidence.Source.OBSERVATION,
            is_summative=False,
            score=methods.quantize(value),
            is_correct=mastery_points is not None and value >= mastery_points,
            observed_at=observed_at or timezone.now(),
            author=author,
            note=note,
        )
        evidence._history_user = author  # type: ignore[attr-defined]
        evidence.save()
        recompute_schedule(student_ids=[student.pk])
    return evidence


def mastery_override(
    *, student: User, competency: Competency, state: str, author: User, note: str, now: datetime | None = None
) -> CompetencyMastery:
    """A teacher marks the competency ``mastered`` or ``unlocked`` for the student, with a note.

    The override always wins over the calculation (mastered stays mastered whatever the evidence says;
    unlocked is ready without its prerequisites) and is audited twice: an Evidence row with source
    ``override``, the author and the note (not counted in the calculation: it is a decision, not a
    measurement), and the CompetencyMastery history with the author and the note as change reason.
    The student's mastery is recomputed at once so the answer shows the new state.
    """
    if state not in ("mastered", "unlocked"):
        raise ValidationError("An override is 'mastered' or 'unlocked'.")
    if not note.strip():
        raise ValidationError("An override needs a note saying why.")
    now = now or timezone.now()
    levels = _scale_levels(competency)
    mastery_points = _mastery_points(levels)
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=student.pk).first()
        evidence = Evidence(
            student=student,
            competency=competency,
            source=Evidence.Source.OVERRIDE,
            is_summative=False,
            score=mastery_points if (state == "mastered" and mastery_points is not None) else Decimal(0),
            is_correct=state == "mastered",
            observed_at=now,
            author=author,
            note=f"{state}: {note}",
        )
        evidence._history_user = author  # type: ignore[attr-defined]
        evidence.save()
        mastery = CompetencyMastery.objects.filter(student=student, competency=competency).first()
        before = _override_audit_state(mastery)
        if mastery is None:
            mastery = CompetencyMastery(student=student, competency=competency)
        if state == "mastered":
            mastery.is_overridden = True
        else:
            mastery.is_unlocked_by_teacher = True
        mastery._history_user = author  # type: ignore[attr-defined]
        mastery._change_reason = f"Teacher override ({state}): {note}"  # type: ignore[attr-defined]
        mastery.save()
        mastery_recompute(student_id=student.pk, competency_ids=[competency.pk], now=now)
        mastery.refresh_from_db()
        unlocked = state == "unlocked"
        audit_record(
            actor=author,
            action=AuditEvent.Action.MASTERY_UNLOCK if unlocked else AuditEvent.Action.MASTERY_OVERRIDE,
            target=mastery,
            before=before,
            after=_override_audit_state(mastery),
            note=note,
            district=student.district_id,
        )
        recompute_schedule(student_ids=[student.pk])  # the flags follow in the task
    return mastery


def _override_audit_state(mastery: CompetencyMastery | None) -> dict[str, Any] | None:
    if mastery is None:
        return None
    return {
        "competency_id": mastery.competency_id,
        "state": mastery.state,
        "score": mastery.score,
        "is_overridden": mastery.is_overridden,
        "is_unlocked_by_teacher": mastery.is_unlocked_by_teacher,
    }


def lesson_resource_viewed(
    *, student: User, resource: LearningResource, now: datetime | None = None
) -> ResourceView:
    """Record that the student opened a lesson resource (what ``view_resources`` remediation asks)."""
    now = now or timezone.now()
    with transaction.atomic():
        view, created = ResourceView.objects.select_for_update().get_or_create(
            student=student, resource=resource, defaults={"first_viewed_at": now, "last_viewed_at": now}
        )
        if not created and view.last_viewed_at < now:
            view.last_viewed_at = now
            view.save(update_fields=["last_viewed_at"])
    return view


# --- mastery --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MasteryChange:
    """One competency whose state, level or score a recompute changed (old values None for a new row)."""

    competency_id: int
    old_state: str | None
    new_state: str
    old_level_points: Decimal | None
    new_level_points: Decimal | None
    old_score: Decimal | None
    new_score: Decimal | None


_MASTERY_FIELDS = (
    "state",
    "score",
    "level_points",
    "level_name",
    "p_known",
    "method",
    "evidence_count",
    "explanation",
    "mastered_at",
    "first_activity_at",
    "last_activity_at",
    "failed_checks",
)


@dataclass
class _Computed:
    score: Decimal | None = None
    level_points: Decimal | None = None
    level_name: str = ""
    p_known: float | None = None
    method: str = ""
    evidence_count: int = 0
    explanation: str = ""
    is_mastered: bool = False
    has_activity: bool = False
    first_activity_at: datetime | None = None
    last_activity_at: datetime | None = None
    failed_checks: int = 0
    state: str = State.LOCKED
    mastered_at: datetime | None = None


#: What the calculation reads of an evidence row (read as named tuples, not model instances).
_CALCULATION_FIELDS = ("competency_id", "source", "score", "is_correct", "is_summative", "observed_at")


def _fmt_score(value: Decimal | None) -> str:
    return "no score" if value is None else methods.fmt(value)


def mastery_recompute(
    *, student_id: int, competency_ids: list[int] | None = None, now: datetime | None = None
) -> list[MasteryChange]:
    """Recompute and store the student's mastery of every competency of the frameworks concerned.

    Frameworks concerned: those of ``competency_ids`` when given, else every framework the student has
    evidence or mastery rows in or studies through a section's pacing guide. Every competency of those
    frameworks is recomputed (prerequisites and roll-ups reach across the tree), but only rows that
    differ are written, set-based (one bulk insert, one bulk update, with history); a second run writes
    nothing and returns no change. Eleven queries at most, whatever the number of competencies, seven
    when the catalog is cached (``progress.catalog``: PostgreSQL, after the first recompute) (plus
    the delete of rows that became blank, when there are any).

    Storage is sparse (``progress.grid``): a blank result (locked or ready, no evidence, no score) is not
    stored, and a stored row that becomes blank is deleted, unless a teacher's unlock or override is
    on it. A blank result with no row before is no change.

    Leaves: the evidence (observations and attempts; override rows are audit only), ordered by when
    the student did the work, goes through the competency's method and parameter (or the framework's,
    when the competency has none) in ``progress.methods.calculate``; BKT uses the competency's fitted
    ``BKTParameters`` (defaults otherwise) over ``is_correct``. The score maps to the highest scale level
    it reaches; mastered when that level reaches the mastery level (BKT: P(known) >= 0.95).

    Inner nodes roll up: mastered when every child is mastered (or overridden); score = the mean of the
    children's scores that have one; level from that mean; evidence count = the children's total.

    State, in order: mastered (calculation or teacher override); in_progress when the student has
    any evidence on it (inner node: any child in progress or mastered); ready when every prerequisite
    is mastered or a teacher unlocked it (inner node: any child ready); otherwise locked.

    Re-lock rule (a rescore takes a mastered prerequisite below mastery): the prerequisite goes back to
    in_progress. A dependent the student already started (has evidence, so in_progress or mastered)
    keeps its state: its own evidence decides it, never the prerequisite. A dependent the student has
    not started (ready, no evidence) goes back to locked, unless a teacher unlocked it.

    ``failed_checks``: the number of summative evidence rows (mastery checks) not met on the
    competency, in total (a retake that passes does not reset it; mastery does, for flags, by state).
    ``mastered_at``: when the current mastered stretch began (the newest evidence's time at the moment
    of mastering; now for an override); kept while mastered, cleared when the state drops.
    """
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        # Serialises recomputes of one student (PostgreSQL), so two workers never insert the same row;
        # and the catalog version, for the cached catalog.
        version = catalog.lock_student(student_id)
        existing_rows = {
            row.competency_id: row for row in CompetencyMastery.objects.filter(student_id=student_id)
        }
        if competency_ids is not None:
            framework_ids = set(
                Competency.objects.filter(pk__in=competency_ids).values_list("framework_id", flat=True)
            )
        else:
            framework_ids = _student_framework_ids(student_id)
        if not framework_ids:
            return []
        known = catalog.catalog_for(framework_ids, version)
        competencies = known.competencies
        competency_by_id = {competency.pk: competency for competency in competencies}
        prerequisites = known.prerequisites
        levels_by_scale = known.levels_by_scale
        bkt_by_competency = known.bkt
        evidence_by_competency: dict[int, list[Any]] = defaultdict(list)
        for evidence in (
            Evidence.objects.filter(student_id=student_id, competency_id__in=list(competency_by_id))
            .order_by("observed_at", "pk")
            .values_list(*_CALCULATION_FIELDS, named=True)
        ):
            evidence_by_competency[evidence.competency_id].append(evidence)

        children: dict[int, list[int]] = defaultdict(list)
        for competency in competencies:
            if competency.parent_id in competency_by_id:
                children[competency.parent_id].append(competency.pk)

        computed: dict[int, _Computed] = {}

        def compute(competency_id: int) -> _Computed:
            if competency_id in computed:
                return computed[competency_id]
            competency = competency_by_id[competency_id]
            levels = levels_by_scale.get(competency.framework.mastery_scale_id, [])
            if children[competency_id]:
                result = _roll_up(competency, [compute(child) for child in children[competency_id]], levels)
            else:
                result = _compute_leaf(
                    competency,
                    evidence_by_competency.get(competency_id, []),
                    levels,
                    bkt_by_competency.get(competency_id),
                )
            row = existing_rows.get(competency_id)
            if row is not None and row.is_overridden:
                result.is_mastered = True
                result.explanation = f"Teacher override: mastered. Calculated: {result.explanation}"
            computed[competency_id] = result
            return result

        for competency in competencies:
            compute(competency.pk)

        def is_mastered(competency_id: int) -> bool:
            if competency_id in computed:
                return computed[competency_id].is_mastered
            row = existing_rows.get(competency_id)  # a prerequisite in another framework
            return row is not None and row.state == State.MASTERED

        def leaf_state(competency_id: int) -> str:
            result = computed[competency_id]
            if result.is_mastered:
                return State.MASTERED
            if result.has_activity:
                return State.IN_PROGRESS
            row = existing_rows.get(competency_id)
            if (row is not None and row.is_unlocked_by_teacher) or all(
                is_mastered(prerequisite) for prerequisite in prerequisites.get(competency_id, [])
            ):
                return State.READY
            return State.LOCKED

        def state_of(competency_id: int) -> str:
            result = computed[competency_id]
            if not children[competency_id]:
                result.state = leaf_state(competency_id)
                return result.state
            child_states = [state_of(child) for child in children[competency_id]]
            if result.is_mastered:
                result.state = State.MASTERED
            elif any(state in (State.IN_PROGRESS, State.MASTERED) for state in child_states):
                result.state = State.IN_PROGRESS
            elif (
                any(state == State.READY for state in child_states)
                or leaf_state(competency_id) == State.READY
            ):
                result.state = State.READY
            else:
                result.state = State.LOCKED
            return result.state

        roots = [competency.pk for competency in competencies if competency.parent_id not in competency_by_id]
        for root in roots:
            state_of(root)

        # mastered_at: bottom-up so that a parent can take its children's latest.
        def mastered_at_of(competency_id: int) -> datetime | None:
            result = computed[competency_id]
            row = existing_rows.get(competency_id)
            child_times = [mastered_at_of(child) for child in children[competency_id]]
            if result.state != State.MASTERED:
                result.mastered_at = None
            elif row is not None and row.state == State.MASTERED and row.mastered_at is not None:
                result.mastered_at = row.mastered_at
            elif row is not None and row.is_overridden:
                result.mastered_at = now
            elif children[competency_id]:
                result.mastered_at = max((time for time in child_times if time is not None), default=now)
            else:
                result.mastered_at = result.last_activity_at or now
            return result.mastered_at

        for root in roots:
            mastered_at_of(root)

        to_create: list[CompetencyMastery] = []
        to_update: list[CompetencyMastery] = []
        to_delete: list[int] = []
        old_states = {(student_id, cid): row.state for cid, row in existing_rows.items()}
        changes: list[MasteryChange] = []
        for competency in competencies:
            result = computed[competency.pk]
            values = {
                "state": result.state,
                "score": result.score,
                "level_points": result.level_points,
                "level_name": result.level_name,
                "p_known": result.p_known,
                "method": result.method,
                "evidence_count": result.evidence_count,
                "explanation": result.explanation,
                "mastered_at": result.mastered_at,
                "first_activity_at": result.first_activity_at,
                "last_activity_at": result.last_activity_at,
                "failed_checks": result.failed_checks,
            }
            row = existing_rows.get(competency.pk)
            if row is None:
                # What the student saw before: the blank state derived from the stored rows then.
                before = (
                    grid.derived_state(student_id, competency.pk, old_states, children, prerequisites),
                    None,
                    None,
                )
            else:
                before = (row.state, row.level_points, row.score)
            if before != (result.state, result.level_points, result.score):
                changes.append(
                    MasteryChange(
                        competency.pk,
                        before[0],
                        result.state,
                        before[1],
                        result.level_points,
                        before[2],
                        result.score,
                    )
                )
            if _is_blank(result) and (row is None or not (row.is_unlocked_by_teacher or row.is_overridden)):
                # Sparse storage (``progress.grid``): a blank row is derived on read, not stored.
                if row is not None:
                    to_delete.append(row.pk)
                continue
            if row is None:
                to_create.append(
                    CompetencyMastery(
                        student_id=student_id, competency_id=competency.pk, computed_at=now, **values
                    )
                )
                continue
            if all(getattr(row, field) == value for field, value in values.items()):
                continue
            for field, value in values.items():
                setattr(row, field, value)
            row.computed_at = now
            to_update.append(row)
        if to_delete:
            CompetencyMastery.objects.filter(pk__in=to_delete).delete()
        if to_create:
            bulk_create_with_history(to_create, CompetencyMastery, batch_size=500)
        if to_update:
            _mastery_update(to_update)
    return changes


#: The SQL type of each updated column, for the VALUES list of ``_mastery_update``.
_MASTERY_TYPES = {
    "state": "varchar",
    "score": "numeric",
    "level_points": "numeric",
    "level_name": "varchar",
    "p_known": "double precision",
    "method": "varchar",
    "evidence_count": "integer",
    "explanation": "text",
    "mastered_at": "timestamptz",
    "first_activity_at": "timestamptz",
    "last_activity_at": "timestamptz",
    "failed_checks": "integer",
    "computed_at": "timestamptz",
}


def _mastery_update(rows: list[CompetencyMastery]) -> None:
    """``bulk_update_with_history`` for the live recompute's few changed rows, on PostgreSQL as one
    ``UPDATE ... FROM (VALUES ...)``: Django's ``bulk_update`` builds a CASE per field and row, and
    compiling it cost more than the statement. The history rows are the same bulk insert."""
    if connection.vendor != "postgresql":
        bulk_update_with_history(rows, CompetencyMastery, [*_MASTERY_FIELDS, "computed_at"], batch_size=500)
        return
    columns = list(_MASTERY_TYPES)
    row_sql = "(" + ", ".join(["%s"] + [f"%s::{_MASTERY_TYPES[name]}" for name in columns]) + ")"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CompetencyMastery._meta.db_table} AS m SET "
            + ", ".join(f"{name} = v.{name}" for name in columns)
            + f" FROM (VALUES {', '.join([row_sql] * len(rows))}) AS v(id, {', '.join(columns)})"
            " WHERE m.id = v.id",
            [value for row in rows for value in (row.pk, *(getattr(row, name) for name in columns))],
        )
    CompetencyMastery.history.bulk_history_create(rows, update=True, batch_size=500)


def _student_framework_ids(student_id: int) -> set[int]:
    """The frameworks a student's recompute covers: those they have evidence or mastery rows in, or
    study through an active enrolment in a section whose pacing guide follows them. Three semi-joins
    (not joins: joining evidence and mastery rows multiplies them), each on an index of its table;
    plain SQL, since the live path runs it after every submit and compiling the ORM's version of it
    cost more than running it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT DISTINCT c.framework_id FROM {Competency._meta.db_table} c
            WHERE c.id IN (SELECT competency_id FROM {Evidence._meta.db_table} WHERE student_id = %s)
                OR c.id IN (SELECT competency_id FROM {CompetencyMastery._meta.db_table} WHERE student_id = %s)
                OR c.framework_id IN (
                    SELECT g.framework_id FROM {PacingGuide._meta.db_table} g
                    JOIN {Enrollment._meta.db_table} e ON e.section_id = g.section_id
                    WHERE e.user_id = %s AND e.role = %s AND e.is_active)
            """,
            [student_id, student_id, student_id, Enrollment.Role.STUDENT.value],
        )
        return {framework_id for (framework_id,) in cursor.fetchall()}


def _is_blank(result: _Computed) -> bool:
    """Nothing to store: locked or ready, no evidence, no score (``progress.grid`` derives it on read)."""
    return (
        result.state in (State.LOCKED, State.READY)
        and not result.has_activity
        and result.evidence_count == 0
        and result.score is None
    )


def _method_of(competency: Competency) -> tuple[str, Decimal | None]:
    if competency.calculation_method:
        return competency.calculation_method, competency.calculation_parameter
    return competency.framework.calculation_method, competency.framework.calculation_parameter


def _compute_leaf(
    competency: Competency,
    evidence: list[Evidence],
    levels: list[tuple[Decimal, str, bool]],
    bkt_params: BKTParams | None,
) -> _Computed:
    counted = [row for row in evidence if row.source != Evidence.Source.OVERRIDE]
    method, parameter = _method_of(competency)
    mastery_points = _mastery_points(levels)
    result = _Computed(method=method, evidence_count=len(counted))
    if counted:
        result.has_activity = True
        result.first_activity_at = counted[0].observed_at
        result.last_activity_at = max(row.observed_at for row in counted)
    result.failed_checks = sum(1 for row in counted if row.is_summative and not row.is_correct)
    if method == CalculationMethod.BKT:
        outcome = methods.calculate(
            method,
            [(row.observed_at, 1 if row.is_correct else 0) for row in counted],
            bkt_params=bkt_params,
        )
        result.score = outcome.score
        result.p_known = outcome.probability
        result.is_mastered = bool(outcome.is_mastered)
        level = next((level for level in levels if level[2]), None) if result.is_mastered else None
    else:
        if method == CalculationMethod.N_TIMES and mastery_points is None:
            mastery_points = max((level[0] for level in levels), default=Decimal(0))
        outcome = methods.calculate(
            method,
            [(row.observed_at, row.score) for row in counted],
            parameter,
            mastery_points,
        )
        result.score = outcome.score
        level = methods.level_for(outcome.score, levels)
        result.is_mastered = level is not None and mastery_points is not None and level[0] >= mastery_points
    if level is not None:
        result.level_points, result.level_name = level[0], level[1]
    result.explanation = methods.describe(outcome, level)
    return result


def _roll_up(
    competency: Competency, children: list[_Computed], levels: list[tuple[Decimal, str, bool]]
) -> _Computed:
    scored = [child.score for child in children if child.score is not None]
    mastered = sum(1 for child in children if child.is_mastered)
    result = _Computed(
        method="",
        evidence_count=sum(child.evidence_count for child in children),
        is_mastered=mastered == len(children),
        has_activity=any(child.has_activity for child in children),
        failed_checks=sum(child.failed_checks for child in children),
    )
    firsts = [child.first_activity_at for child in children if child.first_activity_at is not None]
    lasts = [child.last_activity_at for child in children if child.last_activity_at is not None]
    result.first_activity_at = min(firsts) if firsts else None
    result.last_activity_at = max(lasts) if lasts else None
    text = f"roll-up: {mastered} of {len(children)} parts mastered"
    if scored:
        mean = sum(scored, Decimal(0)) / len(scored)
        result.score = methods.quantize(mean)
        terms = " + ".join(methods.fmt(score) for score in scored)
        text += f"; mean of the parts' scores ({terms}) / {len(scored)} = {methods.fmt(result.score)}"
        level = methods.level_for(result.score, levels)
        if level is not None:
            result.level_points, result.level_name = level[0], level[1]
            text += f" -> {level[1]}"
    else:
        text += "; no scores yet"
    result.explanation = text + ("; mastered when every part is" if not result.is_mastered else "")
    return result


# --- the background work --------------------------------------------------------------------------


def student_progress_refresh(*, student_id: int, now: datetime | None = None) -> list[MasteryChange]:
    """What the task does: reconcile the attempt evidence, recompute mastery, then refresh the flags."""
    recompute_started(student_id=student_id)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Everything written here is derived from what is already committed (the answers, the
            # results) and is recomputed whenever lost (the reconciler, the nightly sweep): one commit,
            # which need not wait for its WAL to reach the disk.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        evidence_reconcile_for_student(student_id=student_id)
        changes = mastery_recompute(student_id=student_id, now=now)
        _flags_refresh(student_id=student_id, changes=changes, now=now)
    return changes


def _flags_refresh(*, student_id: int, changes: list[MasteryChange], now: datetime | None) -> None:
    # Imported here: the flags module reads the mastery this module writes, and may import it.
    from progress.flag_services import flags_refresh_for_student

    flags_refresh_for_student(student_id=student_id, changes=changes, now=now)


def bkt_parameters_fit_all(
    *, min_students: int = BKT_FIT_MIN_STUDENTS, now: datetime | None = None
) -> list[BKTParameters]:
    """Fit BKT parameters by EM for every competency that uses BKT, from every student's sequence of
    ``is_correct`` ordered by when the work was done (override rows excluded); upsert one row per
    competency. Competencies with fewer than ``min_students`` sequences keep their current parameters
    (or the defaults). The next recompute uses what is stored. Three queries plus one upsert.
    """
    now = now or timezone.now()
    competency_ids = list(
        Competency.objects.filter(
            Q(calculation_method=CalculationMethod.BKT)
            | Q(calculation_method="", framework__calculation_method=CalculationMethod.BKT)
        ).values_list("pk", flat=True)
    )
    if not competency_ids:
        return []
    sequences: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    rows = (
        Evidence.objects.filter(competency_id__in=competency_ids)
        .exclude(source=Evidence.Source.OVERRIDE)
        .order_by("competency_id", "student_id", "observed_at", "pk")
        .values_list("competency_id", "student_id", "is_correct")
    )
    for competency_id, student_id, is_correct in rows.iterator(chunk_size=5000):
        sequences[competency_id][student_id].append(1 if is_correct else 0)
    current = {
        row.competency_id: row for row in BKTParameters.objects.filter(competency_id__in=competency_ids)
    }
    fitted: list[BKTParameters] = []
    for competency_id, by_student in sequences.items():
        if len(by_student) < min_students:
            continue
        previous = current.get(competency_id)
        initial = (
            BKTParams(previous.prior, previous.learn, previous.guess, previous.slip, previous.forget)
            if previous is not None
            else None
        )
        params = fit_em(list(by_student.values()), initial=initial)
        fitted.append(
            BKTParameters(
                competency_id=competency_id,
                prior=params.prior,
                learn=params.learn,
                guess=params.guess,
                slip=params.slip,
                forget=params.forget,
                sequence_count=len(by_student),
                fitted_at=now,
            )
        )
    if fitted:
        BKTParameters.objects.bulk_create(
            fitted,
            update_conflicts=True,
            unique_fields=["competency"],
            update_fields=["prior", "learn", "guess", "slip", "forget", "sequence_count", "fitted_at"],
        )
    return fitted
