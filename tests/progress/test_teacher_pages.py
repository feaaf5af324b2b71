"""The teacher's pages finished for issue #5: the heatmap sorted, filtered, coloured by the scale and
marked with the pacing guide's position (and the CSV that matches it), the per-student page (timelines,
the calculation, attempts with their forms, flags, override and unlock with a note), who may see them,
and query counts flat between a class of 5 and a class of 40."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from competencies.models import CalculationMethod, MasteryLevel, PacingGuide, PacingTarget
from progress import charts, services
from progress.models import CompetencyMastery, Evidence, InterventionFlag
from roster.models import Enrollment
from tests.assessments.test_grading_pages import Check
from tests.factories import (
    CompetencyFactory,
    EnrollmentFactory,
    FrameworkFactory,
    PrerequisiteFactory,
    SectionFactory,
    StudentFactory,
    TeacherFactory,
)
from tests.progress.flag_helpers import check, classroom, mastery
from tests.progress.test_views import client_for, page_heatmap, text

pytestmark = pytest.mark.django_db

State = CompetencyMastery.State


class UnitRoom:
    """Math 6B: two units (6.RP Ratios, 6.EE Expressions) of two competencies each; 6.RP.1 was due
    ten days ago, 6.RP.2 yesterday, the 6.EE unit (so both its competencies) in twenty days.
    Ana Ruiz has mastered two, Ben Ode one, Cy Lee none. No prerequisites: a competency without a
    stored row is ready (sparse storage, ``progress.grid``)."""

    def __init__(self, extra_students: int = 0) -> None:
        self.section = SectionFactory(title="Math 6B")
        district = self.section.school.district
        self.framework = FrameworkFactory(district=district, calculation_method=CalculationMethod.LATEST)
        self.ratios = CompetencyFactory(framework=self.framework, code="6.RP", statement="Ratios", position=1)
        self.expressions = CompetencyFactory(
            framework=self.framework, code="6.EE", statement="Expressions", position=2
        )
        self.rp1, self.rp2 = (
            CompetencyFactory(
                framework=self.framework,
                parent=self.ratios,
                code=f"6.RP.{n}",
                statement=f"Ratio {n}",
                position=n,
            )
            for n in (1, 2)
        )
        self.ee1, self.ee2 = (
            CompetencyFactory(
                framework=self.framework,
                parent=self.expressions,
                code=f"6.EE.{n}",
                statement=f"Expression {n}",
                position=n,
            )
            for n in (1, 2)
        )
        self.today = timezone.localdate()
        guide = PacingGuide.objects.create(section=self.section, framework=self.framework)
        for competency, days in [(self.rp1, -10), (self.rp2, -1), (self.expressions, 20)]:
            PacingTarget.objects.create(
                guide=guide, competency=competency, target_date=self.today + timedelta(days=days)
            )
        self.teacher = TeacherFactory(district=district, first_name="Tess", last_name="Hart")
        EnrollmentFactory(section=self.section, user=self.teacher, role=Enrollment.Role.TEACHER)
        self.students = []
        for first, last in [("Ana", "Ruiz"), ("Ben", "Ode"), ("Cy", "Lee")] + [
            (f"Extra{index:02d}", "Zed") for index in range(extra_students)
        ]:
            student = StudentFactory(district=district, first_name=first, last_name=last)
            EnrollmentFactory(section=self.section, user=student, role=Enrollment.Role.STUDENT)
            self.students.append(student)
        self.ana, self.ben, self.cy = self.students[:3]
        mastery(self.ana, self.rp1, state="mastered", score="4", level_points="4", level_name="Exceeds")
        mastery(self.ana, self.rp2, state="mastered", score="3", level_points="3", level_name="Mastery")
        mastery(self.ana, self.ee1, state="in_progress", score="2", level_points="2", level_name="Near")
        mastery(self.ben, self.rp1, state="mastered", score="3", level_points="3", level_name="Mastery")
        mastery(self.cy, self.ee1, state="ready")

    def url(self, **query) -> str:
        base = reverse("progress:section", args=[self.section.pk])
        return base + ("?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else "")

    def csv_url(self, **query) -> str:
        base = reverse("progress:section-csv", args=[self.section.pk])
        return base + ("?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else "")

    def student_url(self, student) -> str:
        return reverse("progress:student", args=[self.section.pk, student.pk])

    def override_url(self, student) -> str:
        return reverse("progress:student-override", args=[self.section.pk, student.pk])


@pytest.fixture
def room() -> UnitRoom:
    return UnitRoom()


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# --- the heatmap: sort, filter, pacing, colours -------------------------------------------------------


def test_default_heatmap_in_pacing_order_with_the_expected_position_marked(room):
    response = client_for(room.teacher).get(room.url())

    assert response.status_code == 200
    assert page_heatmap(response) == [
        ["Student", "6.RP.1", "6.RP.2 (expected by today)", "6.EE.1", "6.EE.2", "Mastered"],
        ["Cy Lee", "R", "R", "R", "R", "0 of 4"],
        ["Ben Ode", "M 3", "R", "R", "R", "1 of 4"],
        ["Ana Ruiz", "M 4", "M 3", "IP 2", "R", "2 of 4"],
        ["Class mastered", "67%", "33%", "0%", "0%", ""],
    ]
    yesterday = room.today - timedelta(days=1)
    later = room.today + timedelta(days=20)
    assert (
        f"Pace By today ({room.today:%-d %b}) the pacing guide expects the class to have mastered up to "
        f"6.RP.2 (due {yesterday:%-d %b %Y}); next due: 6.EE.1 on {later:%-d %b %Y}."
    ) in text(response)
    content = response.content.decode()
    assert f'<th scope="col" class="hm-code hm-pace-col" data-competency="{room.rp2.pk}">' in content
    assert content.count('class="hm-cell hm-mastered hm-pace-col"') == 1  # Ana's 6.RP.2
    # the unit filter offers the two units
    assert f'<option value="{room.ratios.pk}">6.RP Ratios</option>' in content
    assert f'<option value="{room.expressions.pk}">6.EE Expressions</option>' in content


QUERIES = {
    "sort=-name": [
        ["Student", "6.RP.1", "6.RP.2 (expected by today)", "6.EE.1", "6.EE.2", "Mastered"],
        ["Ana Ruiz", "M 4", "M 3", "IP 2", "R", "2 of 4"],
        ["Ben Ode", "M 3", "R", "R", "R", "1 of 4"],
        ["Cy Lee", "R", "R", "R", "R", "0 of 4"],
        ["Class mastered", "67%", "33%", "0%", "0%", ""],
    ],
    "sort=-mastered": [
        ["Student", "6.RP.1", "6.RP.2 (expected by today)", "6.EE.1", "6.EE.2", "Mastered"],
        ["Ana Ruiz", "M 4", "M 3", "IP 2", "R", "2 of 4"],
        ["Ben Ode", "M 3", "R", "R", "R", "1 of 4"],
        ["Cy Lee", "R", "R", "R", "R", "0 of 4"],
        ["Class mastered", "67%", "33%", "0%", "0%", ""],
    ],
    "sort=mastered&order=-code": [
        ["Student", "6.RP.2 (expected by today)", "6.RP.1", "6.EE.2", "6.EE.1", "Mastered"],
        ["Cy Lee", "R", "R", "R", "R", "0 of 4"],
        ["Ben Ode", "R", "M 3", "R", "R", "1 of 4"],
        ["Ana Ruiz", "M 3", "M 4", "R", "IP 2", "2 of 4"],
        ["Class mastered", "33%", "67%", "0%", "0%", ""],
    ],
    "order=code": [
        ["Student", "6.EE.1", "6.EE.2", "6.RP.1", "6.RP.2 (expected by today)", "Mastered"],
        ["Cy Lee", "R", "R", "R", "R", "0 of 4"],
        ["Ben Ode", "R", "R", "M 3", "R", "1 of 4"],
        ["Ana Ruiz", "IP 2", "R", "M 4", "M 3", "2 of 4"],
        ["Class mastered", "0%", "0%", "67%", "33%", ""],
    ],
    "order=mastery": [
        ["Student", "6.EE.1", "6.EE.2", "6.RP.2 (expected by today)", "6.RP.1", "Mastered"],
        ["Cy Lee", "R", "R", "R", "R", "0 of 4"],
        ["Ben Ode", "R", "R", "R", "M 3", "1 of 4"],
        ["Ana Ruiz", "IP 2", "R", "M 3", "M 4", "2 of 4"],
        ["Class mastered", "0%", "0%", "33%", "67%", ""],
    ],
    "order=-mastery&sort=-name": [
        ["Student", "6.RP.1", "6.RP.2 (expected by today)", "6.EE.1", "6.EE.2", "Mastered"],
        ["Ana Ruiz", "M 4", "M 3", "IP 2", "R", "2 of 4"],
        ["Ben Ode", "M 3", "R", "R", "R", "1 of 4"],
        ["Cy Lee", "R", "R", "R", "R", "0 of 4"],
        ["Class mastered", "67%", "33%", "0%", "0%", ""],
    ],
    "unit=EE": [
        ["Student", "6.EE.1", "6.EE.2", "Mastered"],
        ["Cy Lee", "R", "R", "0 of 2"],
        ["Ben Ode", "R", "R", "0 of 2"],
        ["Ana Ruiz", "IP 2", "R", "0 of 2"],
        ["Class mastered", "0%", "0%", ""],
    ],
    "unit=RP&sort=-mastered&order=-code": [
        ["Student", "6.RP.2 (expected by today)", "6.RP.1", "Mastered"],
        ["Ana Ruiz", "M 3", "M 4", "2 of 2"],
        ["Ben Ode", "R", "M 3", "1 of 2"],
        ["Cy Lee", "R", "R", "0 of 2"],
        ["Class mastered", "33%", "67%", ""],
    ],
}


@pytest.mark.parametrize("query", list(QUERIES))
def test_sort_and_filter_by_get_parameters_and_the_csv_matches_the_page(room, query):
    query_string = query.replace("=RP", f"={room.ratios.pk}").replace("=EE", f"={room.expressions.pk}")
    client = client_for(room.teacher)
    base = reverse("progress:section", args=[room.section.pk])
    csv_base = reverse("progress:section-csv", args=[room.section.pk])

    page = client.get(f"{base}?{query_string}")
    export = client.get(f"{csv_base}?{query_string}")

    assert page.status_code == 200
    assert page_heatmap(page) == QUERIES[query]
    assert export.status_code == 200
    assert csv_rows(export) == QUERIES[query]
    # the page's CSV link carries the same query
    assert f'href="{csv_base}?{query_string.replace("&", "&amp;")}" id="heatmap-csv"' in page.content.decode()


def test_a_unit_filter_names_the_unit_and_keeps_the_pacing_note(room):
    response = client_for(room.teacher).get(room.url(unit=room.expressions.pk))
    words = text(response)
    assert "Mastery by student and competency: 6.EE Download CSV" in words
    assert "expects the class to have mastered up to 6.RP.2" in words
    assert (
        f'<option value="{room.expressions.pk}" selected>6.EE Expressions</option>'
        in response.content.decode()
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sort=bogus", "sort: Select a valid choice. bogus is not one of the available choices."),
        ("order=size", "order: Select a valid choice. size is not one of the available choices."),
        ("unit=999999", "unit: Select a valid choice. 999999 is not one of the available choices."),
        ("unit=abc", "unit: Select a valid choice. abc is not one of the available choices."),
    ],
)
def test_a_bad_sort_or_filter_is_a_400_naming_the_parameter(room, query, message):
    client = client_for(room.teacher)
    for url in (room.url(), room.csv_url()):
        response = client.get(f"{url}?{query}")
        assert response.status_code == 400
        assert response.content.decode() == f"The heatmap cannot be shown this way: {message}"


def test_a_unit_of_another_framework_is_refused(room):
    other = UnitRoom()
    response = client_for(room.teacher).get(room.url(unit=other.ratios.pk))
    assert response.status_code == 400


def test_default_scale_colours_keep_the_fixed_classes(room):
    response = client_for(room.teacher).get(room.url())
    content = response.content.decode()
    assert reverse("progress:section-scale-css", args=[room.section.pk]) not in content
    assert 'class="hm-cell hm-mastered" title="6.RP.1: Mastered; score 4; level Exceeds"' in content
    assert 'class="hm-cell hm-level-2" title="6.EE.1: In progress; score 2; level Near"' in content


def test_the_scales_own_colours_colour_the_cells_with_text_that_contrasts(room):
    colours = {"Exceeds": "#0b5394", "Mastery": "#93c47d", "Near": "#ffd966", "Beginning": "#990000"}
    levels = {level.name: level for level in MasteryLevel.objects.filter(scale=room.framework.mastery_scale)}
    for name, colour in colours.items():
        MasteryLevel.objects.filter(pk=levels[name].pk).update(color=colour)
    client = client_for(room.teacher)

    response = client.get(room.url())
    stylesheet = client.get(reverse("progress:section-scale-css", args=[room.section.pk]))

    content = response.content.decode()
    css_url = reverse("progress:section-scale-css", args=[room.section.pk])
    assert f'<link rel="stylesheet" href="{css_url}">' in content
    exceeds, mastery_level, near = levels["Exceeds"].pk, levels["Mastery"].pk, levels["Near"].pk
    assert f'class="hm-cell hm-lv-{exceeds}" title="6.RP.1: Mastered; score 4; level Exceeds"' in content
    assert f'class="hm-cell hm-lv-{mastery_level} hm-pace-col" title="6.RP.2: Mastered' in content
    assert f'class="hm-cell hm-lv-{near}" title="6.EE.1: In progress; score 2; level Near"' in content
    assert 'class="hm-cell hm-ready" title="6.EE.1: Ready"' in content  # no level: the state's class
    assert "Exceeds (4)" in text(response) and "Mastery (3), mastery" in text(response)
    assert stylesheet.status_code == 200
    assert stylesheet["Content-Type"] == "text/css; charset=utf-8"
    lines = stylesheet.content.decode().splitlines()
    assert lines[1:] == [
        f".hm-lv-{exceeds} {{ --bs-table-bg: #0b5394; --bs-table-color: #ffffff; "
        "background-color: #0b5394; color: #ffffff; }",
        f".hm-lv-{mastery_level} {{ --bs-table-bg: #93c47d; --bs-table-color: #000000; "
        "background-color: #93c47d; color: #000000; }",
        f".hm-lv-{near} {{ --bs-table-bg: #ffd966; --bs-table-color: #000000; "
        "background-color: #ffd966; color: #000000; }",
        f".hm-lv-{levels['Beginning'].pk} {{ --bs-table-bg: #990000; --bs-table-color: #ffffff; "
        "background-color: #990000; color: #ffffff; }",
    ]


def test_a_colour_that_is_not_hex_is_left_out_of_the_stylesheet(room):
    level = MasteryLevel.objects.get(scale=room.framework.mastery_scale, name="Near")
    MasteryLevel.objects.filter(pk=level.pk).update(color="red;}x")
    MasteryLevel.objects.filter(scale=room.framework.mastery_scale, name="Exceeds").update(color="#0b5394")
    stylesheet = client_for(room.teacher).get(reverse("progress:section-scale-css", args=[room.section.pk]))
    assert f".hm-lv-{level.pk}" not in stylesheet.content.decode()
    assert "red" not in stylesheet.content.decode()


def test_nothing_due_yet_names_the_first_target(room):
    PacingTarget.objects.filter(guide__section=room.section).update(
        target_date=room.today + timedelta(days=3)
    )
    response = client_for(room.teacher).get(room.url())
    due = room.today + timedelta(days=3)
    assert f"Nothing is due yet by the pacing guide; next due: 6.RP.1 on {due:%-d %b %Y}." in text(response)
    assert "expected by today" not in response.content.decode()


# --- the student page ---------------------------------------------------------------------------------


def evidence_history(room: UnitRoom) -> None:
    """Cy on 6.RP.1: 2 (not met) on 1 Mar, 2.5 (not met) on 8 Mar, 4 (met) on 15 Mar; recomputed."""
    for day, score, met in [(1, "2", False), (8, "2.5", False), (15, "4", True)]:
        check(room.cy, room.rp1, datetime(2026, 3, day, 10, tzinfo=UTC), score=score, met=met)
    services.mastery_recompute(student_id=room.cy.pk)


def test_student_page_shows_the_timeline_and_the_calculation(room):
    evidence_history(room)
    stored = CompetencyMastery.objects.get(student=room.cy, competency=room.rp1)
    assert stored.state == State.MASTERED

    response = client_for(room.teacher).get(room.student_url(room.cy))

    assert response.status_code == 200
    content = response.content.decode()
    words = text(response)
    assert '<h1 class="h2 mb-4">Cy Lee</h1>' in content
    assert f"6.RP.1 Ratio 1 Mastered · Exceeds How it was calculated: {stored.explanation}" in words
    chart = content[content.index(f'<figure class="timeline-figure mb-2" id="timeline-{room.rp1.pk}">') :]
    chart = chart[: chart.index("</figure>")]
    assert f'aria-labelledby="timeline-{room.rp1.pk}-title timeline-{room.rp1.pk}-desc"' in chart
    assert f'<title id="timeline-{room.rp1.pk}-title">6.RP.1: mastery over time</title>' in chart
    assert (
        f'<desc id="timeline-{room.rp1.pk}-desc">3 pieces of evidence, 1 at or above the mastery level, '
        "from 1 Mar 2026 to 15 Mar 2026. Mastery score now: 4. Mastery level: 3.</desc>"
    ) in chart
    assert chart.count('class="tl-point tl-not-met"') == 2
    assert chart.count('class="tl-point tl-met"') == 1
    assert 'class="tl-threshold"' in chart and 'stroke-dasharray="6 4"' in chart
    assert (
        len(re.search(r'<polyline class="tl-mastery" fill="none" points="([^"]*)"', chart).group(1).split())
        == 3
    )
    # the hidden table: every point with the mastery score after it (latest: the newest score)
    rows = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", chart
    )
    assert rows == [
        ("1 Mar 2026", "Mastery check", "2", "no", "2"),
        ("8 Mar 2026", "Mastery check", "2.5", "no", "2.5"),
        ("15 Mar 2026", "Mastery check", "4", "yes", "4"),
    ]
    assert '<table class="visually-hidden">' in chart
    # no chart where there is no evidence
    assert f'id="timeline-{room.rp2.pk}"' not in content
    assert "style=" not in content


def test_the_mastery_line_follows_the_competencys_own_method(room):
    room.rp1.calculation_method = CalculationMethod.AVERAGE
    room.rp1.save()
    evidence_history(room)
    response = client_for(room.teacher).get(room.student_url(room.cy))
    chart = response.content.decode()
    chart = chart[chart.index(f'id="timeline-{room.rp1.pk}"') :]
    rows = re.findall(
        r"<tr><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td></tr>", chart
    )
    assert rows == ["2", "2.25", "2.83"]  # the running average
    stored = CompetencyMastery.objects.get(student=room.cy, competency=room.rp1)
    assert (stored.score, stored.state) == (Decimal("2.83"), State.IN_PROGRESS)


def test_student_page_lists_attempts_with_their_forms_and_the_flag_history(room):
    check_ = Check(_classroom_view(room))
    waiting = check_.submit(room.cy)
    InterventionFlag.objects.create(
        student=room.cy,
        competency=room.rp1,
        kind="stuck",
        status=InterventionFlag.Status.RESOLVED,
        reason="Failed the mastery check twice",
        suggestion="Reteach",
        opened_at=timezone.now() - timedelta(days=3),
        resolved_at=timezone.now(),
        resolved_by=room.teacher,
        resolution_note="Retaught at lunch",
    )
    InterventionFlag.objects.create(
        student=room.cy, kind="inactive", reason="No activity for 6 school days", suggestion="Check in",
        opened_at=timezone.now(),
    )  # fmt: skip

    response = client_for(room.teacher).get(room.student_url(room.cy))

    words = text(response)
    assert "Unit rates check , attempt 1 · Submitted, awaiting rubric grading" in words
    assert "The form drawn for attempt 1 # Item Score" in words
    assert f"Pick four (Single choice, item {check_.single.pk}) 1 of 1" in words
    assert f"(Extended text (rubric), item {check_.extended.pk}) awaiting grading" in words
    assert "Inactive Status: Open" in words
    assert "Stuck 6.RP.1 Status: Resolved" in words
    assert "Failed the mastery check twice Note by Tess Hart: Retaught at lunch" in words
    assert waiting.attempt.student == room.cy


def _classroom_view(room: UnitRoom):
    """The bits of a flag_helpers Classroom that ``Check`` reads, for the unit room."""

    class View:
        section = room.section
        competencies = [room.rp1]

    return View


def test_override_needs_a_note_and_changes_nothing_without_one(room):
    client = client_for(room.teacher)
    before = CompetencyMastery.objects.filter(student=room.cy).count()

    response = client.post(
        room.override_url(room.cy), {"competency": room.rp2.pk, "action": "mastered", "note": "   "}
    )

    assert response.status_code == 400
    assert "This field is required." in text(response)
    assert not Evidence.objects.filter(student=room.cy, source=Evidence.Source.OVERRIDE).exists()
    assert CompetencyMastery.objects.filter(student=room.cy).count() == before


def test_override_marks_mastered_with_the_note_and_its_author(room):
    client = client_for(room.teacher)
    response = client.post(
        room.override_url(room.cy),
        {"competency": room.rp2.pk, "action": "mastered", "note": "Showed me at the board"},
    )

    assert response.status_code == 302
    assert response["Location"] == f"{room.student_url(room.cy)}#competency-{room.rp2.pk}"
    row = CompetencyMastery.objects.get(student=room.cy, competency=room.rp2)
    assert (row.state, row.is_overridden) == (State.MASTERED, True)
    evidence = Evidence.objects.get(student=room.cy, source=Evidence.Source.OVERRIDE)
    assert (evidence.competency, evidence.author, evidence.note) == (
        room.rp2,
        room.teacher,
        "mastered: Showed me at the board",
    )
    page = client.get(response["Location"])
    assert "6.RP.2 marked mastered for Cy Lee." in text(page)
    assert "overridden by a teacher" in text(page)


def test_unlock_makes_the_competency_ready(room):
    response = client_for(room.teacher).post(
        room.override_url(room.cy), {"competency": room.ee2.pk, "action": "unlocked", "note": "Ready for it"}
    )
    assert response.status_code == 302
    row = CompetencyMastery.objects.get(student=room.cy, competency=room.ee2)
    assert (row.is_unlocked_by_teacher, row.is_overridden) == (True, False)
    assert row.state == State.READY


def test_override_of_a_competency_outside_the_section_is_refused(room):
    other = UnitRoom()
    response = client_for(room.teacher).post(
        room.override_url(room.cy), {"competency": other.rp1.pk, "action": "mastered", "note": "x"}
    )
    assert response.status_code == 400
    assert f"Select a valid choice. {other.rp1.pk} is not one of the available choices." in text(response)
    assert not CompetencyMastery.objects.filter(student=room.cy, competency=other.rp1).exists()


def test_every_teacher_page_and_action_is_404_for_anyone_else(room):
    stranger = TeacherFactory(district=room.section.school.district)
    outsider = StudentFactory(district=room.section.school.district)
    other_section = SectionFactory(school=room.section.school)
    EnrollmentFactory(section=other_section, user=outsider, role=Enrollment.Role.STUDENT)
    gets = [
        room.url(),
        room.csv_url(),
        reverse("progress:section-scale-css", args=[room.section.pk]),
        room.student_url(room.cy),
    ]
    post = (room.override_url(room.cy), {"competency": room.rp2.pk, "action": "mastered", "note": "x"})
    for user in (stranger, room.cy):
        client = client_for(user)
        for url in gets:
            assert client.get(url).status_code == 404, (user, url)
        assert client.post(*post).status_code == 404
    # the teacher, but a student who is not in this section
    own = client_for(room.teacher)
    assert own.get(room.student_url(outsider)).status_code == 404
    assert own.post(room.override_url(outsider), post[1]).status_code == 404
    Enrollment.objects.filter(user=room.ben, section=room.section).update(is_active=False)
    assert own.get(room.student_url(room.ben)).status_code == 404
    assert not CompetencyMastery.objects.filter(competency=room.rp2, is_overridden=True).exists()


# --- query counts, flat between a class of 5 and a class of 40 -----------------------------------------


def _busy_room(size: int) -> UnitRoom:
    """A unit room of ``size`` students, each with mastery rows and a flag; Cy with evidence and an
    attempt."""
    room = UnitRoom(extra_students=size - 3)
    for student in room.students[3:]:
        mastery(student, room.rp1, state="ready")
        InterventionFlag.objects.create(
            student=student,
            competency=room.rp1,
            kind="stuck",
            reason="r",
            suggestion="s",
            opened_at=timezone.now(),
        )
    evidence_history(room)
    Check(_classroom_view(room)).submit(room.cy)
    return room


# session, user; section + guide + answers to grade + scale levels; competencies + target dates, students
# with their mastery rows, flags (the heatmap's flag counts and the groups come from the same rows), and
# progress.grid.blank_states's two for the cells without a stored row (competencies, prerequisites)
SECTION_QUERIES = 8
# session, user, section + guide, student, competencies, mastery rows, evidence, scale levels, BKT
# parameters, attempts, their items, their responses, flags; for the competencies without a stored row
# (progress.grid) blank_states's two (competencies, prerequisites) and blank_values's three (children,
# levels, BKT parameters)
STUDENT_QUERIES = 18


@pytest.mark.parametrize("size", [5, 40])
def test_teacher_pages_query_counts_are_flat(django_assert_num_queries, size):
    room = _busy_room(size)
    client = client_for(room.teacher)
    query = f"sort=-mastered&order=-mastery&unit={room.ratios.pk}"
    with django_assert_num_queries(SECTION_QUERIES):
        response = client.get(f"{room.url()}?{query}")
    assert response.status_code == 200
    assert len(page_heatmap(response)) == size + 2
    # session, user, section + guide + scale levels, competencies + target dates, students with their
    # mastery rows, blank_states's two
    with django_assert_num_queries(7):
        assert client.get(f"{room.csv_url()}?{query}").status_code == 200
    with django_assert_num_queries(6):  # session, user, sections, open flags, enrollments, to grade
        assert client.get(reverse("progress:teacher-home")).status_code == 200
    with django_assert_num_queries(STUDENT_QUERIES):
        response = client.get(room.student_url(room.cy))
    assert response.status_code == 200
    with django_assert_num_queries(STUDENT_QUERIES):
        assert client.get(room.student_url(room.students[-1])).status_code == 200
    with django_assert_num_queries(5):  # session, user, section + guide, scale levels, pacing targets
        assert client.get(reverse("progress:section-scale-css", args=[room.section.pk])).status_code == 200


def test_the_classroom_fixture_pages_work_without_units():
    """The flag_helpers classroom: leaves at the top of the tree, so no unit filter."""
    plain = classroom(2)
    response = client_for(plain.teacher).get(reverse("progress:section", args=[plain.section.pk]))
    assert response.status_code == 200
    assert 'name="unit"' not in response.content.decode()
    student_page = client_for(plain.teacher).get(
        reverse("progress:student", args=[plain.section.pk, plain.students[0].pk])
    )
    assert student_page.status_code == 200
    # no stored row: what a blank row says (progress.grid), ready without prerequisites
    assert "6.RP.A.1 Ratios 1 Ready How it was calculated: no evidence yet Override" in text(student_page)


# --- sparse mastery storage: cells without a stored row -----------------------------------------------


def test_a_student_with_no_stored_rows_sees_the_derived_states(django_assert_num_queries):
    """Mastery is stored sparsely (``progress.grid``): a student with no row at all sees ready where a
    competency has no prerequisite, locked where its prerequisite is not mastered; the heatmap, the
    CSV, the groups and the student page all say so, and the page still reads eight queries."""
    room = UnitRoom(extra_students=1)
    PrerequisiteFactory(competency=room.rp2, prerequisite=room.rp1)
    newcomer = room.students[3]
    assert not CompetencyMastery.objects.filter(student=newcomer).exists()
    client = client_for(room.teacher)

    with django_assert_num_queries(SECTION_QUERIES):
        page = client.get(room.url())

    table = [
        ["Student", "6.RP.1", "6.RP.2 (expected by today)", "6.EE.1", "6.EE.2", "Mastered"],
        ["Cy Lee", "R", "L", "R", "R", "0 of 4"],
        ["Ben Ode", "M 3", "R", "R", "R", "1 of 4"],  # 6.RP.1 mastered: 6.RP.2 ready
        ["Ana Ruiz", "M 4", "M 3", "IP 2", "R", "2 of 4"],
        ["Extra00 Zed", "R", "L", "R", "R", "0 of 4"],
        ["Class mastered", "50%", "25%", "0%", "0%", ""],
    ]
    assert page_heatmap(page) == table
    assert csv_rows(client.get(room.csv_url())) == table
    content = page.content.decode()
    assert (
        '<td class="hm-cell hm-locked hm-pace-col" title="6.RP.2: Locked"><span class="hm-text">L</span>'
        '<span class="visually-hidden"> (6.RP.2: Locked)</span></td>'
    ) in content
    assert '<td class="hm-cell hm-ready" title="6.RP.1: Ready">' in content
    words = text(page)
    assert (
        "2 students are ready for 6.RP.1 and have not started it (Cy Lee and Extra00 Zed): "
        "launch the lesson together"
    ) in words
    assert "ready for 6.RP.2" not in words  # Ben alone: no group

    student_page = text(client.get(room.student_url(newcomer)))
    assert "6.RP.1 Ratio 1 Ready How it was calculated: no evidence yet" in student_page
    assert "6.RP.2 Ratio 2 Locked How it was calculated: no evidence yet" in student_page


# --- the flag queues: the newest first, then a link to all -----------------------------------------------


def _open_flags(room: UnitRoom, count: int) -> list[InterventionFlag]:
    """An open stuck flag for each of the room's first ``count`` students, one minute apart, newest
    last (one open flag of a kind per student and competency)."""
    start = timezone.now() - timedelta(days=1)
    return InterventionFlag.objects.bulk_create(
        InterventionFlag(
            student=room.students[index],
            competency=room.rp1,
            kind="stuck",
            reason=f"reason {index}",
            suggestion="s",
            opened_at=start + timedelta(minutes=index),
        )
        for index in range(count)
    )


def test_the_section_queue_lists_the_newest_fifty_and_links_to_all(django_assert_num_queries):
    room = UnitRoom(extra_students=52)
    flags = _open_flags(room, 55)
    client = client_for(room.teacher)
    newest_first = [flag.pk for flag in reversed(flags)]

    with django_assert_num_queries(SECTION_QUERIES):
        page = client.get(room.url(sort="-name"))

    content = page.content.decode()
    assert [
        int(pk) for pk in re.findall(r'<li class="list-group-item flag-row[^"]*" id="flag-(\d+)"', content)
    ] == (newest_first[:50])
    assert "Showing the 50 newest of 55 flags to act on. Show all 55 flags" in text(page)
    assert '<a href="?sort=-name&amp;flags=all#flag-queue">Show all 55 flags</a>' in content
    # every flag still counts in its student's badge
    assert content.count('<span class="badge text-bg-warning">1 flag</span>') == 55

    with django_assert_num_queries(SECTION_QUERIES):
        everything = client.get(room.url(sort="-name", flags="all"))

    content = everything.content.decode()
    assert [
        int(pk) for pk in re.findall(r'<li class="list-group-item flag-row[^"]*" id="flag-(\d+)"', content)
    ] == (newest_first)
    assert 'id="flag-page"' not in content
    # the CSV link and the sort form keep the heatmap's query, not the queue's
    csv_url = reverse("progress:section-csv", args=[room.section.pk])
    assert f'href="{csv_url}?sort=-name" id="heatmap-csv"' in content
    # an action from the full queue comes back to it
    next_url = room.url(sort="-name", flags="all").replace("&", "&amp;")
    assert f'<input type="hidden" name="next" value="{next_url}">' in content


def test_the_home_page_lists_the_newest_fifty_open_flags_and_links_to_all(django_assert_num_queries):
    room = UnitRoom(extra_students=49)
    flags = _open_flags(room, 52)
    client = client_for(room.teacher)
    home = reverse("progress:teacher-home")

    with django_assert_num_queries(6):  # session, user, sections, open flags, enrollments, to grade
        page = client.get(home)

    content = page.content.decode()
    newest_first = [flag.pk for flag in reversed(flags)]
    assert [int(pk) for pk in re.findall(r'<li class="mb-3" data-flag="(\d+)">', content)] == newest_first[
        :50
    ]
    assert "52 open flags" in text(page)  # the section's badge counts them all
    assert "Showing the 50 newest of 52 open flags. Show all 52 open flags" in text(page)
    assert '<a href="?flags=all#open-flags">Show all 52 open flags</a>' in content
    newest = flags[-1]
    student_url = reverse("progress:student", args=[room.section.pk, newest.student_id])
    assert (
        f'<a class="fw-semibold" href="{student_url}">{newest.student.get_full_name()}</a> · 6.RP.1'
    ) in content

    everything = client.get(f"{home}?flags=all")
    content = everything.content.decode()
    assert [int(pk) for pk in re.findall(r'<li class="mb-3" data-flag="(\d+)">', content)] == newest_first
    assert 'id="flag-page"' not in content


# --- the chart on its own -----------------------------------------------------------------------------


def test_timeline_escapes_text_and_draws_a_single_point_in_the_middle():
    point = charts.TimelinePoint(
        when=datetime(2026, 5, 4, 9, tzinfo=UTC),
        score=Decimal("1.5"),
        is_met=False,
        label="Practice <b>",
        mastery_after=Decimal("1.5"),
    )
    markup = charts.mastery_timeline(
        chart_id="t1",
        title="<script>alert(1)</script>",
        points=[point],
        threshold=Decimal(3),
        threshold_label="Mastery level",
        y_max=Decimal(4),
        gridlines=[charts.Gridline(Decimal(3), "Mastery & more")],
    )
    assert "<script>" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    assert "Mastery &amp; more" in markup
    assert "Practice &lt;b&gt;" in markup
    # one point: centred (LEFT 96 + plot width 448 / 2), at 1.5 of 4 on a 164 px tall plot from y 16
    assert '<circle class="tl-point tl-not-met" cx="320.0" cy="118.5" r="5">' in markup
    assert '<circle class="tl-mastery-dot" cx="320.0" cy="118.5" r="3"/>' in markup
    assert "1 piece of evidence, 0 at or above the mastery level, from 4 May 2026 to 4 May 2026." in markup
    assert "style=" not in markup


def test_timeline_with_no_score_yet_says_so():
    point = charts.TimelinePoint(
        when=datetime(2026, 5, 4, 9, tzinfo=UTC), score=Decimal(3), is_met=True, label="Mastery check",
        mastery_after=None,
    )  # fmt: skip
    markup = charts.mastery_timeline(
        chart_id="t2", title="n times", points=[point], threshold=Decimal(3), threshold_label="Mastery level",
        y_max=Decimal(4),
    )  # fmt: skip
    assert "Mastery score now: none yet." in markup
    assert "tl-mastery" not in markup
    assert "<td>no score yet</td>" in markup
