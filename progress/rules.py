"""Intervention flag rules: which flags one student should have open today, and why each one cleared.

Pure: no Django import. The caller (``progress.flag_services``) loads the facts in a constant number of
queries and turns the answer into rows; everything here is plain data, tested without a database.

The rules (DOMAIN.md, thresholds per district in ``FlagThresholds``, defaults below):

| kind             | raised when                                                        | clears when               |
|------------------|--------------------------------------------------------------------|---------------------------|
| stuck            | on a ready / in-progress leaf: >= N failed mastery checks (2) or   | mastered (or no longer    |
|                  | >= D days (7) since its first activity, without mastering it       | ready / in progress)      |
| prerequisite_gap | a failed check on a not-mastered leaf whose prerequisite was        | the prerequisite is       |
|                  | mastered by override, within the margin (0.25) of the mastery      | re-mastered firmly, or    |
|                  | level, or more than the stale days (120) ago                       | the competency mastered   |
| behind_pace      | a pacing guide's targets due by today minus the targets mastered   | back within the margin    |
|                  | exceeds the margin (1)                                             |                           |
| inactive         | >= D school days (5; weekdays after the last activity, up to and   | activity resumes, or no   |
|                  | including today) without evidence while work remains               | work remains              |
| regressed        | a recompute lowered the level (``LevelDrop``); kept while the      | the level is back to the  |
|                  | current level is below the level before the drop                   | level before the drop     |
| predicted_miss   | at the student's own rate (guide targets mastered per week since   | the projection recovers   |
|                  | the first activity, once a week has passed), the next unmastered   | (or the target is         |
|                  | target on or after today will be reached after its date            | mastered)                 |

Each ``FlagSpec`` carries the reason (the evidence, in words), the facts behind it, the suggestion
(the lesson to re-watch, the prerequisite to revisit, the peers stuck on the same competency) and a
``signature``: the facts that would make a teacher want to hear about it again. A flag a teacher
resolved by hand is not raised again while its signature is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from operator import attrgetter

STUCK = "stuck"
PREREQUISITE_GAP = "prerequisite_gap"
BEHIND_PACE = "behind_pace"
INACTIVE = "inactive"
REGRESSED = "regressed"
PREDICTED_MISS = "predicted_miss"

LOCKED = "locked"
READY = "ready"
IN_PROGRESS = "in_progress"
MASTERED = "mastered"
WORKING_STATES = frozenset({READY, IN_PROGRESS})

# A rate measured over less than a week says little: predictions start after the first week.
MIN_DAYS_FOR_RATE = 7

FlagKey = tuple[str, int | None]


@dataclass(frozen=True)
class Thresholds:
    stuck_failed_checks: int = 2
    stuck_days: int = 7
    inactive_school_days: int = 5
    behind_pace_margin: int = 1
    weak_prerequisite_score_margin: Decimal = Decimal("0.25")
    prerequisite_stale_days: int = 120


@dataclass(frozen=True)
class Lesson:
    title: str
    url: str


@dataclass(frozen=True)
class CompetencyFacts:
    """One student's stored mastery of one competency, with what the rules need around it."""

    id: int
    code: str
    state: str = LOCKED
    score: Decimal | None = None
    level_points: Decimal | None = None
    mastery_points: Decimal | None = None
    mastered_on: date | None = None
    first_activity_on: date | None = None
    is_overridden: bool = False
    is_leaf: bool = True
    failed_check_dates: tuple[date, ...] = ()
    prerequisite_ids: tuple[int, ...] = ()
    lesson: Lesson | None = None

    @property
    def is_mastered(self) -> bool:
        return self.state == MASTERED


@dataclass(frozen=True)
class PacingTargetFacts:
    competency_id: int
    code: str
    target_date: date
    is_mastered: bool
    lesson: Lesson | None = None

    @cached_property
    def data(self) -> dict:
        """The target in a flag's suggestion data. Built once per target: a district sweep shares the
        target objects among the students of a section (never mutated: it is only written as JSON)."""
        return {"id": self.competency_id, "code": self.code, "lesson": _lesson_data(self.lesson)}


@dataclass(frozen=True)
class PacingFacts:
    """One section's pacing guide as it applies to the student."""

    section_id: int
    section_title: str
    targets: tuple[PacingTargetFacts, ...]


@dataclass(frozen=True)
class PeerFacts:
    """A classmate's work on one competency, to find peers stuck on the same one."""

    student_id: int
    name: str
    competency_id: int
    state: str
    failed_checks: int
    first_activity_on: date | None


@dataclass(frozen=True)
class LevelDrop:
    competency_id: int
    old_level_points: Decimal | None
    new_level_points: Decimal | None


@dataclass(frozen=True)
class StudentFacts:
    student_id: int
    today: date
    competencies: Mapping[int, CompetencyFacts]
    last_activity_on: date | None = None
    # Where inactivity is counted from when there was no activity at all (the term or enrollment start).
    active_since: date | None = None
    pacing: tuple[PacingFacts, ...] = ()
    peers: tuple[PeerFacts, ...] = ()
    level_drops: tuple[LevelDrop, ...] = ()
    # Open regressed flags: competency id -> the level before the drop, from the flag's evidence.
    open_regressions: Mapping[int, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class FlagSpec:
    kind: str
    competency_id: int | None
    reason: str
    evidence: dict
    suggestion: str
    suggestion_data: dict
    signature: str

    @property
    def key(self) -> FlagKey:
        return (self.kind, self.competency_id)


# --- formatting ---------------------------------------------------------------------------------------


def day_label(day: date) -> str:
    """``3 Mar``: how a teacher writes a date in a note."""
    return f"{day.day} {day.strftime('%b')}"


def number_label(value: Decimal | None) -> str:
    if value is None:
        return "none"
    return format(value.normalize(), "f")


def times_label(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def days_label(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def _lesson_text(lesson: Lesson | None) -> str | None:
    return f"re-watch “{lesson.title}” ({lesson.url})" if lesson else None


def _lesson_data(lesson: Lesson | None) -> dict | None:
    # Keys in jsonb's order (shorter first), as in every nested dict below: the sweep compares a
    # stored flag by a digest of the JSON printed the way PostgreSQL prints it (``flag_sweep_sql``).
    return {"url": lesson.url, "title": lesson.title} if lesson else None


def _capitalised(parts: Iterable[str | None]) -> str:
    text = "; ".join(part for part in parts if part)
    return text[:1].upper() + text[1:]


def _names(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# --- conditions ---------------------------------------------------------------------------------------


def school_days_between(start: date, end: date) -> int:
    """Weekdays after ``start`` up to and including ``end`` (holidays are not modelled)."""
    if end <= start:
        return 0
    days = (end - start).days
    full_weeks, rest = divmod(days, 7)
    count = full_weeks * 5
    for offset in range(1, rest + 1):
        if (start + timedelta(days=full_weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count


def is_stuck(
    *, state: str, failed_checks: int, first_activity_on: date | None, today: date, thresholds: Thresholds
) -> bool:
    if state not in WORKING_STATES:
        return False
    if failed_checks >= thresholds.stuck_failed_checks:
        return True
    return first_activity_on is not None and (today - first_activity_on).days >= thresholds.stuck_days


def _level(value: Decimal | None) -> Decimal:
    return value if value is not None else Decimal(0)


def prerequisite_weaknesses(
    prerequisite: CompetencyFacts, *, today: date, thresholds: Thresholds
) -> list[str]:
    """How a mastered prerequisite is weak: by override, only just, or long ago. Empty when firm."""
    if not prerequisite.is_mastered:
        return []
    weaknesses = []
    if prerequisite.is_overridden:
        weaknesses.append("by a teacher override")
    elif (
        prerequisite.score is not None
        and prerequisite.mastery_points is not None
        and prerequisite.score < prerequisite.mastery_points + thresholds.weak_prerequisite_score_margin
    ):
        weaknesses.append(
            f"only just (score {number_label(prerequisite.score)} against the mastery level "
            f"{number_label(prerequisite.mastery_points)})"
        )
    if prerequisite.mastered_on is not None:
        age = (today - prerequisite.mastered_on).days
        if age > thresholds.prerequisite_stale_days:
            weaknesses.append(f"long ago ({day_label(prerequisite.mastered_on)}, {age} days ago)")
    return weaknesses


# --- the rules ----------------------------------------------------------------------------------------


def _stuck_peers(
    facts: StudentFacts, competency_id: int, thresholds: Thresholds, peers: Iterable[PeerFacts] | None = None
) -> list[PeerFacts]:
    """The classmates stuck on the competency (``peers``: the student's peers of that competency, when
    the caller grouped them), by name."""
    seen: dict[int, PeerFacts] = {}
    for peer in facts.peers if peers is None else peers:
        if peer.competency_id != competency_id or peer.student_id == facts.student_id:
            continue
        if is_stuck(
            state=peer.state,
            failed_checks=peer.failed_checks,
            first_activity_on=peer.first_activity_on,
            today=facts.today,
            thresholds=thresholds,
        ):
            seen.setdefault(peer.student_id, peer)
    return sorted(seen.values(), key=lambda peer: (peer.name, peer.student_id))


def stuck_flags(facts: StudentFacts, thresholds: Thresholds) -> list[FlagSpec]:
    flags = []
    peers_of: dict[int, list[PeerFacts]] = {}
    for peer in facts.peers:
        peers_of.setdefault(peer.competency_id, []).append(peer)
    for competency in facts.competencies.values():
        failed = len(competency.failed_check_dates)
        if not competency.is_leaf or not is_stuck(
            state=competency.state,
            failed_checks=failed,
            first_activity_on=competency.first_activity_on,
            today=facts.today,
            thresholds=thresholds,
        ):
            continue
        days_on = (facts.today - competency.first_activity_on).days if competency.first_activity_on else 0
        if failed:
            dates = ", ".join(day_label(day) for day in sorted(competency.failed_check_dates))
            reason = f"failed the mastery check for {competency.code} {times_label(failed)} ({dates})"
            if competency.first_activity_on:
                reason += f" and has been on it {days_label(days_on)}"
        else:
            reason = f"has been on {competency.code} for {days_label(days_on)} without mastering it"
        peers = _stuck_peers(facts, competency.id, thresholds, peers_of.get(competency.id, ()))
        peer_text = (
            f"small group with {_names([peer.name for peer in peers])} (also stuck on {competency.code})"
            if peers
            else None
        )
        suggestion = _capitalised(
            [_lesson_text(competency.lesson) or f"work through {competency.code} one to one", peer_text]
        )
        flags.append(
            FlagSpec(
                kind=STUCK,
                competency_id=competency.id,
                reason=reason,
                evidence={
                    "competency": competency.code,
                    "failed_checks": failed,
                    "failed_check_dates": [day.isoformat() for day in sorted(competency.failed_check_dates)],
                    "first_activity": competency.first_activity_on.isoformat()
                    if competency.first_activity_on
                    else None,
                    "days_on_it": days_on,
                },
                suggestion=suggestion,
                suggestion_data={
                    "lesson": _lesson_data(competency.lesson),
                    "peers": [{"id": peer.student_id, "name": peer.name} for peer in peers],
                },
                signature=f"{failed}:{competency.first_activity_on}",
            )
        )
    return flags


def prerequisite_gap_flags(facts: StudentFacts, thresholds: Thresholds) -> list[FlagSpec]:
    flags = []
    for competency in facts.competencies.values():
        if (
            not competency.is_leaf
            or competency.is_mastered
            or competency.state == LOCKED
            or not competency.failed_check_dates
        ):
            continue
        gaps = []
        for prerequisite_id in competency.prerequisite_ids:
            prerequisite = facts.competencies.get(prerequisite_id)
            if prerequisite is None:
                continue
            weaknesses = prerequisite_weaknesses(prerequisite, today=facts.today, thresholds=thresholds)
            if weaknesses:
                gaps.append((prerequisite, weaknesses))
        if not gaps:
            continue
        last_failed = max(competency.failed_check_dates)
        gap_text = "; ".join(
            f"its prerequisite {prerequisite.code} was mastered {' and '.join(weaknesses)}"
            for prerequisite, weaknesses in gaps
        )
        reason = f"failed the mastery check for {competency.code} ({day_label(last_failed)}) and {gap_text}"
        suggestion = _capitalised(
            f"revisit {prerequisite.code}"
            + (f": {_lesson_text(prerequisite.lesson)}" if prerequisite.lesson else "")
            for prerequisite, _ in gaps
        )
        flags.append(
            FlagSpec(
                kind=PREREQUISITE_GAP,
                competency_id=competency.id,
                reason=reason,
                evidence={
                    "competency": competency.code,
                    "last_failed_check": last_failed.isoformat(),
                    "prerequisites": [
                        {
                            "id": prerequisite.id,
                            "code": prerequisite.code,
                            "score": number_label(prerequisite.score),
                            "weaknesses": weaknesses,
                            "mastered_on": prerequisite.mastered_on.isoformat()
                            if prerequisite.mastered_on
                            else None,
                            "is_overridden": prerequisite.is_overridden,
                        }
                        for prerequisite, weaknesses in gaps
                    ],
                },
                suggestion=suggestion,
                suggestion_data={
                    "prerequisites": [
                        {
                            "id": prerequisite.id,
                            "code": prerequisite.code,
                            "lesson": _lesson_data(prerequisite.lesson),
                        }
                        for prerequisite, _ in gaps
                    ]
                },
                signature=";".join(
                    f"{prerequisite.id}@{prerequisite.mastered_on}" for prerequisite, _ in gaps
                ),
            )
        )
    return flags


_TARGET_ORDER = attrgetter("target_date", "code")


def _pace(guide: PacingFacts, today: date) -> tuple[int, int]:
    expected = mastered = 0
    for target in guide.targets:
        if target.target_date <= today:
            expected += 1
        if target.is_mastered:
            mastered += 1
    return expected, mastered


def behind_pace_flags(facts: StudentFacts, thresholds: Thresholds) -> list[FlagSpec]:
    worst: tuple[int, PacingFacts, int, int] | None = None
    for guide in facts.pacing:
        expected, mastered = _pace(guide, facts.today)
        behind = expected - mastered
        if behind > thresholds.behind_pace_margin and (worst is None or behind > worst[0]):
            worst = (behind, guide, expected, mastered)
    if worst is None:
        return []
    behind, guide, expected, mastered = worst
    overdue = sorted(
        (target for target in guide.targets if target.target_date <= facts.today and not target.is_mastered),
        key=_TARGET_ORDER,
    )
    reason = (
        f"has mastered {mastered} of the {expected} competencies {guide.section_title}'s pacing guide "
        f"expects by {day_label(facts.today)} ({behind} behind)"
    )
    first = overdue[0] if overdue else None
    suggestion = _capitalised(
        [
            "catch up on " + ", ".join(target.code for target in overdue) if overdue else None,
            f"start with {first.code} (due {day_label(first.target_date)}): {_lesson_text(first.lesson)}"
            if first and first.lesson
            else None,
        ]
    )
    return [
        FlagSpec(
            kind=BEHIND_PACE,
            competency_id=None,
            reason=reason,
            evidence={
                "section": guide.section_id,
                "section_title": guide.section_title,
                "expected": expected,
                "mastered": mastered,
                "behind": behind,
                "overdue": [target.code for target in overdue],
            },
            suggestion=suggestion,
            suggestion_data={"overdue": [target.data for target in overdue]},
            signature=f"{guide.section_id}:{behind}",
        )
    ]


def _work_remains(facts: StudentFacts) -> bool:
    if any(
        competency.is_leaf and competency.state in WORKING_STATES
        for competency in facts.competencies.values()
    ):
        return True
    return any(not target.is_mastered for guide in facts.pacing for target in guide.targets)


def _next_up(facts: StudentFacts) -> CompetencyFacts | PacingTargetFacts | None:
    working = [
        competency
        for competency in facts.competencies.values()
        if competency.is_leaf and competency.state in WORKING_STATES
    ]
    if working:
        return min(working, key=lambda competency: (competency.state != IN_PROGRESS, competency.code))
    targets = [target for guide in facts.pacing for target in guide.targets if not target.is_mastered]
    return min(targets, key=_TARGET_ORDER) if targets else None


def inactive_flags(facts: StudentFacts, thresholds: Thresholds) -> list[FlagSpec]:
    since = facts.last_activity_on or facts.active_since
    if since is None or not _work_remains(facts):
        return []
    school_days = school_days_between(since, facts.today)
    if school_days < thresholds.inactive_school_days:
        return []
    if facts.last_activity_on:
        reason = f"no activity for {school_days} school days (last on {day_label(since)})"
    else:
        reason = f"no activity yet: {school_days} school days since {day_label(since)}"
    next_up = _next_up(facts)
    lesson = next_up.lesson if next_up else None
    suggestion = _capitalised(
        [
            "check in with the student",
            f"next up: {next_up.code}" + (f", {_lesson_text(lesson)}" if lesson else "") if next_up else None,
        ]
    )
    return [
        FlagSpec(
            kind=INACTIVE,
            competency_id=None,
            reason=reason,
            evidence={
                "last_activity": facts.last_activity_on.isoformat() if facts.last_activity_on else None,
                "counted_from": since.isoformat(),
                "school_days": school_days,
            },
            suggestion=suggestion,
            suggestion_data={
                "next": {"id": _target_id(next_up), "code": next_up.code, "lesson": _lesson_data(lesson)}
                if next_up
                else None
            },
            signature=since.isoformat(),
        )
    ]


def _target_id(item: CompetencyFacts | PacingTargetFacts) -> int:
    return item.id if isinstance(item, CompetencyFacts) else item.competency_id


def regressed_flags(facts: StudentFacts, thresholds: Thresholds) -> list[FlagSpec]:
    before: dict[int, Decimal] = dict(facts.open_regressions)
    for drop in facts.level_drops:
        if drop.old_level_points is None or _level(drop.new_level_points) >= drop.old_level_points:
            continue
        before[drop.competency_id] = max(before.get(drop.competency_id, Decimal(0)), drop.old_level_points)
    flags = []
    for competency_id, from_level in sorted(before.items()):
        competency = facts.competencies.get(competency_id)
        # Leaves only: an inner node's level is a roll-up of its children, and the drop is flagged on the
        # child whose evidence changed (a first low score on a new child would otherwise "regress" a unit).
        if competency is None or not competency.is_leaf or _level(competency.level_points) >= from_level:
            continue
        reason = (
            f"the mastery level for {competency.code} dropped from {number_label(from_level)} "
            f"to {number_label(competency.level_points)}"
        )
        if (
            not competency.is_mastered
            and competency.mastery_points is not None
            and from_level >= competency.mastery_points
        ):
            reason += " (no longer mastered)"
        suggestion = _capitalised(
            [_lesson_text(competency.lesson) or f"review {competency.code}", "retake the mastery check"]
        )
        flags.append(
            FlagSpec(
                kind=REGRESSED,
                competency_id=competency_id,
                reason=reason,
                evidence={
                    "competency": competency.code,
                    "from_level": number_label(from_level),
                    "to_level": number_label(competency.level_points),
                },
                suggestion=suggestion,
                suggestion_data={"lesson": _lesson_data(competency.lesson)},
                signature=f"{number_label(from_level)}>{number_label(competency.level_points)}",
            )
        )
    return flags


def _first_activity(facts: StudentFacts) -> date | None:
    days = [c.first_activity_on for c in facts.competencies.values() if c.first_activity_on is not None]
    return min(days) if days else None


def projection(
    guide: PacingFacts, *, started_on: date, today: date
) -> tuple[PacingTargetFacts, Decimal, date | None] | None:
    """The next unmastered target due today or later, the rate (targets a week), the projected date.

    None when there is nothing ahead or less than a week of history. The projected date is None when
    the rate is zero (the student would never get there at this rate).
    """
    days = (today - started_on).days
    if days < MIN_DAYS_FOR_RATE:
        return None
    upcoming = sorted(
        (target for target in guide.targets if not target.is_mastered and target.target_date >= today),
        key=_TARGET_ORDER,
    )
    if not upcoming:
        return None
    target = upcoming[0]
    mastered = sum(1 for item in guide.targets if item.is_mastered)
    rate = Decimal(mastered * 7) / Decimal(days)
    if mastered == 0:
        return target, rate, None
    remaining = sum(
        1 for item in guide.targets if not item.is_mastered and item.target_date <= target.target_date
    )
    projected = today + timedelta(days=math.ceil(remaining * days / mastered))
    return target, rate, projected


def predicted_miss_flags(facts: StudentFacts, thresholds: Thresholds) -> list[FlagSpec]:
    started_on = _first_activity(facts)
    if started_on is None:
        return []
    flags: dict[int, FlagSpec] = {}
    for guide in facts.pacing:
        result = projection(guide, started_on=started_on, today=facts.today)
        if result is None:
            continue
        target, rate, projected = result
        if projected is not None and projected <= target.target_date:
            continue
        mastered = sum(1 for item in guide.targets if item.is_mastered)
        if projected is None:
            reason = (
                f"has mastered none of {guide.section_title}'s pacing targets since starting on "
                f"{day_label(started_on)}; {target.code} is due {day_label(target.target_date)}"
            )
        else:
            reason = (
                f"at {rate:.1f} competencies a week ({mastered} mastered since {day_label(started_on)}), "
                f"{target.code} due {day_label(target.target_date)} would be reached around "
                f"{day_label(projected)}"
            )
        suggestion = _capitalised(
            [
                "set a weekly goal with the student",
                _lesson_text(target.lesson) and f"next: {target.code}, {_lesson_text(target.lesson)}",
            ]
        )
        flags.setdefault(
            target.competency_id,
            FlagSpec(
                kind=PREDICTED_MISS,
                competency_id=target.competency_id,
                reason=reason,
                evidence={
                    "section": guide.section_id,
                    "competency": target.code,
                    "target_date": target.target_date.isoformat(),
                    "started_on": started_on.isoformat(),
                    "mastered": mastered,
                    "rate_per_week": f"{rate:.2f}",
                    "projected": projected.isoformat() if projected else None,
                },
                suggestion=suggestion,
                suggestion_data={"lesson": _lesson_data(target.lesson)},
                signature=f"{target.code}@{target.target_date}",
            ),
        )
    return list(flags.values())


RULES = (
    stuck_flags,
    prerequisite_gap_flags,
    behind_pace_flags,
    inactive_flags,
    regressed_flags,
    predicted_miss_flags,
)


def flags_due(facts: StudentFacts, thresholds: Thresholds | None = None) -> list[FlagSpec]:
    """Every flag that should be open for the student today, one per (kind, competency)."""
    thresholds = thresholds or Thresholds()
    due: dict[FlagKey, FlagSpec] = {}
    for rule in RULES:
        for spec in rule(facts, thresholds):
            due.setdefault(spec.key, spec)
    return list(due.values())


def clearance_note(kind: str, competency_id: int | None, facts: StudentFacts) -> str:
    """Why a flag that is no longer due cleared itself, in words for the teacher."""
    competency = facts.competencies.get(competency_id) if competency_id is not None else None
    codes = {target.competency_id: target.code for guide in facts.pacing for target in guide.targets}
    code = competency.code if competency else codes.get(competency_id, "the competency")
    if (
        competency is not None
        and competency.is_mastered
        and kind in (STUCK, PREREQUISITE_GAP, PREDICTED_MISS)
    ):
        when = f" on {day_label(competency.mastered_on)}" if competency.mastered_on else ""
        return f"cleared: mastered {code}{when}"
    if kind == STUCK:
        state = competency.state.replace("_", " ") if competency else "gone"
        return f"cleared: {code} is no longer ready or in progress ({state})"
    if kind == PREREQUISITE_GAP:
        return f"cleared: the prerequisites of {code} are now firmly mastered"
    if kind == BEHIND_PACE:
        paces = [_pace(guide, facts.today) for guide in facts.pacing]
        detail = ", ".join(f"{mastered} of {expected} mastered" for expected, mastered in paces)
        return f"cleared: back on pace ({detail})" if detail else "cleared: no pacing guide applies"
    if kind == INACTIVE:
        if facts.last_activity_on:
            return f"cleared: activity resumed on {day_label(facts.last_activity_on)}"
        return "cleared: no work remains"
    if kind == REGRESSED:
        level = number_label(competency.level_points) if competency else "none"
        return f"cleared: the level for {code} recovered to {level}"
    if kind == PREDICTED_MISS:
        return f"cleared: back on track for {code}"
    return "cleared"
