"""The teacher's dashboard pages and the student's path through the Django test client: who sees what,
exact content, flag actions in place (htmx) and without JavaScript, the CSV export and flat queries."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from assessments.models import Assessment
from progress.models import InterventionFlag
from roster.models import Enrollment
from tests.factories import (
    AssessmentFactory,
    CompetencyFactory,
    EnrollmentFactory,
    LearningResourceFactory,
    PrerequisiteFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)
from tests.progress.flag_helpers import classroom, mastery

pytestmark = pytest.mark.django_db

Status = InterventionFlag.Status


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def stuck_flag(student, competency, **fields) -> InterventionFlag:
    return InterventionFlag.objects.create(
        student=student,
        competency=competency,
        kind="stuck",
        reason="Failed the mastery check twice",
        suggestion="Re-watch the tape diagram lesson",
        opened_at=fields.pop("opened_at", timezone.now()),
        **fields,
    )


def section_url(room) -> str:
    return reverse("progress:section", args=[room.section.pk])


def action_url(flag, action) -> str:
    return reverse("progress:flag-action", args=[flag.pk, action])


def text(response) -> str:
    """The page's visible words, one space between them."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


def page_heatmap(response) -> list[list[str]]:
    """The heatmap table as the page shows it: the header (a competency's code with its pacing mark
    in brackets), each student's name, cell texts and mastered count, then the class's row."""
    content = response.content.decode()
    table = content[content.index('<table class="table table-sm table-bordered heatmap') :]
    table = table[: table.index("</table>")]
    head = table[table.index("<thead>") : table.index("</thead>")]
    header = []
    for cell in re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", head, flags=re.S):
        label = html.unescape(re.search(r'<span class="hm-head"[^>]*>([^<]*)</span>', cell).group(1))
        mark = re.search(r'<span class="hm-pace-badge hm-pace-mark">([^<]*)</span>', cell)
        header.append(f"{label} ({mark.group(1)})" if mark else label)
    rows = []
    for row in re.findall(r"<tr data-student=\"\d+\">(.*?)</tr>", table, flags=re.S):
        name = re.search(r'class="hm-name">([^<]*)</a>', row).group(1).strip()
        cells = re.findall(r'<span class="hm-text">([^<]*)</span>', row)
        rows.append([html.unescape(name), *(html.unescape(cell) for cell in cells)])
    foot = table[table.index("<tfoot>") : table.index("</tfoot>")]
    footer = [html.unescape(cell) for cell in re.findall(r'<span class="hm-foot">([^<]*)</span>', foot)]
    return [header, *rows, footer]


# --- home redirects ---------------------------------------------------------------------------------


def test_home_sends_each_role_to_its_page():
    room = classroom(1)
    assert client_for(room.teacher).get("/")["Location"] == reverse("progress:teacher-home")
    assert client_for(room.students[0]).get("/")["Location"] == reverse("progress:path")
    staff = StaffFactory(is_staff=True)
    try:  # district staff go to their overview page where the deployment has one, else to admin
        staff_home = reverse("staff:overview")
    except NoReverseMatch:
        staff_home = reverse("admin:index")
    assert client_for(staff).get("/")["Location"] == staff_home


# --- teacher home -----------------------------------------------------------------------------------


def test_teacher_home_lists_sections_with_open_flag_counts_and_open_flags():
    room = classroom(2, names=[("Ana", "Ruiz"), ("Ben", "Ode")])
    ana, ben = room.students
    stuck_flag(ana, room.competencies[0])
    stuck_flag(ben, room.competencies[1], status=Status.ACKNOWLEDGED)
    other = classroom(1)
    stuck_flag(other.students[0], other.competencies[0])

    response = client_for(room.teacher).get(reverse("progress:teacher-home"))

    assert response.status_code == 200
    words = text(response)
    assert "Math 6A" in words
    assert "2 students" in words
    assert "1 open flag" in words
    assert (
        "Stuck Ana Ruiz · 6.RP.A.1 Failed the mastery check twice Next: Re-watch the tape diagram lesson"
        in words
    )
    assert "Ben Ode" not in words  # acknowledged: not open any more
    assert f'href="{section_url(room)}"' in response.content.decode()
    assert section_url(other) not in response.content.decode()
    student_url = reverse("progress:student", args=[room.section.pk, ana.pk])
    assert f'<a class="fw-semibold" href="{student_url}">Ana Ruiz</a>' in response.content.decode()


def test_teacher_pages_are_for_teachers_only():
    room = classroom(1)
    student_client = client_for(room.students[0])
    assert student_client.get(reverse("progress:teacher-home")).status_code == 404
    assert student_client.get(section_url(room)).status_code == 404
    assert client_for(room.teacher).get(reverse("progress:path")).status_code == 404
    assert Client().get(reverse("progress:teacher-home")).status_code == 302  # to the login page


# --- the section page -------------------------------------------------------------------------------


def test_section_page_shows_heatmap_flags_and_groups():
    room = classroom(3, names=[("Ana", "Ruiz"), ("Ben", "Ode"), ("Cy", "Lee")])
    ana, ben, cy = room.students
    first, second = room.competencies[:2]
    mastery(ben, first, state="mastered", score="3.50", level_points="3", level_name="Mastery")
    mastery(ben, second, state="in_progress", score="2", level_points="2", level_name="Near")
    mastery(ana, first, state="ready")
    flag = stuck_flag(ana, first)
    stuck_flag(cy, first)
    stuck_flag(ben, second, status=Status.RESOLVED)

    response = client_for(room.teacher).get(section_url(room))

    assert response.status_code == 200
    # Without a stored row a cell shows the derived state (sparse storage, ``progress.grid``): these
    # competencies have no prerequisites, so ready.
    assert page_heatmap(response) == [
        ["Student", "6.RP.A.1", "6.RP.A.2", "6.RP.A.3", "6.RP.A.4", "Mastered"],
        ["Cy Lee", "R", "R", "R", "R", "0 of 4"],
        ["Ben Ode", "M 3.5", "IP 2", "R", "R", "1 of 4"],
        ["Ana Ruiz", "R", "R", "R", "R", "0 of 4"],
        ["Class mastered", "33%", "0%", "0%", "0%", ""],
    ]
    content = response.content.decode()
    assert 'class="hm-cell hm-mastered" title="6.RP.A.1: Mastered; score 3.5; level Mastery"' in content
    assert 'class="hm-cell hm-level-2" title="6.RP.A.2: In progress; score 2; level Near"' in content
    assert 'class="hm-cell hm-ready" title="6.RP.A.1: Ready"' in content
    student_url = reverse("progress:student", args=[room.section.pk, ana.pk])
    assert f'<a href="{student_url}" class="hm-name">Ana Ruiz</a>' in content
    words = text(response)
    for legend in ("M Mastered", "IP In progress", "R Ready", "L Locked"):
        assert legend in words
    # The queue: the two flags that are not resolved, with their actions.
    assert content.count('class="list-group-item flag-row') == 2
    assert f'id="flag-{flag.pk}"' in content
    assert f'hx-post="{action_url(flag, "resolve")}"' in content
    assert f'action="{action_url(flag, "snooze")}"' in content
    assert f'<label class="form-label small mb-0" for="note-{flag.pk}">Note</label>' in content
    assert "Why: Failed the mastery check twice Next step: Re-watch the tape diagram lesson" in words
    # Groups: Ana and Cy are both stuck on 6.RP.A.1.
    assert (
        "Stuck 6.RP.A.1 : Ana Ruiz, Cy Lee 2 students are stuck on 6.RP.A.1 (Ana Ruiz and Cy Lee): "
        "reteach it as a small group"
    ) in words
    assert f'href="{reverse("progress:section-csv", args=[room.section.pk])}"' in content


def test_csv_has_exactly_the_cells_the_page_shows():
    room = classroom(3, names=[("Ana", "Ruiz"), ("Ben", "Ode"), ("Cy", "Lee, Jr.")])
    ana, ben, cy = room.students
    mastery(ben, room.competencies[0], state="mastered", score="3.50", level_points="3", level_name="Mastery")
    mastery(cy, room.competencies[2], state="in_progress", score="1.25", level_points="1", level_name="Begin")
    mastery(ana, room.competencies[1], state="ready")
    client = client_for(room.teacher)

    page = client.get(section_url(room))
    export = client.get(reverse("progress:section-csv", args=[room.section.pk]))

    assert export.status_code == 200
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    assert export["Content-Disposition"] == f'attachment; filename="section-{room.section.pk}-heatmap.csv"'
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows == page_heatmap(page)
    assert rows[1:] == [  # no prerequisites: a cell without a stored row is ready
        ["Cy Lee, Jr.", "R", "R", "IP 1.25", "R", "0 of 4"],
        ["Ben Ode", "M 3.5", "R", "R", "R", "1 of 4"],
        ["Ana Ruiz", "R", "R", "R", "R", "0 of 4"],
        ["Class mastered", "33%", "0%", "0%", "0%", ""],
    ]


def test_another_teachers_section_is_404():
    room = classroom(1)
    stranger = TeacherFactory(district=room.section.school.district)
    client = client_for(stranger)
    assert client.get(section_url(room)).status_code == 404
    assert client.get(reverse("progress:section-csv", args=[room.section.pk])).status_code == 404
    assert client.get(reverse("progress:section", args=[999_999])).status_code == 404


@pytest.fixture
def two_classes():
    """A teacher with a class of 3 and a class of 30, every student with mastery rows and a flag."""
    small = classroom(3)
    teacher = small.teacher
    large = classroom(30)
    EnrollmentFactory(section=large.section, user=teacher, role=Enrollment.Role.TEACHER)
    for room in (small, large):
        for student in room.students:
            for competency in room.competencies[:2]:
                mastery(student, competency, state="ready")
            stuck_flag(student, room.competencies[0], status=Status.ACKNOWLEDGED, resolved_by=teacher)
    return teacher, small, large


# session, user; section + guide + answers to grade + scale levels; competencies + target dates, students
# with their mastery rows, flags (the heatmap's flag counts and the groups come from the same rows), and
# progress.grid.blank_states's two for the cells without a stored row (competencies, prerequisites)
SECTION_PAGE_QUERIES = 8


@pytest.mark.parametrize("size", ["small", "large"])
def test_section_page_query_count_is_flat(django_assert_num_queries, two_classes, size):
    teacher, small, large = two_classes
    room = small if size == "small" else large
    client = client_for(teacher)
    with django_assert_num_queries(SECTION_PAGE_QUERIES):
        response = client.get(section_url(room))
    assert response.status_code == 200
    assert response.content.decode().count('class="list-group-item flag-row') == len(room.students)


@pytest.mark.parametrize("size", ["small", "large"])
def test_csv_and_home_query_counts_are_flat(django_assert_num_queries, two_classes, size):
    teacher, small, large = two_classes
    room = small if size == "small" else large
    client = client_for(teacher)
    # session, user, section + guide + scale levels, competencies + target dates, students with their
    # mastery rows, blank_states's two
    with django_assert_num_queries(7):
        assert client.get(reverse("progress:section-csv", args=[room.section.pk])).status_code == 200
    if size == "large":
        EnrollmentFactory(section=classroom(12).section, user=teacher, role=Enrollment.Role.TEACHER)
    with django_assert_num_queries(6):  # session, user, sections, open flags, enrollments, to grade
        assert client.get(reverse("progress:teacher-home")).status_code == 200


def test_section_board_reads_the_same_heatmap_and_groups_as_the_api(two_classes):
    """The section page reads everything once (``section_board``): the same heatmap as the API's
    ``section_heatmap``, the same groups as ``section_groups``, with and without a pacing guide."""
    from progress import dashboard_selectors
    from progress.groups import section_groups

    teacher, small, _ = two_classes
    ana = small.students[0]
    mastery(
        ana, small.competencies[3], state="mastered", score="3.25", level_points="3", level_name="Mastery"
    )
    stuck_flag(small.students[1], small.competencies[1])
    for with_guide in (True, False):
        if not with_guide:
            small.section.pacing_guide.delete()
        section = dashboard_selectors.access_section(user=teacher, section_id=small.section.pk)
        board = dashboard_selectors.section_board(section=section)
        api = dashboard_selectors.section_heatmap(section=section)
        assert board["heatmap"]["competencies"] == api["competencies"]
        assert board["heatmap"]["units"] == api["units"]
        assert [
            (student["id"], student["name"], student["open_flags"], student["cells"])
            for student in board["heatmap"]["students"]
        ] == [
            (
                student["id"],
                student["name"],
                student["open_flags"],
                [
                    (cell["state"], cell["level"], cell["level_name"], cell["score"])
                    for cell in student["cells"]
                ],
            )
            for student in api["students"]
        ]
        assert board["groups"] == section_groups(section=section)
        assert board["scale"] == dashboard_selectors.section_scale_and_pacing(section=section)


def test_section_page_without_a_pacing_guide(django_assert_num_queries, two_classes):
    """Without a pacing guide the heatmap shows the competencies the students have mastery rows for,
    by code; eight queries (no scale, no targets; the competencies of the rows' frameworks, whose
    blank rows may be ready, and ``progress.grid.blank_states``'s two)."""
    teacher, small, _ = two_classes
    small.section.pacing_guide.delete()
    mastery(small.students[0], small.competencies[2], state="in_progress", score="1.5")
    client = client_for(teacher)
    # session, user, section + answers to grade, students with their rows, the frameworks' competencies,
    # flags, blank_states's competencies and prerequisites
    with django_assert_num_queries(8):
        response = client.get(section_url(small))
    assert response.status_code == 200
    table = page_heatmap(response)
    assert table[0] == ["Student", "6.RP.A.1", "6.RP.A.2", "6.RP.A.3", "Mastered"]
    assert table[-1] == ["Class mastered", "0%", "0%", "0%", ""]
    export = client.get(reverse("progress:section-csv", args=[small.section.pk]))
    assert list(csv.reader(io.StringIO(export.content.decode()))) == table


def test_the_queue_rows_are_the_flag_row_template(rf):
    """The section page writes its flag queue in Python (``views.flag_rows_html``); the htmx actions
    answer with ``progress/_flag_row.html``. Both write the same markup, whatever the flag's status."""
    from django.template.loader import render_to_string

    from progress.views import _tomorrow, flag_rows_html

    room = classroom(2, names=[("Ana", "O'Neil <b>"), ("Ben", "Ode")])
    ana, ben = room.students
    flags = [
        stuck_flag(ana, room.competencies[0]),
        stuck_flag(
            ben,
            room.competencies[1],
            status=Status.ACKNOWLEDGED,
            resolved_by=room.teacher,
            resolution_note="Seen it",
        ),
        stuck_flag(
            ben,
            room.competencies[2],
            status=Status.SNOOZED,
            resolved_by=room.teacher,
            snoozed_until=timezone.localdate() + timedelta(days=3),
        ),
        stuck_flag(ana, None, status=Status.RESOLVED, resolved_by=room.teacher, resolution_note="Done"),
        stuck_flag(ana, room.competencies[3], status=Status.RESOLVED),
    ]
    InterventionFlag.objects.filter(pk=flags[0].pk).update(reason='Failed <twice> & "again"')
    flags = [
        InterventionFlag.objects.select_related("student", "competency", "resolved_by").get(pk=flag.pk)
        for flag in flags
    ]
    next_url = "/teach/sections/1/?sort=-name&order=code"
    tomorrow = _tomorrow()
    for error in (None, "Choose a date to snooze until."):
        for flag in flags:
            expected = render_to_string(
                "progress/_flag_row.html",
                {
                    "flag": flag,
                    "error": error,
                    "next_url": next_url,
                    "tomorrow": tomorrow,
                    "csrf_token": "TOKEN",
                },
            )
            assert (
                flag_rows_html([flag], next_url=next_url, tomorrow=tomorrow, csrf_token="TOKEN", error=error)
                == expected
            )


# --- flag actions -----------------------------------------------------------------------------------


def test_resolve_in_place_with_htmx_returns_the_row_and_records_who_and_note():
    room = classroom(1, names=[("Ana", "Ruiz")])
    flag = stuck_flag(room.students[0], room.competencies[0])

    response = client_for(room.teacher).post(
        action_url(flag, "resolve"),
        {"note": "Retaught at lunch", "next": section_url(room)},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert content.startswith(f'<li class="list-group-item flag-row flag-resolved" id="flag-{flag.pk}"')
    assert "<html" not in content
    teacher_name = room.teacher.get_full_name() or room.teacher.username
    assert f"Resolved by {teacher_name}: Retaught at lunch" in text(response)
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_by, flag.resolution_note) == (
        Status.RESOLVED,
        room.teacher,
        "Retaught at lunch",
    )
    assert flag.resolved_at is not None


def test_acknowledge_without_javascript_redirects_back():
    room = classroom(1)
    flag = stuck_flag(room.students[0], room.competencies[0])

    response = client_for(room.teacher).post(
        action_url(flag, "acknowledge"), {"note": "Seen", "next": section_url(room)}
    )

    assert response.status_code == 302
    assert response["Location"] == section_url(room)
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_by, flag.resolution_note) == (
        Status.ACKNOWLEDGED,
        room.teacher,
        "Seen",
    )


def test_snooze_with_htmx_and_without():
    room = classroom(2)
    first = stuck_flag(room.students[0], room.competencies[0])
    second = stuck_flag(room.students[1], room.competencies[0])
    until = timezone.localdate() + timedelta(days=7)
    client = client_for(room.teacher)

    response = client.post(action_url(first, "snooze"), {"until": until.isoformat()}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f"Status: Snoozed until {until:%-d %b %Y}" in text(response)
    first.refresh_from_db()
    assert (first.status, first.snoozed_until, first.resolved_by) == (Status.SNOOZED, until, room.teacher)

    response = client.post(
        action_url(second, "snooze"), {"until": until.isoformat(), "next": "https://evil.example/"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("progress:teacher-home")  # no open redirect
    second.refresh_from_db()
    assert second.status == Status.SNOOZED


def test_snooze_refusals_are_shown_and_change_nothing():
    room = classroom(1)
    flag = stuck_flag(room.students[0], room.competencies[0])
    client = client_for(room.teacher)

    response = client.post(
        action_url(flag, "snooze"), {"until": timezone.localdate().isoformat()}, HTTP_HX_REQUEST="true"
    )
    assert "Snooze until a date after today." in text(response)
    response = client.post(action_url(flag, "snooze"), {"until": "not a date"}, follow=True)
    assert "Choose a date to snooze until." in text(response)
    flag.refresh_from_db()
    assert flag.status == Status.OPEN


def test_flag_actions_are_scoped_to_the_teachers_students():
    room = classroom(1)
    flag = stuck_flag(room.students[0], room.competencies[0])
    stranger = TeacherFactory(district=room.section.school.district)
    assert client_for(stranger).post(action_url(flag, "resolve"), {"note": "x"}).status_code == 404
    assert client_for(room.teacher).post(action_url(flag, "delete")).status_code == 404
    assert client_for(room.teacher).get(action_url(flag, "resolve")).status_code == 405
    flag.refresh_from_db()
    assert flag.status == Status.OPEN


# --- the student's path -----------------------------------------------------------------------------


def test_student_path_shows_what_to_do_next_first_and_every_competency():
    room = classroom(1)
    student = room.students[0]
    first, second, _, fourth = room.competencies
    mastery(student, first, state="mastered", score="3.50", level_points="3", level_name="Mastery")
    mastery(student, fourth, state="locked")
    mastery(student, second, state="in_progress", score="2", level_points="2", level_name="Near")
    practice = AssessmentFactory(competency=second, title="Rates practice", kind=Assessment.Kind.PRACTICE)
    check = AssessmentFactory(competency=second, title="Rates check")
    LearningResourceFactory(competency=second, title="Unit rates video", url="https://example.org/rates")

    response = client_for(student).get(reverse("progress:path"))

    assert response.status_code == 200
    words = text(response)
    assert words.index("What to do next") < words.index("All competencies, in order")
    assert "What to do next 6.RP.A.2 In progress Ratios 2 The lesson Unit rates video · 6 min" in words
    content = response.content.decode()
    next_card = content[content.index('id="next"') : content.index('id="pace-heading"')]
    assert f'href="{reverse("assessments:assessment", args=[practice.pk])}">Rates practice</a>' in next_card
    assert f'href="{reverse("assessments:assessment", args=[check.pk])}">Rates check</a>' in next_card
    assert "1 of 4 mastered." in words
    assert '<progress class="pace-bar w-100" id="pace-bar" value="1" max="4"' in content
    assert "6.RP.A.1 Ratios 1 Mastered · Score 3.5 · Level Mastery" in words
    assert "6.RP.A.2 Ratios 2 In progress · Score 2 · Level Near" in words
    assert "6.RP.A.3 Ratios 3 Ready" in words
    assert "6.RP.A.4 Ratios 4 Locked" in words


def test_student_path_gives_the_reason_when_an_assessment_cannot_start():
    room = classroom(1)
    student = room.students[0]
    first, _, _, fourth = room.competencies
    PrerequisiteFactory(competency=first, prerequisite=fourth)
    mastery(student, first, state="in_progress")
    check = AssessmentFactory(competency=first, title="Ratios check")

    response = client_for(student).get(reverse("progress:path"))

    content = response.content.decode()
    assert reverse("assessments:assessment", args=[check.pk]) not in content
    assert "Ratios check : Master 6.RP.A.4 first: Ratios 4." in text(response)
    assert "6.RP.A.4 Ratios 4 Ready" in text(response)


def test_student_path_is_for_students_only_and_only_their_own():
    room = classroom(2)
    ana, ben = room.students
    mastery(ana, room.competencies[0], state="mastered", score="4", level_points="4", level_name="Exceeds")
    response = client_for(ben).get(reverse("progress:path"))
    assert "0 of 4 mastered." in text(response)
    assert client_for(StaffFactory()).get(reverse("progress:path")).status_code == 404
    lonely = StudentFactory(district=room.section.school.district)
    assert "Your path is empty" in text(client_for(lonely).get(reverse("progress:path")))


@pytest.mark.parametrize("size", [3, 30])
def test_student_path_query_count_is_flat(django_assert_num_queries, size):
    """3 or 30 more competencies on the path, each with a lesson and a mastery check."""
    room = classroom(1)
    student = room.students[0]
    framework = room.competencies[0].framework
    for index in range(size):
        competency = CompetencyFactory(framework=framework, code=f"7.EE.{index}", position=10 + index)
        AssessmentFactory(competency=competency, title=f"Check {index}")
        LearningResourceFactory(competency=competency)
        mastery(student, competency, state="ready")
    client = client_for(student)
    # session, user, the path's 7, the blank rows' framework and prerequisite edges, the pacing targets due
    with django_assert_num_queries(12):
        response = client.get(reverse("progress:path"))
    assert response.status_code == 200
    assert f"0 of {4 + size} mastered." in text(response)
