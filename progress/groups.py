"""Suggested small groups for one section: students stuck on, or ready for, the same competency.

Stuck: the students with a stuck flag that is not resolved on the competency (open, acknowledged or
snoozed: they still need the reteach). Ready: the students for whom the competency is ready and who
have not started it yet, so one short launch of the lesson serves them all. A group has at least two
students. When the section has a pacing guide, only its framework's competencies are suggested.
Stuck groups come first, larger groups before smaller ones. Seven queries whatever the class size
(eight when a prerequisite lies in another framework).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from competencies.models import Competency, PacingGuide
from progress import grid
from progress.models import CompetencyMastery, InterventionFlag
from roster.models import Enrollment, Section

MIN_GROUP_SIZE = 2
STUCK = "stuck"
READY = "ready"


@dataclass(frozen=True)
class SmallGroup:
    competency_id: int
    code: str
    kind: str
    reason: str
    students: list[int]


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def section_groups(*, section: Section) -> list[SmallGroup]:
    students = {
        row["user_id"]: f"{row['user__first_name']} {row['user__last_name']}".strip() or row["user__username"]
        for row in Enrollment.objects.filter(
            section=section, role=Enrollment.Role.STUDENT, is_active=True, user__is_active=True
        ).values("user_id", "user__first_name", "user__last_name", "user__username")
    }
    framework_id = PacingGuide.objects.filter(section=section).values_list("framework_id", flat=True).first()
    scope = {"competency__framework_id": framework_id} if framework_id else {}

    stuck = (
        InterventionFlag.objects.filter(
            student_id__in=students, kind=InterventionFlag.Kind.STUCK, competency__isnull=False, **scope
        )
        .exclude(status=InterventionFlag.Status.RESOLVED)
        .values_list("student_id", "competency_id", "competency__code")
    )
    return groups_from(students, stuck, ready_not_started(list(students), framework_id))


def ready_not_started(student_ids: list[int], framework_id: int | None) -> list[tuple[int, int, str]]:
    """(student, competency, code) of each competency ready for the student and not started: the stored
    ready rows with no activity (a teacher's unlock) and the blank rows ``progress.grid`` derives as
    ready. Over the framework's competencies, or without one, over the frameworks the students have
    stored rows in. Three or four queries."""
    frameworks: Any = (
        [framework_id]
        if framework_id
        else CompetencyMastery.objects.filter(student_id__in=student_ids).values("competency__framework_id")
    )
    codes = dict(Competency.objects.filter(framework_id__in=frameworks).order_by().values_list("pk", "code"))
    rows = list(
        CompetencyMastery.objects.filter(student_id__in=student_ids, competency_id__in=list(codes))
        .order_by()
        .values_list("student_id", "competency_id", "state", "first_activity_at")
    )
    stored = {(student_id, competency_id): state for student_id, competency_id, state, _ in rows}
    derived = grid.blank_states(student_ids=student_ids, competency_ids=list(codes), stored=stored)
    return ready_from(rows, derived, codes)


def ready_from(
    rows: Iterable[tuple[int, int, str, Any]],
    derived: Mapping[tuple[int, int], str],
    codes: Mapping[int, str],
) -> list[tuple[int, int, str]]:
    """(student, competency, code) ready and not started, from the stored rows (student, competency,
    state, first activity), the derived states of the blank ones and the codes of the competencies in
    scope. No query: the section page passes what it has already read."""
    ready = [
        (student_id, competency_id, codes[competency_id])
        for student_id, competency_id, state, first_activity_at in rows
        if state == CompetencyMastery.State.READY and first_activity_at is None and competency_id in codes
    ]
    ready.extend(
        (student_id, competency_id, codes[competency_id])
        for (student_id, competency_id), state in derived.items()
        if state == CompetencyMastery.State.READY and competency_id in codes
    )
    return ready


def groups_from(
    students: dict[int, str],
    stuck: Iterable[tuple[int, int, str]],
    ready: Iterable[tuple[int, int, str]],
) -> list[SmallGroup]:
    """The groups from the section's students (id to name), the (student, competency, code) of each
    stuck flag that is not resolved and of each ready, not started mastery row. No query: the section
    page passes the rows it has already read."""
    members: dict[tuple[str, int], set[int]] = defaultdict(set)
    codes: dict[int, str] = {}
    for kind, rows in ((STUCK, stuck), (READY, ready)):
        for student_id, competency_id, code in rows:
            if student_id not in students:
                continue
            members[(kind, competency_id)].add(student_id)
            codes[competency_id] = code or str(competency_id)

    groups = []
    for (kind, competency_id), student_ids in members.items():
        if len(student_ids) < MIN_GROUP_SIZE:
            continue
        ordered = sorted(student_ids, key=lambda student_id: (students[student_id], student_id))
        code, who = codes[competency_id], _names([students[student_id] for student_id in ordered])
        if kind == STUCK:
            reason = f"{len(ordered)} students are stuck on {code} ({who}): reteach it as a small group"
        else:
            reason = (
                f"{len(ordered)} students are ready for {code} and have not started it ({who}): "
                "launch the lesson together"
            )
        groups.append(
            SmallGroup(competency_id=competency_id, code=code, kind=kind, reason=reason, students=ordered)
        )
    groups.sort(
        key=lambda group: (group.kind != STUCK, -len(group.students), group.code, group.competency_id)
    )
    return groups
