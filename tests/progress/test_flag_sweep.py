"""The set-based flag refresh (``progress.flag_sweep_sql``) raises exactly the flags of the straightforward
per-student path on a generated district: same kinds, students, competencies, reasons, suggestions and
evidence, and the same clearance notes.

The reference below is the loader the refresh replaced (every stored row, every classmate's working row,
every pacing target per student, one ORM query per kind of fact), made to read sparse storage the way
the old code read stored blank rows: every competency of the frameworks a student is concerned by, the
missing ones derived by ``progress.grid.blank_states``. Its facts go through ``rules.flags_due``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

import pytest
from django.db import connection
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from assessments.models import Attempt
from competencies.models import Competency, LearningResource, MasteryLevel, PacingTarget, Prerequisite
from mastery import district
from progress import district as progress_district
from progress import flag_portable, flag_services, flag_sweep_sql, grid, rules
from progress.models import CompetencyMastery, Evidence, InterventionFlag, ResourceView
from roster.models import Enrollment, User

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY and ON CONFLICT: PostgreSQL"),
]

SIZE = district.Size(students=45, sections=3, competencies=15, items=60, responses=3_000)  # "tiny"
MID_YEAR = datetime(2026, 1, 14, 15, 0, tzinfo=UTC)  # predicted misses, stuck and inactive students
AFTER = datetime(2026, 6, 12, 15, 0, tzinfo=UTC)  # the bench's "now": a week after the year's work
Status = InterventionFlag.Status


def _name(first: str, last: str, username: str) -> str:
    return f"{first} {last}".strip() or username


def _day(moment: datetime | None) -> date | None:
    return timezone.localdate(moment) if moment is not None else None


def reference_facts(
    student_ids: list[int], today: date, changes: dict[int, list] | None = None
) -> dict[int, tuple[rules.StudentFacts, rules.Thresholds]]:
    """The facts the old per-student loader built, blank rows included (derived when not stored)."""
    changes = changes or {}
    enrollments = list(
        Enrollment.objects.filter(
            user_id__in=student_ids, role=Enrollment.Role.STUDENT, is_active=True, section__is_active=True
        ).values("user_id", "section_id", "section__title", "begin_date", "section__term__start_date")
    )
    sections_of: dict[int, list[int]] = defaultdict(list)
    active_since: dict[int, date] = {}
    titles: dict[int, str] = {}
    for row in enrollments:
        sections_of[row["user_id"]].append(row["section_id"])
        titles[row["section_id"]] = row["section__title"]
        start = row["begin_date"] or row["section__term__start_date"]
        if start and (row["user_id"] not in active_since or start < active_since[row["user_id"]]):
            active_since[row["user_id"]] = start
    targets_of: dict[int, list[dict]] = defaultdict(list)
    for row in PacingTarget.objects.filter(guide__section_id__in=titles).values(
        "guide__section_id", "competency_id", "competency__code", "target_date"
    ):
        targets_of[row["guide__section_id"]].append(row)
    classmates: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for row in Enrollment.objects.filter(
        section_id__in=titles, role=Enrollment.Role.STUDENT, is_active=True
    ).values("section_id", "user_id", "user__first_name", "user__last_name", "user__username"):
        classmates[row["section_id"]].append(
            (row["user_id"], _name(row["user__first_name"], row["user__last_name"], row["user__username"]))
        )
    everyone = sorted(set(student_ids) | {user for rows in classmates.values() for user, _ in rows})

    catalogue = {
        row["id"]: row
        for row in Competency.objects.annotate(
            has_children=Exists(Competency.objects.filter(parent_id=OuterRef("pk")))
        ).values("id", "code", "framework_id", "framework__mastery_scale_id", "has_children")
    }
    points = dict(MasteryLevel.objects.filter(is_mastery=True).values_list("scale_id", "points"))
    prerequisites: dict[int, list[int]] = defaultdict(list)
    for competency_id, prerequisite_id in Prerequisite.objects.order_by(
        "competency", "prerequisite"
    ).values_list("competency_id", "prerequisite_id"):
        prerequisites[competency_id].append(prerequisite_id)
    lessons: dict[int, rules.Lesson] = {}
    for competency_id, title, url in LearningResource.objects.values_list("competency_id", "title", "url"):
        lessons.setdefault(competency_id, rules.Lesson(title, url))

    stored = {
        (row["student_id"], row["competency_id"]): row
        for row in CompetencyMastery.objects.filter(student_id__in=everyone).values(
            "student_id",
            "competency_id",
            "state",
            "score",
            "level_points",
            "mastered_at",
            "first_activity_at",
            "is_overridden",
        )
    }
    # Frameworks concerned (``services.mastery_recompute``): stored rows, evidence, pacing guides.
    frameworks: dict[int, set[int]] = defaultdict(set)
    for student_id, competency_id in stored:
        frameworks[student_id].add(catalogue[competency_id]["framework_id"])
    for student_id, competency_id in Evidence.objects.filter(student_id__in=everyone).values_list(
        "student_id", "competency_id"
    ):
        frameworks[student_id].add(catalogue[competency_id]["framework_id"])
    for student_id, framework_id in Enrollment.objects.filter(
        user_id__in=everyone, role=Enrollment.Role.STUDENT, is_active=True
    ).values_list("user_id", "section__pacing_guide__framework_id"):
        if framework_id is not None:
            frameworks[student_id].add(framework_id)
    states = {pair: row["state"] for pair, row in stored.items()}
    wanted = sorted(
        {c for c, row in catalogue.items() if any(row["framework_id"] in f for f in frameworks.values())}
    )
    blanks = grid.blank_states(student_ids=everyone, competency_ids=wanted, stored=states)
    rows_of: dict[int, dict[int, dict]] = defaultdict(dict)
    for (student_id, competency_id), row in sorted(stored.items()):
        rows_of[student_id][competency_id] = row
    for (student_id, competency_id), state in sorted(blanks.items()):
        if catalogue[competency_id]["framework_id"] in frameworks[student_id]:
            rows_of[student_id][competency_id] = {"state": state}

    failed: dict[tuple[int, int], list[date]] = defaultdict(list)
    for student_id, competency_id, observed_at in Evidence.objects.filter(
        student_id__in=everyone, source=Evidence.Source.ATTEMPT, is_summative=True, is_correct=False
    ).values_list("student_id", "competency_id", "observed_at"):
        failed[(student_id, competency_id)].append(timezone.localdate(observed_at))
    last_activity = dict(
        Evidence.objects.filter(student_id__in=student_ids)
        .exclude(source=Evidence.Source.OVERRIDE)
        .values("student_id")
        .annotate(last=Max("observed_at"))
        .values_list("student_id", "last")
    )
    for student_id, viewed_at in (
        ResourceView.objects.filter(student_id__in=student_ids)
        .values("student_id")
        .annotate(last=Max("last_viewed_at"))
        .values_list("student_id", "last")
    ):
        if student_id not in last_activity or viewed_at > last_activity[student_id]:
            last_activity[student_id] = viewed_at
    open_regressions: dict[int, dict[int, Decimal]] = defaultdict(dict)
    for flag in InterventionFlag.objects.filter(student_id__in=student_ids, kind="regressed").exclude(
        status=Status.RESOLVED
    ):
        try:
            open_regressions[flag.student_id][flag.competency_id] = Decimal(
                str(flag.evidence.get("from_level"))
            )
        except (InvalidOperation, ValueError):
            continue

    def competency_facts(student_id: int, competency_id: int, row: dict) -> rules.CompetencyFacts:
        item = catalogue[competency_id]
        return rules.CompetencyFacts(
            id=competency_id,
            code=item["code"] or str(competency_id),
            state=row["state"],
            score=row.get("score"),
            level_points=row.get("level_points"),
            mastery_points=points.get(item["framework__mastery_scale_id"]),
            mastered_on=_day(row.get("mastered_at")),
            first_activity_on=_day(row.get("first_activity_at")),
            is_overridden=row.get("is_overridden", False),
            is_leaf=not item["has_children"],
            failed_check_dates=tuple(sorted(failed.get((student_id, competency_id), ()))),
            prerequisite_ids=tuple(prerequisites.get(competency_id, ())),
            lesson=lessons.get(competency_id),
        )

    names = {user: name for rows in classmates.values() for user, name in rows}
    out = {}
    for student_id in student_ids:
        competencies = {
            competency_id: competency_facts(student_id, competency_id, row)
            for competency_id, row in rows_of[student_id].items()
        }
        pacing = tuple(
            rules.PacingFacts(
                section_id=section_id,
                section_title=titles[section_id],
                targets=tuple(
                    rules.PacingTargetFacts(
                        competency_id=row["competency_id"],
                        code=row["competency__code"] or str(row["competency_id"]),
                        target_date=row["target_date"],
                        is_mastered=row["competency_id"] in competencies
                        and competencies[row["competency_id"]].is_mastered,
                        lesson=lessons.get(row["competency_id"]),
                    )
                    for row in targets_of[section_id]
                ),
            )
            for section_id in sorted(sections_of.get(student_id, ()))
            if targets_of.get(section_id)
        )
        peers = tuple(
            rules.PeerFacts(
                student_id=peer_id,
                name=names[peer_id],
                competency_id=competency_id,
                state=row["state"],
                failed_checks=len(failed.get((peer_id, competency_id), ())),
                first_activity_on=_day(row.get("first_activity_at")),
            )
            for peer_id in sorted(
                {user for section in sections_of.get(student_id, ()) for user, _ in classmates[section]}
                - {student_id}
            )
            for competency_id, row in rows_of[peer_id].items()
            if row["state"] in (rules.READY, rules.IN_PROGRESS)
        )
        facts = rules.StudentFacts(
            student_id=student_id,
            today=today,
            competencies=competencies,
            last_activity_on=_day(last_activity.get(student_id)),
            active_since=active_since.get(student_id),
            pacing=pacing,
            peers=peers,
            level_drops=tuple(
                rules.LevelDrop(change.competency_id, change.old_level_points, change.new_level_points)
                for change in changes.get(student_id, ())
            ),
            open_regressions=open_regressions.get(student_id, {}),
        )
        out[student_id] = (facts, rules.Thresholds())
    return out


def _canonical(value: dict) -> str:
    return json.dumps(value, sort_keys=True)


def _flag_row(student_id: int, spec: rules.FlagSpec) -> tuple:
    return (
        student_id,
        spec.kind,
        spec.competency_id,
        spec.reason,
        spec.suggestion,
        _canonical({**spec.evidence, "signature": spec.signature}),
        _canonical(spec.suggestion_data),
    )


def _stored_rows(**filters) -> set[tuple]:
    return {
        (
            flag.student_id,
            flag.kind,
            flag.competency_id,
            flag.reason,
            flag.suggestion,
            _canonical(flag.evidence),
            _canonical(flag.suggestion_data),
        )
        for flag in InterventionFlag.objects.filter(**filters)
    }


def _first_two_leaves() -> tuple[Competency, Competency]:
    """The leaf with no prerequisite, and the leaf that requires it."""
    first = Competency.objects.get(children__isnull=True, prerequisite_edges__isnull=True)
    second = Competency.objects.get(prerequisite_edges__prerequisite=first)
    return first, second


def _students() -> list[int]:
    return list(User.objects.filter(role="student").order_by("pk").values_list("pk", flat=True))


def _world() -> tuple[list[int], tuple[Competency, Competency], tuple[int, int]]:
    """The tiny generated district, with two students who have nothing in progress."""
    district.generate(size=SIZE, seed=5)
    students = _students()
    # Two students with nothing in progress, so that "inactive" names a blank ready leaf next: one
    # only watched a lesson (the first leaf next: no prerequisite), one mastered the first leaf only
    # (the second next). Their lessons are named in the suggestions.
    first, second = _first_two_leaves()
    fresh, quick = students[1], students[2]
    Attempt.objects.filter(student_id__in=[fresh, quick]).delete()  # the sweep rebuilds their evidence
    Evidence.objects.filter(student_id__in=[fresh, quick]).delete()
    lesson = LearningResource.objects.create(
        competency=first, title="Tape diagrams", url="https://example.org/t"
    )
    LearningResource.objects.create(competency=second, title="Ratios", url="https://example.org/r")
    ResourceView.objects.create(
        student_id=fresh,
        resource=lesson,
        first_viewed_at=datetime(2025, 11, 3, tzinfo=UTC),
        last_viewed_at=datetime(2025, 11, 3, tzinfo=UTC),
    )
    Evidence.objects.bulk_create(
        Evidence(
            student_id=quick,
            competency_id=first.pk,
            source=Evidence.Source.OBSERVATION,
            is_summative=False,
            score=Decimal("4"),
            is_correct=True,
            observed_at=datetime(2025, 12, 1 + day, 10, 0, tzinfo=UTC),
        )
        for day in range(6)
    )

    # Their pacing guide lists both leaves last, so the next leaf is not merely the next target.
    PacingTarget.objects.filter(competency__in=[first, second]).update(target_date=date(2026, 6, 1))
    return students, (first, second), (fresh, quick)


@pytest.mark.parametrize("copy_from", [1, 10_000], ids=["copied", "unnested"])
def test_the_sweep_raises_exactly_the_flags_of_the_per_student_rules(monkeypatch, copy_from):
    # Many new flags go through COPY (the district), a few through one INSERT (after a submit).
    monkeypatch.setattr(flag_sweep_sql, "COPY_FROM", copy_from)
    students, (first, second), (fresh, quick) = _world()

    result = flag_services.flags_sweep(now=MID_YEAR)

    expected = {
        _flag_row(student_id, spec)
        for student_id, (facts, thresholds) in reference_facts(students, MID_YEAR.date()).items()
        for spec in rules.flags_due(facts, thresholds)
    }
    assert _stored_rows() == expected
    assert result.flags_opened == len(expected)
    assert {"stuck", "inactive", "behind_pace", "predicted_miss"} <= {row[1] for row in expected}
    assert any("small group with" in row[4] for row in expected)  # stuck peers are named
    inactive = {row[0]: row[4] for row in expected if row[1] == "inactive"}
    assert inactive[fresh] == (
        f"Check in with the student; next up: {first.code}, re-watch “Tape diagrams” (https://example.org/t)"
    )
    assert inactive[quick] == (
        f"Check in with the student; next up: {second.code}, re-watch “Ratios” (https://example.org/r)"
    )

    # A week later, after a rescore lowered some levels, with a snoozed flag and one resolved by hand:
    # the refresh with the recompute's changes gives the rules' answer, clearance notes included.
    later = AFTER
    lowered = list(Evidence.objects.filter(is_correct=True, student_id__in=students[::4]).order_by("pk")[:12])
    for evidence in lowered:
        evidence.score, evidence.is_correct = Decimal("1"), False
    Evidence.objects.bulk_update(lowered, ["score", "is_correct"])
    first_open = InterventionFlag.objects.order_by("pk").first()
    first_open.status, first_open.snoozed_until = Status.SNOOZED, date(2026, 2, 1)
    first_open.save()
    by_hand = InterventionFlag.objects.exclude(pk=first_open.pk).order_by("-pk").first()
    by_hand.status, by_hand.resolved_at, by_hand.is_auto_resolved = Status.RESOLVED, MID_YEAR, False
    by_hand.save()
    recomputed = progress_district.district_recompute(now=later, collect_changes=True)
    assert any(
        change.old_level_points is not None and (change.new_level_points or 0) < change.old_level_points
        for changes in recomputed.changes.values()
        for change in changes
    )
    before_open = {
        (flag.student_id, flag.kind, flag.competency_id): flag.pk
        for flag in InterventionFlag.objects.exclude(status=Status.RESOLVED)
    }
    facts = reference_facts(students, later.date(), recomputed.changes)
    due = {
        student_id: {spec.key: spec for spec in rules.flags_due(student_facts, thresholds)}
        for student_id, (student_facts, thresholds) in facts.items()
    }

    refreshed = flag_services.flags_refresh_for_students(
        student_ids=students, changes_by_student=recomputed.changes, now=later
    )

    dismissed = (by_hand.student_id, by_hand.kind, by_hand.competency_id, by_hand.evidence["signature"])
    expected = {
        _flag_row(student_id, spec)
        for student_id, specs in due.items()
        for spec in specs.values()
        if (student_id, spec.kind, spec.competency_id, spec.signature) != dismissed
    }
    assert _stored_rows(status__in=[Status.OPEN, Status.ACKNOWLEDGED, Status.SNOOZED]) == expected
    notes = {
        pk: rules.clearance_note(kind, competency_id, facts[student_id][0])
        for (student_id, kind, competency_id), pk in before_open.items()
        if (kind, competency_id) not in due[student_id]
    }
    assert notes and any(kind == "regressed" for kind in {row[1] for row in expected})
    assert dict(InterventionFlag.objects.filter(pk__in=notes).values_list("pk", "resolution_note")) == notes
    assert sorted(refreshed.resolved) == sorted(notes)
    assert set(InterventionFlag.objects.filter(pk__in=notes).values_list("status", "is_auto_resolved")) == {
        (Status.RESOLVED, True)
    }
    if first_open.pk not in notes:
        first_open.refresh_from_db()
        assert (first_open.status, refreshed.reopened) == (Status.OPEN, [first_open.pk])
    # Every write has its history row: one per flag created, one per update.
    assert InterventionFlag.history.filter(history_type="+").count() == InterventionFlag.objects.count()
    assert InterventionFlag.history.filter(history_type="~").count() == 2 + len(refreshed.updated) + len(
        notes
    )

    # Nothing new: a second refresh writes nothing.
    again = flag_services.flags_refresh_for_students(student_ids=students, now=later)
    assert (again.opened, again.resolved, again.updated, again.reopened) == ([], [], [], [])


def _snapshot() -> set[tuple]:
    return {
        (*row, flag.status, flag.opened_at)
        for flag in InterventionFlag.objects.all()
        for row in [
            (
                flag.student_id,
                flag.kind,
                flag.competency_id,
                flag.reason,
                flag.suggestion,
                _canonical(flag.evidence),
                _canonical(flag.suggestion_data),
            )
        ]
    }


def test_the_portable_path_raises_the_same_flags():
    """``progress.flag_portable`` (SQLite in development) and the set-based path agree, history too."""
    students, *_ = _world()
    progress_district.district_recompute(now=MID_YEAR)

    portable = flag_portable.refresh(
        student_ids=students, changes_by_student={}, now=MID_YEAR, result=flag_services.FlagRefreshResult()
    )
    expected = _snapshot()
    InterventionFlag.history.all().delete()
    InterventionFlag.objects.all().delete()
    set_based = flag_services.flags_refresh_for_students(student_ids=students, now=MID_YEAR)

    assert _snapshot() == expected
    assert len(set_based.opened) == len(portable.opened) == len(expected) > 0
    assert InterventionFlag.history.filter(history_type="+").count() == len(expected)
