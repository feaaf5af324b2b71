"""Intervention flags for many students at once: the rules' facts read set-based, the answer written
set-based, on PostgreSQL. ``progress.flag_services`` uses it for one student after a submit and for the
whole district at night; the rules stay in ``progress.rules`` (pure). ``progress.flag_portable`` is the
straightforward path (other databases); the tests check both give the same flags.

Why: the straightforward loader (every stored mastery row, every classmate's working row, every pacing
target as an object per student) cost ~110 ms for one student and ~8 ms a student over a district, and
writing through model instances and ``bulk_create_with_history`` doubled that. Here:

- **Only what the rules read is loaded.** Of a student's stored mastery, the rows with something to say
  (not blank: ``progress.grid``) plus the rows of the competencies their current flags and level drops
  name. A blank row (locked or ready, no activity) matters to one rule only: ``inactive`` asks whether
  any leaf is ready and which comes first by code. That one leaf is derived (``grid.derived_state``:
  ready when every prerequisite is mastered) among the leaves without prerequisites and the dependents
  of what the student mastered. So the answer is the same whether blank rows are stored or not.
- **Classmates are loaded only where a flag needs them**: the working rows of the competencies the
  student is stuck on (for "small group with ..."), not every classmate's every row.
- **Pacing guides are shared**: a section's targets are built once (mastered or not) and the
  pacing-only rules (``behind_pace``, ``predicted_miss``) run once per section, mastered set, date and
  thresholds (``Memo``, kept across the sweep's chunks).
- **Nothing unchanged is sent back.** The flags query returns a digest of each open flag (md5 of its
  reason, suggestion and JSON as jsonb prints them); a due flag whose digest matches is left alone
  without PostgreSQL parsing its JSON again.
- **Writes are three statements per batch**, each writing its history rows in the same statement (a
  data-modifying CTE): new flags (``INSERT ... SELECT FROM unnest(...)``, or through COPY into a
  temporary table when there are many: quoting megabytes of JSON into SQL cost more than the insert),
  changed ones (updated only where a value differs, compared by PostgreSQL), cleared ones (resolved
  with the rules' clearance note). No model instance per flag, no JSON decoded from the database.

Reads: seven queries whatever the number of students, an eighth (the classmates) when one is stuck.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection
from django.utils import timezone

from progress import grid, rules
from progress.models import InterventionFlag

Status = InterventionFlag.Status
#: flags a statement writes at most (the JSON of a behind-pace flag is ~7 kB)
WRITE_BATCH = 2000
#: from this many new flags on, they go through COPY (``_insert_copied``)
COPY_FROM = 500
_FLAG = InterventionFlag._meta.db_table
# ``InterventionFlag.history`` builds a manager class on every access (~1 ms): looked up once.
_HISTORY_MODEL = InterventionFlag.history.model
_HISTORY = _HISTORY_MODEL._meta.db_table
# The history row copies every tracked column of the flag row.
_TRACKED = (
    "id, kind, status, reason, evidence, suggestion, suggestion_data, opened_at, snoozed_until, "
    "resolved_at, resolution_note, is_auto_resolved, updated_at, competency_id, resolved_by_id, student_id"
)


@dataclass(frozen=True)
class CurrentFlag:
    """A stored flag that is not resolved, as the reconcile needs it (no JSON decoded)."""

    id: int
    status: str
    snoozed_until: date | None
    #: md5 of its reason, suggestion, evidence and suggestion data as PostgreSQL prints them (``_fingerprint``)
    fingerprint: str


@dataclass
class StudentState:
    facts: rules.StudentFacts
    thresholds: rules.Thresholds
    current: dict[rules.FlagKey, CurrentFlag]
    #: (kind, competency, signature) of the flags a teacher resolved by hand
    dismissed: set[tuple[str, int | None, str | None]]
    #: what the pacing-only rules depend on besides the date and thresholds (see ``Memo``)
    pacing_key: tuple


@dataclass
class Memo:
    """What many students share, kept across the chunks of one sweep."""

    #: (section, title, mastered target ids) -> the guide as the rules see it
    pacing: dict[tuple, rules.PacingFacts] = field(default_factory=dict)
    #: (section, title) -> its targets as facts, not mastered and mastered (shared by the guides above)
    targets: dict[tuple, list[tuple[rules.PacingTargetFacts, ...]]] = field(default_factory=dict)
    #: the pacing-only rules' answers (``due``)
    specs: dict[tuple, list[rules.FlagSpec]] = field(default_factory=dict)
    #: id of a shared spec -> (the spec, kept alive, its evidence and suggestion data as JSON text)
    json: dict[int, tuple[rules.FlagSpec, str, str]] = field(default_factory=dict)


@dataclass
class WriteResult:
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)


def _local_date(moment: datetime | None, zone: tzinfo) -> date | None:
    """``timezone.localdate`` with the zone looked up once (the lookup costs more than the date)."""
    return moment.astimezone(zone).date() if moment is not None else None


def _display_name(first_name: str, last_name: str, username: str) -> str:
    return f"{first_name} {last_name}".strip() or username


def _thresholds(row: Sequence[Any]) -> rules.Thresholds:
    if row[0] is None:
        return rules.Thresholds()
    return rules.Thresholds(
        stuck_failed_checks=row[0],
        stuck_days=row[1],
        inactive_school_days=row[2],
        behind_pace_margin=row[3],
        weak_prerequisite_score_margin=row[4],
        prerequisite_stale_days=row[5],
    )


@dataclass(frozen=True)
class _Competency:
    code: str
    framework_id: int
    is_leaf: bool
    mastery_points: Decimal | None
    prerequisite_ids: tuple[int, ...]
    lesson: rules.Lesson | None


def load(
    student_ids: Sequence[int],
    *,
    today: date,
    changes_by_student: Mapping[int, Iterable[Any]],
    memo: Memo | None = None,
) -> dict[int, StudentState]:
    """The rules' facts, current flags and thresholds of the students; locks their rows (the caller
    holds the transaction). Seven queries, an eighth when a student is stuck (the peers)."""
    memo = memo or Memo()
    zone = timezone.get_current_timezone()
    ids = list(student_ids)
    drops = {
        student_id: tuple(
            rules.LevelDrop(change.competency_id, change.old_level_points, change.new_level_points)
            for change in changes or ()
        )
        for student_id, changes in changes_by_student.items()
    }
    with connection.cursor() as cursor:
        # 1. Lock, thresholds, last activity (evidence other than overrides; lesson views).
        cursor.execute(
            """
            SELECT u.id, t.stuck_failed_checks, t.stuck_days, t.inactive_school_days,
                   t.behind_pace_margin, t.weak_prerequisite_score_margin, t.prerequisite_stale_days,
                   (SELECT max(e.observed_at) FROM progress_evidence e
                     WHERE e.student_id = u.id AND e.source <> 'override'),
                   (SELECT max(v.last_viewed_at) FROM progress_resourceview v WHERE v.student_id = u.id)
            FROM roster_user u LEFT JOIN progress_flagthresholds t ON t.district_id = u.district_id
            WHERE u.id = ANY(%s)
            ORDER BY u.id
            FOR UPDATE OF u
            """,
            [ids],
        )
        students = cursor.fetchall()

        # 2. Active student enrolments: sections (active ones give pacing and classmates), where
        #    inactivity is counted from, the guides' frameworks (the frameworks the student studies).
        cursor.execute(
            """
            SELECT e.user_id, e.section_id, s.title, s.is_active, COALESCE(e.begin_date, t.start_date),
                   g.framework_id
            FROM roster_enrollment e
            JOIN roster_section s ON s.id = e.section_id
            LEFT JOIN roster_term t ON t.id = s.term_id
            LEFT JOIN competencies_pacingguide g ON g.section_id = s.id
            WHERE e.user_id = ANY(%s) AND e.role = 'student' AND e.is_active
            """,
            [ids],
        )
        sections_of: dict[int, list[int]] = defaultdict(list)
        frameworks_of: dict[int, set[int]] = defaultdict(set)
        active_since: dict[int, date] = {}
        section_titles: dict[int, str] = {}
        for user_id, section_id, title, section_active, start, framework_id in cursor.fetchall():
            if framework_id is not None:
                frameworks_of[user_id].add(framework_id)
            if not section_active:
                continue
            sections_of[user_id].append(section_id)
            section_titles[section_id] = title
            if start and (user_id not in active_since or start < active_since[user_id]):
                active_since[user_id] = start
        section_ids = sorted(section_titles)

        # 3. Flags not resolved, and those a teacher resolved by hand (their signature).
        cursor.execute(
            f"""
            SELECT student_id, id, kind, competency_id, status, snoozed_until,
                   evidence ->> 'signature',
                   CASE WHEN kind = 'regressed' THEN evidence ->> 'from_level' END,
                   CASE WHEN status <> 'resolved' THEN concat_ws('/', md5(reason), md5(suggestion),
                        md5(evidence::text), md5(suggestion_data::text)) END
            FROM {_FLAG}
            WHERE student_id = ANY(%s) AND (status <> 'resolved' OR NOT is_auto_resolved)
            ORDER BY id
            """,
            [ids],
        )
        current: dict[int, dict[rules.FlagKey, CurrentFlag]] = defaultdict(dict)
        dismissed: dict[int, set] = defaultdict(set)
        open_regressions: dict[int, dict[int, Decimal]] = defaultdict(dict)
        specific: set[tuple[int, int]] = set()
        for student_id, flag_id, kind, competency_id, status, until, signature, from_level, printed in cursor:
            if status == Status.RESOLVED:
                dismissed[student_id].add((kind, competency_id, signature))
                continue
            current[student_id][(kind, competency_id)] = CurrentFlag(flag_id, status, until, printed)
            if competency_id is not None:
                specific.add((student_id, competency_id))
            if kind == rules.REGRESSED and competency_id:
                try:
                    open_regressions[student_id][competency_id] = Decimal(str(from_level))
                except (InvalidOperation, ValueError):
                    continue
        for student_id, student_drops in drops.items():
            specific.update((student_id, drop.competency_id) for drop in student_drops)

        # 4. Stored mastery: the rows with something to say, any row with a failed mastery check
        #    (attempt evidence, summative, not met: their times come along), and the rows the flags
        #    and drops name (whatever they say). A failed check always has its row (evidence makes
        #    it in progress), and the rules read failed checks through rows only.
        specific_students = [pair[0] for pair in specific]
        specific_competencies = [pair[1] for pair in specific]
        cursor.execute(
            """
            SELECT m.student_id, m.competency_id, c.framework_id, m.state, m.score, m.level_points,
                   m.mastered_at, m.first_activity_at, m.is_overridden, f.times
            FROM progress_competencymastery m
            JOIN competencies_competency c ON c.id = m.competency_id
            LEFT JOIN (
                SELECT e.student_id, e.competency_id, array_agg(e.observed_at) AS times
                FROM progress_evidence e
                WHERE e.student_id = ANY(%(ids)s) AND e.source = 'attempt' AND e.is_summative
                  AND NOT e.is_correct
                GROUP BY e.student_id, e.competency_id
            ) f ON f.student_id = m.student_id AND f.competency_id = m.competency_id
            WHERE m.student_id = ANY(%(ids)s) AND (
                NOT (m.state IN ('locked', 'ready') AND m.first_activity_at IS NULL
                     AND m.mastered_at IS NULL AND m.score IS NULL AND m.level_points IS NULL
                     AND m.evidence_count = 0 AND NOT m.is_overridden AND NOT m.is_unlocked_by_teacher)
                OR f.times IS NOT NULL
                OR (m.student_id, m.competency_id) IN (
                    SELECT * FROM unnest(%(students)s::bigint[], %(competencies)s::bigint[]))
            )
            ORDER BY m.student_id, m.competency_id
            """,
            {"ids": ids, "students": specific_students, "competencies": specific_competencies},
        )
        rows = cursor.fetchall()
        for row in rows:
            frameworks_of[row[0]].add(row[2])

        # 5. The sections' pacing targets.
        cursor.execute(
            """
            SELECT g.section_id, t.competency_id, t.target_date
            FROM competencies_pacingtarget t JOIN competencies_pacingguide g ON g.id = t.guide_id
            WHERE g.section_id = ANY(%s)
            ORDER BY g.section_id, t.target_date, t.id
            """,
            [section_ids],
        )
        targets_of: dict[int, list[tuple[int, date]]] = defaultdict(list)
        for section_id, competency_id, target_date in cursor:
            targets_of[section_id].append((competency_id, target_date))
        target_ids = {section_id: frozenset(c for c, _ in rows_) for section_id, rows_ in targets_of.items()}

        # 6. The catalogue of every competency concerned: code, leaf or not, mastery level,
        #    prerequisites, first lesson.
        framework_ids = sorted(
            {framework for frameworks in frameworks_of.values() for framework in frameworks}
        )
        named = sorted(
            {competency_id for rows_ in targets_of.values() for competency_id, _ in rows_}
            | set(specific_competencies)
        )
        # Joins over the few competencies, not a subquery per row (planning alone cost more).
        cursor.execute(
            """
            WITH c AS (
                SELECT id, code, framework_id FROM competencies_competency
                WHERE framework_id = ANY(%(frameworks)s) OR id = ANY(%(named)s)
            )
            SELECT c.id, c.code, c.framework_id, k.parent_id IS NULL, l.points,
                   COALESCE(p.ids, '{}'), r.title, r.url
            FROM c
            LEFT JOIN (
                SELECT DISTINCT parent_id FROM competencies_competency WHERE parent_id IN (SELECT id FROM c)
            ) k ON k.parent_id = c.id
            LEFT JOIN competencies_framework f ON f.id = c.framework_id
            LEFT JOIN competencies_masterylevel l ON l.scale_id = f.mastery_scale_id AND l.is_mastery
            LEFT JOIN (
                SELECT competency_id, array_agg(prerequisite_id ORDER BY prerequisite_id) AS ids
                FROM competencies_prerequisite WHERE competency_id IN (SELECT id FROM c)
                GROUP BY competency_id
            ) p ON p.competency_id = c.id
            LEFT JOIN (
                SELECT DISTINCT ON (competency_id) competency_id, title, url
                FROM competencies_learningresource WHERE competency_id IN (SELECT id FROM c)
                ORDER BY competency_id, position, id
            ) r ON r.competency_id = c.id
            """,
            {"frameworks": framework_ids, "named": named},
        )
        catalogue: dict[int, _Competency] = {
            competency_id: _Competency(
                code=code or str(competency_id),
                framework_id=framework_id,
                is_leaf=is_leaf,
                mastery_points=points,
                prerequisite_ids=tuple(prerequisites),
                lesson=rules.Lesson(title, url) if title is not None else None,
            )
            for competency_id, code, framework_id, is_leaf, points, prerequisites, title, url in cursor.fetchall()
        }

    children: dict[int, list[int]] = {}  # leaves only are derived below: no roll-up needed
    prerequisites = {competency_id: list(item.prerequisite_ids) for competency_id, item in catalogue.items()}
    dependents: dict[int, list[int]] = defaultdict(list)
    free_leaves: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for competency_id, item in catalogue.items():
        if not item.is_leaf:
            continue
        if item.prerequisite_ids:
            for prerequisite_id in item.prerequisite_ids:
                dependents[prerequisite_id].append(competency_id)
        else:
            free_leaves[item.framework_id].append((item.code, competency_id))
    for leaves in free_leaves.values():
        leaves.sort()

    thresholds_of = {row[0]: _thresholds(row[1:7]) for row in students}
    last_activity: dict[int, date | None] = {}
    for student_id, *_rest, last_evidence, last_view in students:
        last = last_evidence
        if last_view is not None and (last is None or last_view > last):
            last = last_view
        last_activity[student_id] = _local_date(last, zone)
    rows_of: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        rows_of[row[0]].append(row)

    def facts_of(student_id: int, row: tuple) -> rules.CompetencyFacts:
        competency_id = row[1]
        item = catalogue[competency_id]
        return rules.CompetencyFacts(
            id=competency_id,
            code=item.code,
            state=row[3],
            score=row[4],
            level_points=row[5],
            mastery_points=item.mastery_points,
            mastered_on=_local_date(row[6], zone),
            first_activity_on=_local_date(row[7], zone),
            is_overridden=row[8],
            is_leaf=item.is_leaf,
            failed_check_dates=tuple(sorted(moment.astimezone(zone).date() for moment in row[9] or ())),
            prerequisite_ids=item.prerequisite_ids,
            lesson=item.lesson,
        )

    def blank_facts(competency_id: int, state: str) -> rules.CompetencyFacts:
        item = catalogue[competency_id]
        return rules.CompetencyFacts(
            id=competency_id,
            code=item.code,
            state=state,
            mastery_points=item.mastery_points,
            is_leaf=item.is_leaf,
            prerequisite_ids=item.prerequisite_ids,
            lesson=item.lesson,
        )

    own: dict[int, dict[int, rules.CompetencyFacts]] = {}
    stuck_on: dict[int, set[int]] = {}
    for student_id, *_ in students:
        competencies = {row[1]: facts_of(student_id, row) for row in rows_of.get(student_id, ())}
        states = {(student_id, competency_id): facts.state for competency_id, facts in competencies.items()}
        concerned = frameworks_of.get(student_id, set())
        derived: dict[int, str] = {}
        # The rows the flags and drops name, when not stored (a blank row): their derived state.
        for key in current.get(student_id, {}):
            competency_id = key[1]
            if competency_id is not None and competency_id not in competencies:
                item = catalogue.get(competency_id)
                if item is not None and item.is_leaf and item.framework_id in concerned:
                    derived[competency_id] = grid.derived_state(
                        student_id, competency_id, states, children, prerequisites
                    )
        for drop in drops.get(student_id, ()):
            competency_id = drop.competency_id
            item = catalogue.get(competency_id)
            if (
                competency_id not in competencies
                and item is not None
                and item.is_leaf
                and item.framework_id in concerned
            ):
                derived[competency_id] = grid.derived_state(
                    student_id, competency_id, states, children, prerequisites
                )
        # The first ready leaf by code among the blank ones (what ``inactive`` names next).
        candidates: list[tuple[str, int]] = []
        for framework_id in concerned:
            for code, competency_id in free_leaves.get(framework_id, ()):
                if competency_id not in competencies:
                    candidates.append((code, competency_id))
                    break
        for competency_id, facts in competencies.items():
            if facts.state != rules.MASTERED:
                continue
            for dependent_id in dependents.get(competency_id, ()):
                item = catalogue[dependent_id]
                if dependent_id not in competencies and item.framework_id in concerned:
                    candidates.append((item.code, dependent_id))
        for _code, competency_id in sorted(candidates):
            if grid.derived_state(student_id, competency_id, states, children, prerequisites) == rules.READY:
                derived[competency_id] = rules.READY
                break
        if derived:
            for competency_id, state in derived.items():
                competencies[competency_id] = blank_facts(competency_id, state)
            competencies = dict(sorted(competencies.items()))
        own[student_id] = competencies
        thresholds = thresholds_of[student_id]
        stuck_on[student_id] = {
            competency_id
            for competency_id, facts in competencies.items()
            if facts.is_leaf
            and rules.is_stuck(
                state=facts.state,
                failed_checks=len(facts.failed_check_dates),
                first_activity_on=facts.first_activity_on,
                today=today,
                thresholds=thresholds,
            )
        }

    peers_of = _peers(
        {student_id: stuck for student_id, stuck in stuck_on.items() if stuck},
        sections_of,
        zone,
        thresholds_of,
        today,
    )

    data: dict[int, StudentState] = {}
    for student_id, *_ in students:
        competencies = own[student_id]
        mastered = {competency_id for competency_id, facts in competencies.items() if facts.is_mastered}
        pacing_parts = []
        for section_id in sorted(sections_of.get(student_id, ())):
            targets = targets_of.get(section_id)
            if not targets:
                continue
            key = (section_id, section_titles[section_id], target_ids[section_id] & mastered)
            guide = memo.pacing.get(key)
            if guide is None:
                variants = memo.targets.get((section_id, section_titles[section_id]))
                if variants is None:
                    variants = memo.targets[(section_id, section_titles[section_id])] = [
                        tuple(
                            rules.PacingTargetFacts(
                                competency_id=competency_id,
                                code=catalogue[competency_id].code,
                                target_date=target_date,
                                is_mastered=is_mastered,
                                lesson=catalogue[competency_id].lesson,
                            )
                            for competency_id, target_date in targets
                        )
                        for is_mastered in (False, True)
                    ]
                plain, done = variants
                chosen = list(plain)
                for index, (competency_id, _) in enumerate(targets):
                    if competency_id in key[2]:
                        chosen[index] = done[index]
                guide = memo.pacing[key] = rules.PacingFacts(
                    section_id=section_id, section_title=section_titles[section_id], targets=tuple(chosen)
                )
            pacing_parts.append((key, guide))
        data[student_id] = StudentState(
            facts=rules.StudentFacts(
                student_id=student_id,
                today=today,
                competencies=competencies,
                last_activity_on=last_activity.get(student_id),
                active_since=active_since.get(student_id),
                pacing=tuple(guide for _, guide in pacing_parts),
                peers=peers_of.get(student_id, ()),
                level_drops=drops.get(student_id, ()),
                open_regressions=open_regressions.get(student_id, {}),
            ),
            thresholds=thresholds_of[student_id],
            current=current.get(student_id, {}),
            dismissed=dismissed.get(student_id, set()),
            pacing_key=tuple(key for key, _ in pacing_parts),
        )
    return data


def _peers(
    stuck_on: Mapping[int, set[int]],
    sections_of: Mapping[int, list[int]],
    zone: tzinfo,
    thresholds_of: Mapping[int, rules.Thresholds],
    today: date,
) -> dict[int, tuple[rules.PeerFacts, ...]]:
    """The classmates stuck (by the student's thresholds) on the competencies each student is stuck on
    (one query, none when nobody is stuck): what "small group with ..." is made of. The rules check
    again; passing only the stuck ones keeps the student's list short (a section's stuck classmates
    are worked out once per section, competency and thresholds)."""
    if not stuck_on:
        return {}
    section_ids = sorted({section for student in stuck_on for section in sections_of.get(student, ())})
    competency_ids = sorted({competency for stuck in stuck_on.values() for competency in stuck})
    if not section_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT e.section_id, m.student_id, m.competency_id, m.state, m.first_activity_at,
                   (SELECT count(*) FROM progress_evidence v
                     WHERE v.student_id = m.student_id AND v.competency_id = m.competency_id
                       AND v.source = 'attempt' AND v.is_summative AND NOT v.is_correct),
                   u.first_name, u.last_name, u.username
            FROM roster_enrollment e
            JOIN progress_competencymastery m ON m.student_id = e.user_id
            JOIN roster_user u ON u.id = e.user_id
            WHERE e.section_id = ANY(%s) AND e.role = 'student' AND e.is_active
              AND m.competency_id = ANY(%s) AND m.state IN ('ready', 'in_progress')
            """,
            [section_ids, competency_ids],
        )
        by_section: dict[tuple[int, int], list[rules.PeerFacts]] = defaultdict(list)
        for section_id, student_id, competency_id, state, first_at, count, first, last, username in cursor:
            by_section[(section_id, competency_id)].append(
                rules.PeerFacts(
                    student_id=student_id,
                    name=_display_name(first, last, username),
                    competency_id=competency_id,
                    state=state,
                    failed_checks=count,
                    first_activity_on=_local_date(first_at, zone),
                )
            )
    stuck_lists: dict[tuple, list[rules.PeerFacts]] = {}

    def stuck_peers(
        section_id: int, competency_id: int, thresholds: rules.Thresholds
    ) -> list[rules.PeerFacts]:
        key = (section_id, competency_id, thresholds)
        found = stuck_lists.get(key)
        if found is None:
            found = stuck_lists[key] = [
                peer
                for peer in by_section.get((section_id, competency_id), ())
                if rules.is_stuck(
                    state=peer.state,
                    failed_checks=peer.failed_checks,
                    first_activity_on=peer.first_activity_on,
                    today=today,
                    thresholds=thresholds,
                )
            ]
        return found

    out = {}
    for student_id, stuck in stuck_on.items():
        thresholds = thresholds_of[student_id]
        out[student_id] = tuple(
            peer
            for section_id in sections_of.get(student_id, ())
            for competency_id in sorted(stuck)
            for peer in stuck_peers(section_id, competency_id, thresholds)
            if peer.student_id != student_id
        )
    return out


# --- the rules, with what students share computed once ---------------------------------------------


def due(state: StudentState, memo: Memo) -> dict[rules.FlagKey, rules.FlagSpec]:
    """``rules.flags_due`` for the student, the pacing-only rules looked up in ``memo``: their answer
    depends on the guides with the mastered targets (``pacing_key``), the date, the thresholds and,
    for ``predicted_miss``, the first day of activity."""
    facts, thresholds = state.facts, state.thresholds
    found: dict[rules.FlagKey, rules.FlagSpec] = {}
    for rule in rules.RULES:
        if rule is rules.behind_pace_flags:
            key: tuple | None = (rule.__name__, state.pacing_key, facts.today, thresholds)
        elif rule is rules.predicted_miss_flags:
            started_on = min(
                (c.first_activity_on for c in facts.competencies.values() if c.first_activity_on is not None),
                default=None,
            )
            key = (rule.__name__, state.pacing_key, started_on, facts.today, thresholds)
        else:
            key = None
        if key is None:
            specs = rule(facts, thresholds)
        else:
            specs = memo.specs.get(key)
            if specs is None:
                specs = memo.specs[key] = rule(facts, thresholds)
        for spec in specs:
            found.setdefault(spec.key, spec)
    return found


_SHARED_KINDS = frozenset({rules.BEHIND_PACE, rules.PREDICTED_MISS})


def _texts(spec: rules.FlagSpec, memo: Memo) -> tuple[str, str]:
    """The flag's evidence (with its signature) and suggestion data as JSON text; kept in ``memo`` for
    the specs students share (a behind-pace flag's JSON is ~7 kB)."""
    cached = memo.json.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1], cached[2]
    evidence = json.dumps({**spec.evidence, "signature": spec.signature})
    suggestion_data = json.dumps(spec.suggestion_data)
    if spec.kind in _SHARED_KINDS:  # the spec (kept alive here) came from ``memo.specs``
        memo.json[id(spec)] = (spec, evidence, suggestion_data)
    return evidence, suggestion_data


#: a dict's keys as written -> in jsonb's order (shorter first, then bytewise); few distinct key sets
_KEY_ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {}


_DUMP = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


def _printed(value: dict) -> str:
    """The value as jsonb prints it: keys shorter first, then bytewise; ``", "`` and ``": "``. Only the
    top level is reordered: the rules write their nested dicts' keys in that order already (were one
    not, the digest would differ and the update would compare the values itself: slower, not wrong)."""
    keys = tuple(value)
    order = _KEY_ORDERS.get(keys)
    if order is None:
        order = _KEY_ORDERS[keys] = tuple(sorted(keys, key=lambda key: (len(key.encode()), key.encode())))
    return _DUMP(value if order == keys else {key: value[key] for key in order})


def _fingerprint(spec: rules.FlagSpec) -> str:
    """What the flags query prints for a stored flag with the spec's values: md5 of the reason, the
    suggestion and the two JSON values as jsonb prints them. A mismatch only costs the comparison in
    the database (the update compares the values themselves), so this is a shortcut, never a rule."""
    parts = (
        spec.reason,
        spec.suggestion,
        _printed({**spec.evidence, "signature": spec.signature}),
        _printed(spec.suggestion_data),
    )
    return "/".join(hashlib.md5(part.encode(), usedforsecurity=False).hexdigest() for part in parts)


def write(states: Mapping[int, StudentState], *, now: datetime, memo: Memo | None = None) -> WriteResult:
    """Raise, update and clear the students' flags (see ``progress.flag_services``): new flags
    inserted, due ones updated where a value differs (or a snooze has passed), the others resolved
    with the rule's clearance note; every written row gets its history row."""
    memo = memo or Memo()
    today = timezone.localdate(now)
    result = WriteResult()
    new: list[tuple] = []
    changed: list[tuple] = []
    cleared: list[tuple[int, str]] = []
    for student_id, state in states.items():
        specs = due(state, memo)
        for key, spec in specs.items():
            flag = state.current.get(key)
            if flag is None:
                if (spec.kind, spec.competency_id, spec.signature) in state.dismissed:
                    continue  # a teacher resolved it by hand and nothing new has happened since
                evidence, suggestion_data = _texts(spec, memo)
                new.append(
                    (
                        student_id,
                        spec.competency_id,
                        spec.kind,
                        spec.reason,
                        evidence,
                        spec.suggestion,
                        suggestion_data,
                    )
                )
                continue
            reopen = (
                flag.status == Status.SNOOZED
                and flag.snoozed_until is not None
                and flag.snoozed_until < today
            )
            if reopen:
                result.reopened.append(flag.id)
            elif flag.fingerprint == _fingerprint(spec):
                continue  # unchanged: not even sent (PostgreSQL would parse its JSON to compare it)
            evidence, suggestion_data = _texts(spec, memo)
            changed.append((flag.id, reopen, spec.reason, evidence, spec.suggestion, suggestion_data))
        for key, flag in state.current.items():
            if key not in specs:
                cleared.append((flag.id, rules.clearance_note(key[0], key[1], state.facts)))
    if not (new or changed or cleared):
        return result
    stamp = timezone.now()
    user = _HISTORY_MODEL.get_default_history_user(InterventionFlag())
    common = {"now": now, "stamp": stamp, "user": getattr(user, "pk", None)}
    with connection.cursor() as cursor:
        if len(new) >= COPY_FROM:
            result.opened += _insert_copied(cursor, new, common)
        else:
            for batch in _batches(new):
                cursor.execute(_INSERT, {**common, **_columns(batch, _NEW_COLUMNS)})
                result.opened += [row[0] for row in cursor.fetchall()]
        for batch in _batches(changed):
            cursor.execute(_UPDATE, {**common, **_columns(batch, _CHANGED_COLUMNS)})
            result.updated += [row[0] for row in cursor.fetchall()]
        for batch in _batches(cleared):
            cursor.execute(_RESOLVE, {**common, **_columns(batch, ("id", "note"))})
            result.resolved += [row[0] for row in cursor.fetchall()]
    return result


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _insert_copied(cursor: Any, rows: list[tuple], common: dict[str, Any]) -> list[int]:
    """Many new flags (the sweep): COPY them into a temporary table, then one ``INSERT ... SELECT``
    with their history. Quoting megabytes of JSON into SQL literals, and PostgreSQL parsing them back
    into arrays, cost more than the insert itself."""
    cursor.execute(
        "CREATE TEMPORARY TABLE IF NOT EXISTS flag_sweep_new (n integer, student bigint, competency bigint, "
        "kind text, reason text, evidence text, suggestion text, suggestion_data text) ON COMMIT DELETE ROWS"
    )
    buffer = io.StringIO()
    for number, row in enumerate(rows):
        buffer.write(f"{number}\t" + "\t".join(_copy_text(value) for value in row) + "\n")
    buffer.seek(0)
    cursor.cursor.copy_expert("COPY flag_sweep_new FROM STDIN", buffer)
    cursor.execute(_INSERT_COPIED, common)
    opened = [row[0] for row in cursor.fetchall()]
    cursor.execute("TRUNCATE flag_sweep_new")
    return opened


def _batches(rows: list[tuple]) -> Iterable[list[tuple]]:
    for start in range(0, len(rows), WRITE_BATCH):
        yield rows[start : start + WRITE_BATCH]


def _columns(rows: list[tuple], names: Sequence[str]) -> dict[str, list]:
    return {name: [row[index] for row in rows] for index, name in enumerate(names)}


_NEW_COLUMNS = ("student", "competency", "kind", "reason", "evidence", "suggestion", "suggestion_data")
_CHANGED_COLUMNS = ("id", "reopen", "reason", "evidence", "suggestion", "suggestion_data")
_HISTORY_INSERT = f"""
    INSERT INTO {_HISTORY} ({_TRACKED}, history_date, history_change_reason, history_type, history_user_id)
    SELECT {_TRACKED}, %(stamp)s, NULL, %(type)s, %(user)s FROM written
"""
_INSERT = f"""
    WITH written AS (
        INSERT INTO {_FLAG} (student_id, competency_id, kind, status, reason, evidence, suggestion,
                             suggestion_data, opened_at, resolution_note, is_auto_resolved, updated_at)
        SELECT d.student, d.competency, d.kind, 'open', d.reason, d.evidence::jsonb, d.suggestion,
               d.suggestion_data::jsonb, %(now)s, '', false, %(stamp)s
        FROM unnest(%(student)s::bigint[], %(competency)s::bigint[], %(kind)s::text[], %(reason)s::text[],
                    %(evidence)s::text[], %(suggestion)s::text[], %(suggestion_data)s::text[])
             WITH ORDINALITY AS d(student, competency, kind, reason, evidence, suggestion, suggestion_data, n)
        ORDER BY d.n
        RETURNING *
    ), history AS ({_HISTORY_INSERT.replace("%(type)s", "'+'")})
    SELECT id FROM written ORDER BY id
"""
_INSERT_COPIED = f"""
    WITH written AS (
        INSERT INTO {_FLAG} (student_id, competency_id, kind, status, reason, evidence, suggestion,
                             suggestion_data, opened_at, resolution_note, is_auto_resolved, updated_at)
        SELECT d.student, d.competency, d.kind, 'open', d.reason, d.evidence::jsonb, d.suggestion,
               d.suggestion_data::jsonb, %(now)s, '', false, %(stamp)s
        FROM flag_sweep_new d
        ORDER BY d.n
        RETURNING *
    ), history AS ({_HISTORY_INSERT.replace("%(type)s", "'+'")})
    SELECT id FROM written ORDER BY id
"""
_UPDATE = f"""
    WITH d AS (
        SELECT * FROM unnest(%(id)s::bigint[], %(reopen)s::boolean[], %(reason)s::text[],
                             %(evidence)s::text[], %(suggestion)s::text[], %(suggestion_data)s::text[])
             AS d(id, reopen, reason, evidence, suggestion, suggestion_data)
    ), written AS (
        UPDATE {_FLAG} f SET
            status = CASE WHEN d.reopen THEN 'open' ELSE f.status END,
            snoozed_until = CASE WHEN d.reopen THEN NULL ELSE f.snoozed_until END,
            reason = d.reason, evidence = d.evidence::jsonb, suggestion = d.suggestion,
            suggestion_data = d.suggestion_data::jsonb, updated_at = %(stamp)s
        FROM d
        WHERE f.id = d.id AND (
            d.reopen OR f.reason <> d.reason OR f.evidence <> d.evidence::jsonb
            OR f.suggestion <> d.suggestion OR f.suggestion_data <> d.suggestion_data::jsonb
        )
        RETURNING f.*
    ), history AS ({_HISTORY_INSERT.replace("%(type)s", "'~'")})
    SELECT id FROM written ORDER BY id
"""
_RESOLVE = f"""
    WITH d AS (SELECT * FROM unnest(%(id)s::bigint[], %(note)s::text[]) AS d(id, note)),
    written AS (
        UPDATE {_FLAG} f SET
            status = 'resolved', snoozed_until = NULL, resolved_at = %(now)s, resolved_by_id = NULL,
            is_auto_resolved = true, resolution_note = d.note, updated_at = %(stamp)s
        FROM d WHERE f.id = d.id
        RETURNING f.*
    ), history AS ({_HISTORY_INSERT.replace("%(type)s", "'~'")})
    SELECT id FROM written ORDER BY id
"""
