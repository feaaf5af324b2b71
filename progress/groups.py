"""Suggested small groups for one section: students stuck on, or ready for, the same competency.

Stuck: the students with a stuck flag that is not resolved on the competency (open, acknowledged or
snoozed: they still need the reteach). Ready: the students for whom the competency is ready and who
have not started it yet, so one short launch of the lesson serves them all. A group has at least two
students. When the section has a pacing guide, only its framework's competencies are suggested.
Stuck groups come first, larger groups before smaller ones. Four queries whatever the class size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from competencies.models import PacingGuide
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

    members: dict[tuple[str, int], set[int]] = defaultdict(set)
    codes: dict[int, str] = {}
    for student_id, competency_id, code in (
        InterventionFlag.objects.filter(
            student_id__in=students, kind=InterventionFlag.Kind.STUCK, competency__isnull=False, **scope
        )
        .exclude(status=InterventionFlag.Status.RESOLVED)
        .values_list("student_id", "competency_id", "competency__code")
    ):
        members[(STUCK, competency_id)].add(student_id)
        codes[competency_id] = code or str(competency_id)
    for student_id, competency_id, code in CompetencyMastery.objects.filter(
        student_id__in=students,
        state=CompetencyMastery.State.READY,
        first_activity_at__isnull=True,
        **scope,
    ).values_list("student_id", "competency_id", "competency__code"):
        members[(READY, competency_id)].add(student_id)
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
