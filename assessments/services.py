"""Every write of the assessments app: starting, answering, submitting and grading attempts, and the
item bank. Each service owns its transaction; announcements to higher layers go through
``assessments.signals`` and their receivers schedule work with ``on_commit``.
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, Prefetch
from django.utils import timezone
from django.utils.module_loading import import_string

from assessments import scoring, signals
from assessments.draw import draw_form
from assessments.models import (
    Assessment,
    Attempt,
    AttemptCompetencyScore,
    AttemptItem,
    BlueprintRule,
    Item,
    ItemAlignment,
    ItemChoice,
    Response,
    RubricLevel,
)
from competencies.models import Competency
from roster.models import User

SHORT_TEXT_MAX_LENGTH = 1_000
EXTENDED_TEXT_MAX_LENGTH = 20_000
MAX_CHOICES_SELECTED = 100


class AttemptRefused(Exception):
    """The gate is closed: the student may not start this assessment now. ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AttemptClosed(Exception):
    """The attempt takes no more answers: it was submitted or its time ran out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ItemNotOnForm(Exception):
    """The item is not on this attempt's form."""


# --- starting -------------------------------------------------------------------------------------


def attempt_start_refusal(
    *, assessment: Assessment, student: User, previous: Attempt | None, now: datetime
) -> str | None:
    """Why the student may not start a new attempt now, or ``None``. At most two queries: a passed
    practice (``pass_practice`` remediation after a failed attempt) and the start gate's own."""
    refusals = attempt_start_refusals(
        student=student,
        assessments=[assessment],
        previous={assessment.pk: previous} if previous is not None else {},
        now=now,
        ask_gate=True,
    )
    return refusals[assessment.pk]


def attempt_start_refusals(
    *,
    student: User,
    assessments: Sequence[Assessment],
    previous: Mapping[int, Attempt] | None = None,
    now: datetime | None = None,
    ask_gate: bool = False,
) -> dict[int, str | None]:
    """Why the student may not start a new attempt at each assessment now (``None`` when they may),
    keyed by assessment id, with the wording ``attempt_start`` refuses with.

    The checks this app owns: status, attempts used, cooldown, ``pass_practice`` remediation. An
    open attempt still within its time can be resumed (``None``); one past its deadline counts as
    submitted at its deadline, because starting submits it first. ``previous`` (assessment id -> the
    student's last attempt there; a missing key means none) may be passed in when the caller has it.
    ``settings.ASSESSMENTS_START_GATE`` is asked only with ``ask_gate`` (its queries are per
    assessment): a higher layer that checks many assessments composes its own batch gate instead.
    Queries without the gate: one for the attempts unless ``previous`` is given, plus one for passed
    practices (two when some assessments are blueprints), whatever the number of assessments.
    """
    now = now or timezone.now()
    if previous is None:
        last: dict[int, Attempt] = {}
        for attempt in Attempt.objects.filter(
            student=student, assessment_id__in=[assessment.pk for assessment in assessments]
        ).order_by("assessment_id", "number"):
            last[attempt.assessment_id] = attempt  # the highest number wins
        previous = last
    refusals: dict[int, str | None] = {}
    needs_practice: list[tuple[Assessment, Attempt]] = []
    for assessment in assessments:
        attempt = previous.get(assessment.pk)
        if attempt is not None and attempt.status == Attempt.Status.IN_PROGRESS:
            if attempt.deadline is None or now < attempt.deadline:
                refusals[assessment.pk] = None  # resumes the open attempt
                continue
            attempt = copy.copy(attempt)
            attempt.status = Attempt.Status.SUBMITTED
            attempt.submitted_at = attempt.deadline
        refusals[assessment.pk] = _own_refusal(assessment, attempt, now)
        if (
            refusals[assessment.pk] is None
            and attempt is not None
            and attempt.is_passed is False
            and assessment.remediation == Assessment.Remediation.PASS_PRACTICE
        ):
            needs_practice.append((assessment, attempt))
    if needs_practice:
        passed = _practices_passed(student=student, pairs=needs_practice)
        for assessment, attempt in needs_practice:
            failed_at = attempt.submitted_at
            if not any(
                failed_at is None or (passed_at is not None and passed_at > failed_at)
                for passed_at in passed.get(assessment.pk, [])
            ):
                refusals[assessment.pk] = (
                    "Remediation not done: pass a practice on this competency before retaking."
                )
    gate_path = getattr(settings, "ASSESSMENTS_START_GATE", None)
    if ask_gate and gate_path:
        gate = import_string(gate_path) if isinstance(gate_path, str) else gate_path
        for assessment in assessments:
            if refusals[assessment.pk] is None and not _can_resume(previous.get(assessment.pk), now):
                reason = gate(assessment, student)
                refusals[assessment.pk] = str(reason) if reason else None
    return refusals


def _can_resume(attempt: Attempt | None, now: datetime) -> bool:
    return (
        attempt is not None
        and attempt.status == Attempt.Status.IN_PROGRESS
        and (attempt.deadline is None or now < attempt.deadline)
    )


def _own_refusal(assessment: Assessment, previous: Attempt | None, now: datetime) -> str | None:
    """Status, attempts used and cooldown: what needs no query."""
    if assessment.status != Assessment.Status.ACTIVE:
        return "This assessment is not open."
    if previous is not None:
        if assessment.max_attempts is not None and previous.number >= assessment.max_attempts:
            return f"All {assessment.max_attempts} attempts have been used."
        if assessment.cooldown_hours and previous.submitted_at is not None:
            opens_at = previous.submitted_at + timedelta(hours=assessment.cooldown_hours)
            if now < opens_at:
                return f"Cooldown: the next attempt opens at {opens_at.isoformat()}."
    return None


def _practices_passed(
    *, student: User, pairs: Sequence[tuple[Assessment, Attempt]]
) -> dict[int, list[datetime | None]]:
    """Assessment id -> when the student passed a practice on its competency (or, for a blueprint, on
    one of its blueprint's competencies). One query, two when there are blueprints."""
    passed: dict[int, list[datetime | None]] = defaultdict(list)
    practices = Attempt.objects.filter(
        student=student,
        assessment__kind=Assessment.Kind.PRACTICE,
        status=Attempt.Status.COMPLETED,
        is_passed=True,
    )
    by_competency: dict[int, list[int]] = defaultdict(list)
    blueprint_ids: list[int] = []
    for assessment, _ in pairs:
        if assessment.competency_id is not None:
            by_competency[assessment.competency_id].append(assessment.pk)
        else:
            blueprint_ids.append(assessment.pk)
    if by_competency:
        for competency_id, submitted_at in practices.filter(
            assessment__competency_id__in=list(by_competency)
        ).values_list("assessment__competency_id", "submitted_at"):
            for assessment_id in by_competency[competency_id]:
                passed[assessment_id].append(submitted_at)
    if blueprint_ids:
        for assessment_id, submitted_at in (
            practices.filter(
                assessment__blueprint_rules__competency__blueprint_rules__assessment_id__in=blueprint_ids
            )
            .values_list(
                "assessment__blueprint_rules__competency__blueprint_rules__assessment_id", "submitted_at"
            )
            .distinct()
        ):
            passed[assessment_id].append(submitted_at)
    return passed


def attempt_start(
    *, assessment: Assessment, student: User, now: datetime | None = None, seed: int | None = None
) -> Attempt:
    """Open a new attempt on a freshly drawn form, or return the student's open one.

    An open attempt whose time has run out is submitted first. The gate refuses with
    ``AttemptRefused`` when attempts are used up, the cooldown is not over, remediation is not done
    (``pass_practice``; ``view_resources`` is checked by the higher-layer gate, which knows what was
    viewed) or ``settings.ASSESSMENTS_START_GATE`` (a dotted path to ``(assessment, student) -> str |
    None``) gives a reason. The form avoids the previous attempt's items wherever the pool allows.
    Query count does not depend on the number of items.
    """
    now = now or timezone.now()
    with transaction.atomic():
        previous = (
            Attempt.objects.select_for_update()
            .filter(assessment=assessment, student=student)
            .order_by("-number")
            .first()
        )
        if previous is not None and previous.status == Attempt.Status.IN_PROGRESS:
            if previous.deadline is None or now < previous.deadline:
                return previous
            previous = attempt_submit(attempt=previous, now=previous.deadline)
        reason = attempt_start_refusal(assessment=assessment, student=student, previous=previous, now=now)
        if reason:
            raise AttemptRefused(reason)

        rules = list(
            BlueprintRule.objects.filter(assessment=assessment)
            .order_by("position", "pk")
            .prefetch_related(
                Prefetch(
                    "items",
                    queryset=Item.objects.filter(status=Item.Status.ACTIVE).only("pk", "key_version"),
                )
            )
        )
        key_versions: dict[int, int] = {}
        pool_by_competency: dict[int, list[int]] = defaultdict(list)
        open_rules = [rule.competency_id for rule in rules if not rule.items.all()]
        if open_rules:
            aligned = ItemAlignment.objects.filter(
                competency_id__in=open_rules, item__status=Item.Status.ACTIVE
            ).values_list("competency_id", "item_id", "item__key_version")
            for competency_id, item_id, key_version in aligned:
                pool_by_competency[competency_id].append(item_id)
                key_versions[item_id] = key_version
        pools: list[tuple[int, list[int]]] = []
        for rule in rules:
            chosen_items = list(rule.items.all())
            if chosen_items:
                key_versions.update({item.pk: item.key_version for item in chosen_items})
                pools.append((rule.draw_count, [item.pk for item in chosen_items]))
            else:
                pools.append((rule.draw_count, pool_by_competency.get(rule.competency_id, [])))
        avoid: list[int] = []
        if previous is not None:
            avoid = list(AttemptItem.objects.filter(attempt=previous).values_list("item_id", flat=True))

        seed = secrets.randbelow(2**31) if seed is None else seed
        item_ids = draw_form(pools=pools, avoid=avoid, seed=seed)
        if not item_ids:
            raise AttemptRefused("This assessment has no active items to draw from.")
        deadline = (
            now + timedelta(minutes=assessment.time_limit_minutes) if assessment.time_limit_minutes else None
        )
        try:
            # A concurrent start (a double click) loses on the one-open-attempt constraint and
            # resumes the winner's attempt instead of failing.
            with transaction.atomic():
                attempt = Attempt.objects.create(
                    assessment=assessment,
                    student=student,
                    number=previous.number + 1 if previous is not None else 1,
                    seed=seed,
                    started_at=now,
                    deadline=deadline,
                )
                AttemptItem.objects.bulk_create(
                    AttemptItem(
                        attempt=attempt,
                        item_id=item_id,
                        position=position,
                        key_version_seen=key_versions[item_id],
                    )
                    for position, item_id in enumerate(item_ids, start=1)
                )
        except IntegrityError:
            winner = Attempt.objects.filter(
                assessment=assessment, student=student, status=Attempt.Status.IN_PROGRESS
            ).first()
            if winner is None:
                raise
            return winner
    return attempt


# --- answering ------------------------------------------------------------------------------------


def _ensure_open(attempt: Attempt, now: datetime) -> None:
    if attempt.status != Attempt.Status.IN_PROGRESS:
        raise AttemptClosed("This attempt has been submitted; it takes no more answers.")
    if attempt.deadline is not None and now > attempt.deadline:
        raise AttemptClosed("The time limit has passed; this attempt takes no more answers.")


def answer_clean(*, item: Item, answer: Any, choice_ids: Iterable[int] | None = None) -> Any:
    """The answer in its stored shape, or ``ValidationError`` naming what is wrong. ``None`` clears it.

    single_choice: a choice id of the item; multiple_choice: a list of distinct choice ids;
    numeric: a number or a numeric string; short_text and extended_text: a string.
    """
    if answer is None:
        return None
    if item.has_choices:
        valid_ids = set(choice_ids if choice_ids is not None else item.choices.values_list("pk", flat=True))
        if item.type == Item.Type.SINGLE_CHOICE:
            if not scoring._is_int_id(answer) or answer not in valid_ids:
                raise ValidationError("A single-choice answer must be the id of one of the item's choices.")
            return answer
        if (
            not isinstance(answer, list)
            or len(answer) > MAX_CHOICES_SELECTED
            or not all(scoring._is_int_id(value) for value in answer)
        ):
            raise ValidationError("A multiple-choice answer must be a list of choice ids.")
        if len(set(answer)) != len(answer):
            raise ValidationError("A multiple-choice answer lists a choice more than once.")
        if not set(answer) <= valid_ids:
            raise ValidationError("A multiple-choice answer names a choice that is not on this item.")
        return sorted(answer)
    if item.type == Item.Type.NUMERIC:
        number = scoring.parse_number(answer)
        if number is None:
            raise ValidationError("A numeric answer must be a number, such as 3.5.")
        return answer.strip() if isinstance(answer, str) else answer
    limit = SHORT_TEXT_MAX_LENGTH if item.type == Item.Type.SHORT_TEXT else EXTENDED_TEXT_MAX_LENGTH
    if not isinstance(answer, str):
        raise ValidationError("A text answer must be a string.")
    if "\x00" in answer:  # PostgreSQL cannot store it (issue #7's fuzzing found the 500)
        raise ValidationError("A text answer may not contain the NUL character (\\u0000).")
    if len(answer) > limit:
        raise ValidationError(f"A text answer may be at most {limit} characters long.")
    return answer


def response_save(*, attempt: Attempt, item: Item, answer: Any, now: datetime | None = None) -> Response:
    """Autosave one answer (insert or replace). ``AttemptClosed`` after submit or after the deadline."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        _ensure_open(locked, now)
        if not AttemptItem.objects.filter(attempt=locked, item=item).exists():
            raise ItemNotOnForm
        cleaned = answer_clean(item=item, answer=answer)
        response, _ = Response.objects.update_or_create(
            attempt=locked, item=item, defaults={"answer": cleaned, "saved_at": now}
        )
    return response


#: The autosave's one write on PostgreSQL: insert or replace the answer, but only while the attempt is
#: open. ``FOR SHARE`` waits for a submit that holds the attempt row (``FOR UPDATE``) and then re-reads
#: it: once the submit has committed the attempt is no longer ``in_progress`` and nothing is written,
#: so an answer is either scored by the submit or refused, never stored unscored behind it.
_AUTOSAVE_SQL = """
WITH open_attempt AS (
    SELECT id FROM {attempt}
    WHERE id = %s AND status = %s AND (deadline IS NULL OR deadline >= %s)
    FOR SHARE
)
INSERT INTO {response} (attempt_id, item_id, answer, saved_at, needs_grading, feedback)
SELECT id, %s, %s::jsonb, %s, false, '' FROM open_attempt
ON CONFLICT (attempt_id, item_id) DO UPDATE SET answer = EXCLUDED.answer, saved_at = EXCLUDED.saved_at
RETURNING id
"""


def response_autosave(
    *, student: User, attempt_id: int, item_id: int, answer: Any, now: datetime | None = None
) -> Response:
    """``response_save`` for the API, where a student autosaves every few seconds: two statements on
    PostgreSQL and no transaction of its own.

    One read finds the student's attempt with the item on its form (and, on PostgreSQL, the item's
    choice ids, which ``answer_clean`` needs); one write (``_AUTOSAVE_SQL``) stores the answer in its
    own implicit transaction, so it is committed when this returns. The write checks again that the
    attempt is open, under a share lock, so a submit that wins the race refuses the answer
    (``AttemptClosed``) instead of leaving it unscored. ``AttemptItem.DoesNotExist`` when the attempt is
    not the student's or the item is not on its form (the caller tells which); ``AttemptClosed`` and
    ``ValidationError`` as ``response_save``. Elsewhere than on PostgreSQL it is ``response_save``.
    """
    now = now or timezone.now()
    on_postgres = connection.vendor == "postgresql"
    rows = AttemptItem.objects.select_related("attempt", "item").filter(
        attempt_id=attempt_id, attempt__student=student, item_id=item_id
    )
    if on_postgres:
        rows = rows.annotate(
            choice_ids=ArraySubquery(ItemChoice.objects.filter(item_id=OuterRef("item_id")).values("pk"))
        )
    form_row = rows.get()
    attempt, item = form_row.attempt, form_row.item
    _ensure_open(attempt, now)
    if not on_postgres:
        return response_save(attempt=attempt, item=item, answer=answer, now=now)
    cleaned = answer_clean(item=item, answer=answer, choice_ids=form_row.choice_ids)
    stored_answer = Response._meta.get_field("answer").get_db_prep_save(cleaned, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            _AUTOSAVE_SQL.format(attempt=Attempt._meta.db_table, response=Response._meta.db_table),
            [attempt.pk, Attempt.Status.IN_PROGRESS.value, now, item.pk, stored_answer, now],
        )
        written = cursor.fetchone()
    if written is None:  # submitted (or its time ran out) between the read and the write
        _ensure_open(Attempt.objects.get(pk=attempt.pk), now)
        raise AttemptClosed("This attempt has been submitted; it takes no more answers.")
    return Response(pk=written[0], attempt=attempt, item=item, answer=cleaned, saved_at=now)


# --- scoring --------------------------------------------------------------------------------------


def _choices_by_item(items: Sequence[Item]) -> dict[int, list[ItemChoice]]:
    """Item id -> its choices in order, for the choice items among ``items``. One query, none when
    there is no choice item."""
    choices: dict[int, list[ItemChoice]] = defaultdict(list)
    choice_items = [item.pk for item in items if item.has_choices]
    if choice_items:
        for choice in ItemChoice.objects.filter(item_id__in=choice_items).order_by(
            "item_id", "position", "pk"
        ):
            choices[choice.item_id].append(choice)
    return choices


def _item_keys(
    items: list[Item], choices: Mapping[int, Sequence[ItemChoice]] | None = None
) -> dict[int, scoring.ItemKey]:
    """Scoring keys for ``items``. One query (their choices) unless ``choices`` (``_choices_by_item``)
    is given."""
    if choices is None:
        choices = _choices_by_item(items)
    return {
        item.pk: scoring.ItemKey(
            type=item.type,
            points=item.max_points,
            correct_ids=tuple(choice.pk for choice in choices.get(item.pk, ()) if choice.is_correct),
            partial_credit=item.partial_credit,
            value=item.answer_value,
            tolerance=item.answer_tolerance,
            accepted=tuple(str(text) for text in item.accepted_answers or ()),
        )
        for item in items
    }


def _alignments_with_levels(
    items: Sequence[Item],
) -> tuple[list[ItemAlignment], dict[int, list[scoring.Level]]]:
    """The items' alignments (with competency and framework), and each of their mastery scales' levels
    from the highest points down. One query: the levels are joined onto the alignments, so each
    alignment comes back once per level of its scale and is kept once."""
    rows = (
        ItemAlignment.objects.filter(item_id__in=[item.pk for item in items])
        .select_related("competency__framework")
        .annotate(
            level_points=F("competency__framework__mastery_scale__levels__points"),
            level_is_mastery=F("competency__framework__mastery_scale__levels__is_mastery"),
        )
        .order_by("item_id", "competency_id", "-level_points")
    )
    alignments: dict[int, ItemAlignment] = {}
    levels_by_scale: dict[int, list[scoring.Level]] = defaultdict(list)
    seen_levels: set[tuple[int, Decimal]] = set()
    for row in rows:
        alignments.setdefault(row.pk, row)
        scale_id = row.competency.framework.mastery_scale_id
        level = (scale_id, row.level_points)  # points are unique within a scale
        if scale_id is not None and row.level_points is not None and level not in seen_levels:
            seen_levels.add(level)
            levels_by_scale[scale_id].append(
                scoring.Level(points=row.level_points, is_mastery=row.level_is_mastery)
            )
    for levels in levels_by_scale.values():
        levels.sort(key=lambda level: -level.points)
    return list(alignments.values()), levels_by_scale


def _attempt_complete(
    *, attempt: Attempt, items: list[Item], scores: dict[int, Decimal], now: datetime, replace: bool = True
) -> list[AttemptCompetencyScore]:
    """Total the item scores, map each competency onto its scale, store and announce; returns the
    competency results written, each with its competency. Four queries (alignments with their scales'
    levels, delete and insert the competency results, save the attempt); three without ``replace``,
    which a first completion passes because an attempt in progress has no results to delete.

    Call inside the caller's transaction with the attempt row locked.
    """
    alignments, levels_by_scale = _alignments_with_levels(items)

    max_points = {item.pk: item.max_points for item in items}
    earned: dict[int, Decimal] = defaultdict(Decimal)
    possible: dict[int, Decimal] = defaultdict(Decimal)
    competencies: dict[int, Competency] = {}
    for alignment in alignments:
        competencies[alignment.competency_id] = alignment.competency
        share = scores[alignment.item_id] / max_points[alignment.item_id]
        earned[alignment.competency_id] += share * alignment.points
        possible[alignment.competency_id] += alignment.points

    rows = []
    for competency_id, competency in competencies.items():
        result = scoring.competency_result(
            earned=earned[competency_id],
            possible=possible[competency_id],
            levels=levels_by_scale.get(competency.framework.mastery_scale_id, []),
        )
        rows.append(
            AttemptCompetencyScore(
                attempt=attempt,
                competency=competency,
                earned=result.earned,
                possible=result.possible,
                score=result.scale_score,
                level_points=result.level_points,
                is_met=result.is_met,
            )
        )
    if replace:
        AttemptCompetencyScore.objects.filter(attempt=attempt).delete()
    AttemptCompetencyScore.objects.bulk_create(rows)

    attempt.score = scoring.quantize(sum(scores.values(), Decimal(0)))
    attempt.max_score = scoring.quantize(sum(max_points.values(), Decimal(0)))
    if rows:
        attempt.is_passed = all(row.is_met for row in rows)
    else:
        attempt.is_passed = bool(attempt.max_score) and (
            attempt.score / attempt.max_score >= scoring.DEFAULT_MASTERY_FRACTION
        )
    attempt.status = Attempt.Status.COMPLETED
    attempt.completed_at = attempt.completed_at or now
    attempt.save(update_fields=["score", "max_score", "is_passed", "status", "submitted_at", "completed_at"])
    signals.attempt_scored.send(sender=Attempt, attempt_id=attempt.pk, student_id=attempt.student_id)
    return rows


@dataclasses.dataclass
class Submitted:
    """What a submit read and wrote, so that the API can answer with the result without reading it
    back. ``form`` is ``None`` when the attempt had been submitted before: nothing was scored and the
    stored result must be read."""

    attempt: Attempt
    form: list[AttemptItem] | None = None
    #: item id -> its choices in order (choice items only)
    choices: dict[int, list[ItemChoice]] = dataclasses.field(default_factory=dict)
    #: item id -> the scored response; every item of the form has one
    responses: dict[int, Response] = dataclasses.field(default_factory=dict)
    #: the competency results of a completed attempt, each with its competency; none while one waits
    #: for a grader
    competency_scores: list[AttemptCompetencyScore] = dataclasses.field(default_factory=list)


def attempt_submit(*, attempt: Attempt, now: datetime | None = None) -> Attempt:
    """Score an attempt once; a repeated (or concurrent) submit returns the stored result.

    Auto-scored items are scored against their current key in one bulk write; extended-text items wait
    for a grader (status ``submitted``) and the attempt completes when the last is graded. Unanswered
    items score 0. Sends ``attempt_scored`` inside the transaction on completion; the receivers only
    publish after commit, so mastery, evidence and flags are the ``live`` worker's work. The query count
    does not depend on the number of items (``attempt_submit_scored``).
    """
    return _submit(attempt_id=attempt.pk, student=None, now=now).attempt


def attempt_submit_scored(*, student: User, attempt_id: int, now: datetime | None = None) -> Submitted:
    """``attempt_submit`` of the student's own attempt (``Attempt.DoesNotExist`` for anyone else's),
    returning what it read and wrote (``Submitted``) so that the answer needs no further query.

    Queries when it scores: the locked attempt, the form with its items, the choices (only when
    the form has choice items), the responses, their bulk update and the insert of the unanswered
    (each only when there are some), then on completion the alignments with their levels, the
    competency results and the attempt; with the transaction's BEGIN and COMMIT.
    """
    return _submit(attempt_id=attempt_id, student=student, now=now)


def _submit(*, attempt_id: int, student: User | None, now: datetime | None) -> Submitted:
    now = now or timezone.now()
    with transaction.atomic():
        lock = Attempt.objects.select_for_update().filter(pk=attempt_id)
        if student is not None:
            lock = lock.filter(student=student)
        locked = lock.get()
        if locked.status != Attempt.Status.IN_PROGRESS:
            return Submitted(attempt=locked)
        form = list(AttemptItem.objects.filter(attempt=locked).select_related("item").order_by("position"))
        items = [attempt_item.item for attempt_item in form]
        choices = _choices_by_item(items)
        keys = _item_keys(items, choices)
        responses = {response.item_id: response for response in Response.objects.filter(attempt=locked)}
        to_update = list(responses.values())
        to_create: list[Response] = []
        scores: dict[int, Decimal] = {}
        for item in items:
            response = responses.get(item.pk)
            if response is None:
                response = Response(attempt=locked, item=item, answer=None, saved_at=now)
                responses[item.pk] = response
                to_create.append(response)
            score = scoring.score_response(response.answer, keys[item.pk])
            response.score = score
            response.needs_grading = score is None
            response.scored_key_version = item.key_version if score is not None else None
            if score is not None:
                scores[item.pk] = score
        if to_update:
            Response.objects.bulk_update(to_update, ["score", "needs_grading", "scored_key_version"])
        if to_create:
            Response.objects.bulk_create(to_create)

        locked.status = Attempt.Status.SUBMITTED
        locked.submitted_at = now
        locked.max_score = scoring.quantize(sum((item.max_points for item in items), Decimal(0)))
        competency_scores: list[AttemptCompetencyScore] = []
        if len(scores) < len(items):
            locked.save(update_fields=["status", "submitted_at", "max_score"])
        else:
            competency_scores = _attempt_complete(
                attempt=locked, items=items, scores=scores, now=now, replace=False
            )
    return Submitted(
        attempt=locked, form=form, choices=choices, responses=responses, competency_scores=competency_scores
    )


def response_grade(
    *,
    response: Response,
    points: Decimal | int | str,
    grader: User,
    feedback: str = "",
    now: datetime | None = None,
) -> Response:
    """Grade one extended-text response against its rubric; the attempt completes when none is left.

    Regrading a completed attempt recomputes its totals and announces it again.
    """
    now = now or timezone.now()
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().get(pk=response.attempt_id)
        if attempt.status == Attempt.Status.IN_PROGRESS:
            raise ValidationError("This attempt has not been submitted yet.")
        response = Response.objects.select_related("item").get(pk=response.pk)
        item = response.item
        if item.type != Item.Type.EXTENDED_TEXT:
            raise ValidationError("Only extended-text responses are graded by hand.")
        try:
            value = Decimal(str(points))
        except InvalidOperation:
            raise ValidationError("Points must be a number.") from None
        if not value.is_finite() or value < 0 or value > item.max_points:
            raise ValidationError(f"Points must be between 0 and {item.max_points}.")
        response.score = scoring.quantize(value)
        response.needs_grading = False
        response.scored_key_version = item.key_version
        response.grader = grader
        response.graded_at = now
        response.feedback = feedback
        response.save(
            update_fields=["score", "needs_grading", "scored_key_version", "grader", "graded_at", "feedback"]
        )
        if not Response.objects.filter(attempt=attempt, needs_grading=True).exists():
            items = [
                attempt_item.item
                for attempt_item in AttemptItem.objects.filter(attempt=attempt).select_related("item")
            ]
            scores = {
                item_id: score or Decimal(0)
                for item_id, score in Response.objects.filter(attempt=attempt).values_list("item_id", "score")
            }
            for each in items:
                scores.setdefault(each.pk, Decimal(0))
            _attempt_complete(attempt=attempt, items=items, scores=scores, now=now)
    return response


# --- the item bank --------------------------------------------------------------------------------

KEY_FIELDS = ("type", "max_points", "partial_credit", "answer_value", "answer_tolerance", "accepted_answers")


def _key_snapshot(item: Item) -> tuple:
    """Everything a score depends on: the key, the points and the alignments. Three queries."""
    return (
        tuple(getattr(item, field) for field in KEY_FIELDS),
        tuple(
            sorted(
                (pk, is_correct)
                for pk, is_correct in ItemChoice.objects.filter(item=item).values_list("pk", "is_correct")
            )
        ),
        tuple(sorted(RubricLevel.objects.filter(item=item).values_list("points", flat=True))),
        tuple(sorted(ItemAlignment.objects.filter(item=item).values_list("competency_id", "points"))),
    )


def _item_validate(item: Item, *, choices: list[dict], rubric: list[dict]) -> None:
    errors: list[str] = []
    if item.max_points is None or item.max_points <= 0:
        errors.append("Points must be greater than 0.")
    correct = sum(1 for choice in choices if choice.get("correct"))
    if item.type == Item.Type.SINGLE_CHOICE and (len(choices) < 2 or correct != 1):
        errors.append("A single-choice item needs at least two choices, exactly one of them correct.")
    if item.type == Item.Type.MULTIPLE_CHOICE and (len(choices) < 2 or correct < 1):
        errors.append("A multiple-choice item needs at least two choices, at least one of them correct.")
    if not item.has_choices and choices:
        errors.append("Only choice items have choices.")
    if item.type == Item.Type.NUMERIC and item.answer_value is None:
        errors.append("A numeric item needs an answer value.")
    if item.answer_tolerance is not None and item.answer_tolerance < 0:
        errors.append("The tolerance may not be negative.")
    if item.type == Item.Type.SHORT_TEXT and not [
        text for text in item.accepted_answers if str(text).strip()
    ]:
        errors.append("A short-text item needs at least one accepted answer.")
    if item.type == Item.Type.EXTENDED_TEXT:
        if not rubric:
            errors.append("An extended-text item needs a rubric.")
        points = [Decimal(str(level["points"])) for level in rubric]
        if len(set(points)) != len(points):
            errors.append("Two rubric levels have the same points.")
        if item.max_points is not None and any(value < 0 or value > item.max_points for value in points):
            errors.append("Rubric points must lie between 0 and the item's points.")
    elif rubric:
        errors.append("Only extended-text items have a rubric.")
    if errors:
        raise ValidationError(errors)


def _item_write_children(
    item: Item, *, choices: list[dict] | None, rubric: list[dict] | None, alignments: list[dict] | None
) -> None:
    if choices is not None:
        existing = {choice.pk: choice for choice in ItemChoice.objects.filter(item=item)}
        kept: list[int] = []
        to_update: list[ItemChoice] = []
        to_create: list[ItemChoice] = []
        for position, data in enumerate(choices, start=1):
            choice = existing.get(data.get("id")) if data.get("id") is not None else None
            if data.get("id") is not None and choice is None:
                raise ValidationError(f"Choice {data['id']} is not a choice of this item.")
            if choice is None:
                to_create.append(
                    ItemChoice(
                        item=item, text=data["text"], is_correct=bool(data.get("correct")), position=position
                    )
                )
            else:
                choice.text = data["text"]
                choice.is_correct = bool(data.get("correct"))
                choice.position = position
                to_update.append(choice)
                kept.append(choice.pk)
        # Saved one by one (a handful per item) so that django-simple-history records each change.
        for choice in to_update:
            choice.save()
        for choice in to_create:
            choice.save()
        for pk, choice in existing.items():
            if pk not in kept:
                choice.delete()
    if rubric is not None:
        for level in RubricLevel.objects.filter(item=item):
            level.delete()
        for data in rubric:
            RubricLevel.objects.create(item=item, points=data["points"], description=data["description"])
    if alignments is not None:
        existing_alignments = {
            alignment.competency_id: alignment for alignment in ItemAlignment.objects.filter(item=item)
        }
        wanted: dict[int, Decimal] = {}
        for data in alignments:
            competency = data["competency"]
            competency_id = competency.pk if isinstance(competency, Competency) else int(competency)
            if competency_id in wanted:
                raise ValidationError("An item is aligned to a competency at most once.")
            wanted[competency_id] = Decimal(str(data.get("points", "1")))
        for competency_id, points in wanted.items():
            alignment = existing_alignments.get(competency_id)
            if alignment is None:
                ItemAlignment.objects.create(item=item, competency_id=competency_id, points=points)
            elif alignment.points != points:
                alignment.points = points
                alignment.save()
        for competency_id, alignment in existing_alignments.items():
            if competency_id not in wanted:
                alignment.delete()


def item_create(
    *,
    district_id: int | None,
    type: str,
    stem: str,
    status: str = Item.Status.DRAFT,
    max_points: Decimal = Decimal("1"),
    partial_credit: bool = False,
    answer_value: Decimal | None = None,
    answer_tolerance: Decimal = Decimal(0),
    accepted_answers: list[str] | None = None,
    choices: list[dict] | None = None,
    rubric: list[dict] | None = None,
    alignments: list[dict] | None = None,
) -> Item:
    """Create an item with its key and alignments (``choices: [{text, correct}]``,
    ``rubric: [{points, description}]``, ``alignments: [{competency, points}]``)."""
    item = Item(
        district_id=district_id,
        type=type,
        stem=stem,
        status=status,
        max_points=max_points,
        partial_credit=partial_credit,
        answer_value=answer_value,
        answer_tolerance=answer_tolerance if answer_tolerance is not None else Decimal(0),
        accepted_answers=list(accepted_answers or []),
    )
    _item_validate(item, choices=choices or [], rubric=rubric or [])
    with transaction.atomic():
        item.save()
        _item_write_children(item, choices=choices or [], rubric=rubric or [], alignments=alignments or [])
    return item


def item_update(*, item: Item, data: dict[str, Any], user: User | None = None, reason: str = "") -> Item:
    """Change an item; a change to its key, points or alignments raises ``key_version`` by one and
    creates a rescoring job (``rescoring.item_key_change_record``), run on the worker after commit.

    ``data`` may hold any field of ``item_create``; the lists (choices, rubric, alignments) replace
    the current ones (a choice sent with its ``id`` keeps it, so answers that name it stay valid).
    The returned item carries the job created, or ``None``, as ``item.rescore_job``.
    """
    from assessments import rescoring  # rescoring's tasks import this module

    with transaction.atomic():
        item = (
            Item.objects.select_for_update()
            .prefetch_related("choices", "rubric_levels", "alignments")
            .get(pk=item.pk)
        )
        before = rescoring.item_key_snapshot(item)
        for field in (
            "type",
            "stem",
            "status",
            "max_points",
            "partial_credit",
            "answer_value",
            "answer_tolerance",
        ):
            if field in data:
                setattr(item, field, data[field])
        if "answer_tolerance" in data and data["answer_tolerance"] is None:
            item.answer_tolerance = Decimal(0)
        if "accepted_answers" in data:
            item.accepted_answers = list(data["accepted_answers"] or [])
        choices = data.get("choices")
        rubric = data.get("rubric")
        current_choices = (
            choices
            if choices is not None
            else [
                {"id": pk, "correct": correct} for pk, correct in item.choices.values_list("pk", "is_correct")
            ]
        )
        current_rubric = (
            rubric if rubric is not None else list(item.rubric_levels.values("points", "description"))
        )
        _item_validate(item, choices=current_choices, rubric=current_rubric)
        item.save()
        _item_write_children(item, choices=choices, rubric=rubric, alignments=data.get("alignments"))
        after = rescoring.item_key_snapshot(
            Item.objects.prefetch_related("choices", "rubric_levels", "alignments").get(pk=item.pk)
        )
        item.rescore_job = rescoring.item_key_change_record(  # type: ignore[attr-defined]
            item=item, before=before, after=after, user=user, reason=reason
        )
    return item
