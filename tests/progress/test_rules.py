"""The flag rules over hand-made facts: each kind raised with its exact reason, and cleared."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal as D

import pytest

from progress import rules
from progress.rules import (
    CompetencyFacts,
    Lesson,
    LevelDrop,
    PacingFacts,
    PacingTargetFacts,
    PeerFacts,
    StudentFacts,
    Thresholds,
)

TODAY = date(2027, 3, 15)  # a Monday
LESSON = Lesson("Ratios with tape diagrams", "https://example.org/ratios")


def competency(id, code, **kwargs):
    return CompetencyFacts(id=id, code=code, mastery_points=D(3), **kwargs)


def facts(*competencies, **kwargs):
    kwargs.setdefault("last_activity_on", TODAY)
    return StudentFacts(student_id=1, today=TODAY, competencies={c.id: c for c in competencies}, **kwargs)


def kinds(specs):
    return sorted((spec.kind, spec.competency_id) for spec in specs)


def only(specs, kind):
    found = [spec for spec in specs if spec.kind == kind]
    assert len(found) == 1, found
    return found[0]


def test_school_days_count_weekdays_after_the_last_activity():
    assert rules.school_days_between(date(2027, 3, 12), date(2027, 3, 15)) == 1  # Fri -> Mon
    assert rules.school_days_between(date(2027, 3, 5), date(2027, 3, 12)) == 5  # Fri -> Fri
    assert rules.school_days_between(date(2027, 3, 4), date(2027, 3, 15)) == 7
    assert rules.school_days_between(date(2027, 3, 15), date(2027, 3, 15)) == 0
    assert rules.school_days_between(date(2027, 3, 13), date(2027, 3, 14)) == 0  # a weekend


def test_stuck_after_two_failed_checks_with_the_lesson_and_stuck_peers():
    ratio = competency(
        10,
        "6.RP.A.2",
        state="in_progress",
        first_activity_on=date(2027, 3, 3),
        failed_check_dates=(date(2027, 3, 10), date(2027, 3, 3)),
        lesson=LESSON,
    )
    peers = (
        PeerFacts(2, "Ana Ruiz", 10, "in_progress", 2, date(2027, 3, 8)),
        PeerFacts(3, "Ben Ode", 10, "ready", 0, date(2027, 3, 1)),  # 14 days on it
        PeerFacts(4, "Cy Lee", 10, "in_progress", 1, date(2027, 3, 12)),  # not stuck
        PeerFacts(5, "Di Roy", 10, "mastered", 3, date(2027, 3, 1)),  # mastered
    )
    spec = only(rules.flags_due(facts(ratio, peers=peers)), "stuck")
    assert spec.competency_id == 10
    assert (
        spec.reason
        == "failed the mastery check for 6.RP.A.2 twice (3 Mar, 10 Mar) and has been on it 12 days"
    )
    assert spec.suggestion == (
        "Re-watch “Ratios with tape diagrams” (https://example.org/ratios); "
        "small group with Ana Ruiz and Ben Ode (also stuck on 6.RP.A.2)"
    )
    assert spec.evidence == {
        "competency": "6.RP.A.2",
        "failed_checks": 2,
        "failed_check_dates": ["2027-03-03", "2027-03-10"],
        "first_activity": "2027-03-03",
        "days_on_it": 12,
    }
    assert spec.suggestion_data["peers"] == [{"id": 2, "name": "Ana Ruiz"}, {"id": 3, "name": "Ben Ode"}]


def test_stuck_by_days_alone_and_thresholds_from_the_district():
    slow = competency(10, "6.RP.A.2", state="ready", first_activity_on=date(2027, 3, 8))
    spec = only(rules.flags_due(facts(slow)), "stuck")
    assert spec.reason == "has been on 6.RP.A.2 for 7 days without mastering it"
    assert spec.suggestion == "Work through 6.RP.A.2 one to one"
    assert rules.flags_due(facts(slow), Thresholds(stuck_days=8)) == []
    once = replace(slow, first_activity_on=TODAY, failed_check_dates=(TODAY,))
    assert rules.flags_due(facts(once)) == []
    assert only(rules.flags_due(facts(once), Thresholds(stuck_failed_checks=1)), "stuck").reason == (
        "failed the mastery check for 6.RP.A.2 once (15 Mar) and has been on it 0 days"
    )


def test_stuck_clears_when_mastered():
    stuck = competency(
        10,
        "6.RP.A.2",
        state="in_progress",
        first_activity_on=date(2027, 3, 3),
        failed_check_dates=(TODAY, TODAY),
    )
    assert kinds(rules.flags_due(facts(stuck))) == [("stuck", 10)]
    mastered = replace(stuck, state="mastered", mastered_on=date(2027, 3, 14))
    cleared = facts(mastered)
    assert rules.flags_due(cleared) == []
    assert rules.clearance_note("stuck", 10, cleared) == "cleared: mastered 6.RP.A.2 on 14 Mar"


@pytest.mark.parametrize(
    ("prerequisite", "weakness"),
    [
        (
            {"score": D("3.10"), "mastered_on": date(2027, 2, 1)},
            "only just (score 3.1 against the mastery level 3)",
        ),
        ({"score": D(3), "is_overridden": True, "mastered_on": date(2027, 2, 1)}, "by a teacher override"),
        ({"score": D(4), "mastered_on": date(2026, 9, 1)}, "long ago (1 Sep, 195 days ago)"),
    ],
)
def test_prerequisite_gap_names_the_weak_prerequisite(prerequisite, weakness):
    before = competency(1, "6.RP.A.1", state="mastered", lesson=LESSON, **prerequisite)
    failing = competency(
        2, "6.RP.A.2", state="in_progress", first_activity_on=TODAY, failed_check_dates=(date(2027, 3, 12),),
        prerequisite_ids=(1,),
    )  # fmt: skip
    spec = only(rules.flags_due(facts(before, failing)), "prerequisite_gap")
    assert spec.competency_id == 2
    assert (
        spec.reason
        == f"failed the mastery check for 6.RP.A.2 (12 Mar) and its prerequisite 6.RP.A.1 was mastered {weakness}"
    )
    assert (
        spec.suggestion
        == "Revisit 6.RP.A.1: re-watch “Ratios with tape diagrams” (https://example.org/ratios)"
    )


def test_prerequisite_gap_clears_when_remastered_or_mastered():
    weak = competency(1, "6.RP.A.1", state="mastered", score=D("3.1"), mastered_on=date(2027, 2, 1))
    failing = competency(
        2,
        "6.RP.A.2",
        state="in_progress",
        first_activity_on=TODAY,
        failed_check_dates=(TODAY,),
        prerequisite_ids=(1,),
    )
    assert kinds(rules.flags_due(facts(weak, failing))) == [("prerequisite_gap", 2)]
    firm = replace(weak, score=D("3.5"), mastered_on=date(2027, 3, 14))
    assert rules.flags_due(facts(firm, failing)) == []
    assert rules.clearance_note("prerequisite_gap", 2, facts(firm, failing)) == (
        "cleared: the prerequisites of 6.RP.A.2 are now firmly mastered"
    )
    done = facts(weak, replace(failing, state="mastered", mastered_on=TODAY))
    assert rules.flags_due(done) == []
    assert rules.clearance_note("prerequisite_gap", 2, done) == "cleared: mastered 6.RP.A.2 on 15 Mar"


def guide(*mastered_flags, dates=None):
    dates = dates or [date(2027, 2, 1), date(2027, 2, 15), date(2027, 3, 1), date(2027, 4, 1)]
    targets = tuple(
        PacingTargetFacts(
            20 + index,
            f"6.RP.A.{index + 1}",
            dates[index],
            is_mastered,
            lesson=LESSON if index == 1 else None,
        )
        for index, is_mastered in enumerate(mastered_flags)
    )
    return PacingFacts(section_id=7, section_title="Math 6A", targets=targets)


def test_behind_pace_beyond_the_margin_and_back_on_pace():
    behind = facts(pacing=(guide(False, False, False, False),))
    spec = only(rules.flags_due(behind), "behind_pace")
    assert spec.competency_id is None
    assert (
        spec.reason
        == "has mastered 0 of the 3 competencies Math 6A's pacing guide expects by 15 Mar (3 behind)"
    )
    assert spec.suggestion == "Catch up on 6.RP.A.1, 6.RP.A.2, 6.RP.A.3"
    assert spec.evidence["behind"] == 3
    within_margin = facts(pacing=(guide(True, True, False, False),))
    assert [s for s in rules.flags_due(within_margin) if s.kind == "behind_pace"] == []
    assert (
        rules.clearance_note("behind_pace", None, within_margin) == "cleared: back on pace (2 of 3 mastered)"
    )
    assert (
        kinds(
            rules.flags_due(
                facts(pacing=(guide(True, False, False, False),)), Thresholds(behind_pace_margin=2)
            )
        )
        == []
    )


def test_inactive_after_five_school_days_while_work_remains():
    working = competency(10, "6.RP.A.2", state="ready", lesson=LESSON)
    idle = facts(working, last_activity_on=date(2027, 3, 8))  # Mon -> Mon: 5 school days
    spec = only(rules.flags_due(idle), "inactive")
    assert spec.reason == "no activity for 5 school days (last on 8 Mar)"
    assert spec.suggestion == (
        "Check in with the student; next up: 6.RP.A.2, re-watch “Ratios with tape diagrams” (https://example.org/ratios)"
    )
    assert rules.flags_due(facts(working, last_activity_on=date(2027, 3, 9))) == []
    done = facts(replace(working, state="mastered"), last_activity_on=date(2027, 3, 1))
    assert rules.flags_due(done) == []  # no work remains
    never = facts(working, last_activity_on=None, active_since=date(2027, 3, 1))
    assert only(rules.flags_due(never), "inactive").reason == "no activity yet: 10 school days since 1 Mar"
    resumed = facts(working, last_activity_on=TODAY)
    assert rules.flags_due(resumed) == []
    assert rules.clearance_note("inactive", None, resumed) == "cleared: activity resumed on 15 Mar"


def test_regressed_from_a_level_drop_until_the_level_recovers():
    dropped = competency(
        10, "6.RP.A.2", state="in_progress", score=D("2.4"), level_points=D(2), lesson=LESSON
    )
    drop = LevelDrop(10, D(3), D(2))
    spec = only(rules.flags_due(facts(dropped, level_drops=(drop,))), "regressed")
    assert spec.reason == "the mastery level for 6.RP.A.2 dropped from 3 to 2 (no longer mastered)"
    assert spec.suggestion == (
        "Re-watch “Ratios with tape diagrams” (https://example.org/ratios); retake the mastery check"
    )
    assert spec.evidence == {"competency": "6.RP.A.2", "from_level": "3", "to_level": "2"}
    # Without a new drop, an open regressed flag stays while the level is below where it was.
    assert kinds(rules.flags_due(facts(dropped, open_regressions={10: D(3)}))) == [("regressed", 10)]
    recovered = facts(replace(dropped, state="mastered", level_points=D(3)), open_regressions={10: D(3)})
    assert rules.flags_due(recovered) == []
    assert (
        rules.clearance_note("regressed", 10, recovered) == "cleared: the level for 6.RP.A.2 recovered to 3"
    )
    rise = LevelDrop(10, D(2), D(3))
    assert rules.flags_due(facts(replace(dropped, level_points=D(3)), level_drops=(rise,))) == []


def test_a_roll_up_drop_on_an_inner_node_is_not_a_regression():
    # A unit's level is the mean of its children's: a first low score on a new child lowers it, but the
    # flag belongs on the child whose evidence changed, not on the unit.
    unit = competency(30, "6.RP.A", state="in_progress", score=D("2.5"), level_points=D(2), is_leaf=False)
    assert rules.flags_due(facts(unit, level_drops=(LevelDrop(30, D(3), D(2)),))) == []


def test_predicted_miss_at_the_students_own_rate():
    started = competency(20, "6.RP.A.1", state="mastered", first_activity_on=date(2027, 1, 4))
    # 1 target mastered in 10 weeks: 0.1 a week; 3 targets to go by 1 Apr take 30 weeks.
    slow = facts(started, pacing=(guide(True, False, False, False),))
    spec = only(rules.flags_due(slow), "predicted_miss")
    assert spec.competency_id == 23
    assert spec.reason == (
        "at 0.1 competencies a week (1 mastered since 4 Jan), 6.RP.A.4 due 1 Apr would be reached around 11 Oct"
    )
    # Three targets mastered in 6 weeks (one a fortnight); one to go by 1 Apr, reached 29 Mar: on track.
    quick = facts(
        replace(started, first_activity_on=date(2027, 2, 1)), pacing=(guide(True, True, True, False),)
    )
    assert rules.flags_due(quick) == []
    assert rules.clearance_note("predicted_miss", 23, quick) == "cleared: back on track for 6.RP.A.4"


def test_predicted_miss_with_nothing_mastered_and_not_before_a_week():
    started = competency(20, "6.RP.A.1", state="in_progress", first_activity_on=date(2027, 3, 1))
    spec = only(
        rules.flags_due(facts(started, pacing=(guide(False, False, False, False),))), "predicted_miss"
    )
    assert (
        spec.reason
        == "has mastered none of Math 6A's pacing targets since starting on 1 Mar; 6.RP.A.4 is due 1 Apr"
    )
    fresh = replace(started, first_activity_on=date(2027, 3, 10))
    assert rules.flags_due(facts(fresh, pacing=(guide(True, True, True, False),))) == []


def test_flags_due_gives_one_flag_per_kind_and_competency():
    stuck = competency(
        10,
        "6.RP.A.2",
        state="in_progress",
        first_activity_on=date(2027, 3, 1),
        failed_check_dates=(TODAY, TODAY),
    )
    specs = rules.flags_due(
        facts(stuck, last_activity_on=date(2027, 3, 1), pacing=(guide(False, False, False, False),))
    )
    assert kinds(specs) == [
        ("behind_pace", None),
        ("inactive", None),
        ("predicted_miss", 23),
        ("stuck", 10),
    ]
