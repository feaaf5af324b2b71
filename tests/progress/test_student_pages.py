"""The student's path, lesson page and sign-in through the Django test client: what the page says,
scoping (someone else's lesson is 404), the gate's reason in words, "mark as watched" recorded once,
the batch start checks worded as ``attempt_start`` refuses, and flat query counts."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assessments import services as assessment_services
from assessments.models import Assessment, Attempt
from competencies.models import LearningResource, PacingTarget
from progress import selectors
from progress.models import ResourceView
from tests.factories import (
    AssessmentFactory,
    AttemptFactory,
    CompetencyFactory,
    LearningResourceFactory,
    PrerequisiteFactory,
    StaffFactory,
)
from tests.factories.roster import PASSWORD
from tests.progress.flag_helpers import classroom, mastery

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    """The page's visible words, one space between them."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


def lesson_url(competency) -> str:
    return reverse("learn:lesson", args=[competency.pk])


def watched_url(competency, resource) -> str:
    return reverse("learn:watched", args=[competency.pk, resource.pk])


# --- the path ---------------------------------------------------------------------------------------


def test_path_has_one_next_button_to_the_lesson_and_links_every_competency_to_its_lesson():
    room = classroom(1)
    student = room.students[0]
    first, second, third, fourth = room.competencies
    mastery(student, first, state="mastered", score="3.5", level_points="3", level_name="Mastery")
    mastery(student, second, state="in_progress")
    mastery(student, fourth, state="locked")
    guide = room.section.pacing_guide
    today = timezone.localdate()
    PacingTarget.objects.filter(guide=guide, competency__in=[first, second]).update(
        target_date=today - timedelta(days=1)
    )
    PacingTarget.objects.filter(guide=guide, competency=third).update(target_date=today)

    response = client_for(student).get(reverse("progress:path"))

    content = response.content.decode()
    assert response.status_code == 200
    assert content.count('class="btn btn-primary') == 1
    assert (
        f'<a class="btn btn-primary btn-lg" id="next-button" href="{lesson_url(second)}">Continue 6.RP.A.2'
        in content
    )
    for competency in room.competencies:
        assert f'<a href="{lesson_url(competency)}">{competency.statement}</a>' in content
    words = text(response)
    assert "1 of 4 mastered. By today" in words
    assert "the pacing guide expects 3." in words
    assert '<progress class="pace-bar w-100" id="pace-bar" value="1" max="4"' in content
    assert '<progress class="pace-bar pace-expected w-100" id="pace-expected" value="3" max="4"' in content
    assert "Mastered: 1" in words and "Expected by today: 3" in words
    assert "Behind pace: 2 more to master to catch up." in words
    assert "6.RP.A.2 Ratios 2 In progress · Due by today" in words
    assert "6.RP.A.1 Ratios 1 Mastered · Score 3.5 · Level Mastery" in words  # mastered: not "due"
    assert "6.RP.A.4 Ratios 4 Locked" in words
    assert 'class="status state-locked"><svg class="icon"' in content  # icon plus word


def test_path_says_start_for_a_ready_competency():
    room = classroom(1)
    student = room.students[0]
    response = client_for(student).get(reverse("progress:path"))
    assert f'href="{lesson_url(room.competencies[0])}">Start 6.RP.A.1' in response.content.decode()
    assert "0 of 4 mastered." in text(response) and "On pace." in text(response)


# --- the lesson page ----------------------------------------------------------------------------------


def test_lesson_shows_the_video_practice_and_the_open_mastery_check():
    room = classroom(1)
    student = room.students[0]
    competency = room.competencies[0]
    video = LearningResource.objects.get(competency=competency)
    video.url = "https://youtu.be/dQw4w9WgXcQ"
    video.save()
    reading = LearningResourceFactory(
        competency=competency,
        kind=LearningResource.Kind.READING,
        title="Ratio tables explained",
        url="https://example.org/tables",
        description="Read pages 4 to 6.",
        position=5,
    )
    practice = AssessmentFactory(
        competency=competency, kind=Assessment.Kind.PRACTICE, title="Ratios practice"
    )
    check = AssessmentFactory(competency=competency, title="Ratios mastery check", time_limit_minutes=20)
    AssessmentFactory(competency=competency, title="Draft check", status=Assessment.Status.DRAFT)
    AssessmentFactory(competency=room.competencies[1], title="Another competency's check")

    response = client_for(student).get(lesson_url(competency))

    assert response.status_code == 200
    content = response.content.decode()
    assert (
        '<iframe src="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ" title="Video: Ratios with tape diagrams"'
        in content
    )
    assert content.count("<iframe") == 1  # the reading is a link, not a frame
    assert f'<a href="{reading.url}" rel="noopener" target="_blank">Read “Ratio tables explained”' in content
    words = text(response)
    assert "6.RP.A.1 Ratios 1 Ready" in words
    assert "Read pages 4 to 6." in words
    assert words.count("Mark as watched") == 1 and words.count("Mark as read") == 1
    assert words.index("Watch or read the lesson") < words.index("Practise") < words.index("Mastery check")
    assert f'<a href="{reverse("assessments:assessment", args=[practice.pk])}">Ratios practice</a>' in content
    assert f'<form method="post" action="{reverse("assessments:start", args=[check.pk])}"' in content
    assert "Ratios mastery check · 20 min Start" in words
    assert "Draft check" not in words and "Another competency's check" not in words


def test_lesson_shows_the_gate_reason_in_words_when_the_check_is_closed():
    room = classroom(1)
    student = room.students[0]
    first, _, _, fourth = room.competencies
    PrerequisiteFactory(competency=first, prerequisite=fourth)
    check = AssessmentFactory(competency=first, title="Ratios check")

    response = client_for(student).get(lesson_url(first))

    words = text(response)
    assert "Ratios 1 Locked" in words
    assert "Locked until you master: 6.RP.A.4 ." in words  # the code is a link to its lesson
    assert "Ratios check Not open yet: Master 6.RP.A.4 first: Ratios 4." in words
    assert reverse("assessments:start", args=[check.pk]) not in response.content.decode()
    assert f'<a href="{lesson_url(fourth)}">6.RP.A.4</a>' in response.content.decode()


def test_lesson_shows_attempts_used_up_in_the_words_of_attempt_start():
    room = classroom(1)
    student = room.students[0]
    competency = room.competencies[0]
    check = AssessmentFactory(competency=competency, title="Ratios check", max_attempts=1)
    AttemptFactory(
        assessment=check,
        student=student,
        number=1,
        status=Attempt.Status.COMPLETED,
        submitted_at=timezone.now(),
        is_passed=False,
    )
    words = text(client_for(student).get(lesson_url(competency)))
    assert "Ratios check Not open yet: All 1 attempts have been used." in words


def test_mark_as_watched_without_javascript_records_once_and_returns_to_the_lesson():
    room = classroom(1)
    student = room.students[0]
    competency = room.competencies[0]
    resource = LearningResource.objects.get(competency=competency)
    client = client_for(student)

    first = client.post(watched_url(competency, resource))
    second = client.post(watched_url(competency, resource))

    assert first.status_code == second.status_code == 302
    assert first["Location"] == f"{lesson_url(competency)}#resource-{resource.pk}"
    views = list(ResourceView.objects.filter(student=student))
    assert [view.resource_id for view in views] == [resource.pk]
    assert views[0].last_viewed_at >= views[0].first_viewed_at
    words = text(client.get(lesson_url(competency)))
    assert "Marked “Ratios with tape diagrams” as done." in words
    assert "Watched ·" in words and "Mark as watched again" in words


def test_mark_as_watched_with_htmx_answers_the_control_in_place():
    room = classroom(1)
    student = room.students[0]
    competency = room.competencies[0]
    resource = LearningResource.objects.get(competency=competency)

    response = client_for(student).post(watched_url(competency, resource), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    content = response.content.decode()
    assert content.lstrip().startswith('<div class="watched')  # the fragment, not a page
    assert "<html" not in content
    assert f'id="watched-{resource.pk}"' in content
    assert "Watched: recorded ·" in text(response)
    assert ResourceView.objects.filter(student=student, resource=resource).count() == 1


def test_lessons_are_scoped_to_the_students_own_path():
    room = classroom(1)
    student = room.students[0]
    elsewhere = classroom(1)  # another section, framework and district
    other_competency = elsewhere.competencies[0]
    other_resource = LearningResource.objects.get(competency=other_competency)
    own_competency = room.competencies[1]
    own_resource = LearningResource.objects.get(competency=room.competencies[0])
    client = client_for(student)

    assert client.get(lesson_url(other_competency)).status_code == 404
    assert client.get(reverse("learn:lesson", args=[999_999])).status_code == 404
    assert client.post(watched_url(other_competency, other_resource)).status_code == 404
    # a resource of another competency, even one on the path, through this competency's URL
    assert client.post(watched_url(own_competency, own_resource)).status_code == 404
    assert client.get(watched_url(room.competencies[0], own_resource)).status_code == 405
    assert client_for(room.teacher).get(lesson_url(own_competency)).status_code == 404
    assert client_for(StaffFactory()).get(lesson_url(own_competency)).status_code == 404
    assert ResourceView.objects.count() == 0
    room.section.enrollments.filter(user=student).update(is_active=False)
    assert client.get(lesson_url(own_competency)).status_code == 404


def test_signed_out_lesson_goes_to_sign_in():
    room = classroom(1)
    url = lesson_url(room.competencies[0])
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("size", [3, 30])
def test_lesson_query_count_is_flat(django_assert_num_queries, size):
    """3 or 30 resources, practices and mastery checks on one competency, each viewed or attempted."""
    room = classroom(1)
    student = room.students[0]
    competency = room.competencies[1]
    PrerequisiteFactory(competency=competency, prerequisite=room.competencies[0])
    for index in range(size):
        resource = LearningResourceFactory(competency=competency, title=f"Part {index}", position=index)
        ResourceView.objects.create(
            student=student, resource=resource, first_viewed_at=timezone.now(), last_viewed_at=timezone.now()
        )
        AssessmentFactory(competency=competency, kind=Assessment.Kind.PRACTICE, title=f"Practice {index}")
        check = AssessmentFactory(competency=competency, title=f"Check {index}")
        AttemptFactory(assessment=check, student=student, number=1)
    client = client_for(student)
    # session, user, the competency on the path, mastery row, resources, views, assessments,
    # missing prerequisites, attempts; no row stored (blank): its framework, prerequisite edges and
    # the prerequisites' stored states (``progress.grid``)
    with django_assert_num_queries(12):
        response = client.get(lesson_url(competency))
    assert response.status_code == 200
    assert text(response).count("Mark as watched again") == size
    words = text(response)
    assert words.count("Not open yet") == 0  # open attempts resume, whatever the gate
    assert words.count("Resume Your attempt is open.") == size


@pytest.mark.parametrize("size", [3, 30])
def test_path_query_count_is_flat_with_remediation_rules(django_assert_num_queries, size):
    """Failed checks with both remediation rules: the batch checks stay at a fixed number of queries."""
    room = classroom(1)
    student = room.students[0]
    framework = room.competencies[0].framework
    failed_at = timezone.now() - timedelta(days=2)
    for index in range(size):
        competency = CompetencyFactory(framework=framework, code=f"7.EE.{index}", position=10 + index)
        LearningResourceFactory(competency=competency)
        for remediation in (Assessment.Remediation.PASS_PRACTICE, Assessment.Remediation.VIEW_RESOURCES):
            check = AssessmentFactory(competency=competency, remediation=remediation)
            AttemptFactory(
                assessment=check,
                student=student,
                number=1,
                status=Attempt.Status.COMPLETED,
                submitted_at=failed_at,
                is_passed=False,
            )
    client = client_for(student)
    # session, user, frameworks, competencies, mastery rows, resources, assessments, missing
    # prerequisites, attempts, passed practices, views, the pacing targets due; the blank rows'
    # framework and prerequisite edges (``progress.grid``)
    with django_assert_num_queries(14):
        response = client.get(reverse("progress:path"))
    assert response.status_code == 200
    assert f"0 of {4 + size} mastered." in text(response)


# --- the batch start checks speak as attempt_start does ------------------------------------------------


def test_batch_start_checks_match_attempt_start_refusal_word_for_word():
    """Each refusal the path shows is the one ``attempt_start`` gives, for every rule."""
    room = classroom(1)
    student = room.students[0]
    first, second, third, fourth = room.competencies
    PrerequisiteFactory(competency=fourth, prerequisite=third)
    now = timezone.now()
    yesterday = now - timedelta(days=1)

    def failed(assessment, number=1, at=yesterday):
        return AttemptFactory(
            assessment=assessment,
            student=student,
            number=number,
            status=Attempt.Status.COMPLETED,
            submitted_at=at,
            is_passed=False,
        )

    draft = AssessmentFactory(competency=first, status=Assessment.Status.DRAFT)
    used_up = AssessmentFactory(competency=first, max_attempts=2)
    failed(used_up, 1)
    failed(used_up, 2)
    cooling = AssessmentFactory(competency=first, cooldown_hours=48)
    failed(cooling)
    practice_first = AssessmentFactory(competency=second, remediation=Assessment.Remediation.PASS_PRACTICE)
    failed(practice_first)
    practice_done = AssessmentFactory(competency=first, remediation=Assessment.Remediation.PASS_PRACTICE)
    failed(practice_done)
    practice = AssessmentFactory(competency=first, kind=Assessment.Kind.PRACTICE)
    AttemptFactory(
        assessment=practice,
        student=student,
        number=1,
        status=Attempt.Status.COMPLETED,
        submitted_at=now - timedelta(hours=1),
        is_passed=True,
    )
    rewatch = AssessmentFactory(competency=first, remediation=Assessment.Remediation.VIEW_RESOURCES)
    failed(rewatch)
    locked = AssessmentFactory(competency=fourth)
    expired = AssessmentFactory(competency=second, cooldown_hours=1)
    AttemptFactory(
        assessment=expired,
        student=student,
        number=1,
        started_at=now - timedelta(minutes=40),
        deadline=now - timedelta(minutes=10),
    )
    open_one = AssessmentFactory(competency=fourth)
    AttemptFactory(assessment=open_one, student=student, number=1)
    fine = AssessmentFactory(competency=third)
    assessments = [
        draft,
        used_up,
        cooling,
        practice_first,
        practice_done,
        rewatch,
        locked,
        expired,
        open_one,
        fine,
    ]

    checks = selectors.attempt_start_checks(student=student, assessments=assessments, now=now)
    batch = assessment_services.attempt_start_refusals(student=student, assessments=assessments, now=now)

    cooldown_end = (yesterday + timedelta(hours=48)).isoformat()
    expired_end = (now - timedelta(minutes=10) + timedelta(hours=1)).isoformat()
    expected = {
        draft.pk: "This assessment is not open.",
        used_up.pk: "All 2 attempts have been used.",
        cooling.pk: f"Cooldown: the next attempt opens at {cooldown_end}.",
        practice_first.pk: "Remediation not done: pass a practice on this competency before retaking.",
        practice_done.pk: None,
        rewatch.pk: "Remediation not done: review the lesson before retaking: “Ratios with tape diagrams”.",
        locked.pk: "Master 6.RP.A.3 first: Ratios 3.",
        expired.pk: f"Cooldown: the next attempt opens at {expired_end}.",
        open_one.pk: None,
        fine.pk: None,
    }
    assert {pk: check.reason for pk, check in checks.items()} == expected
    assert {pk: check.can_start for pk, check in checks.items()} == {
        pk: reason is None for pk, reason in expected.items()
    }
    # assessments' own rules only: no prerequisites, no view_resources remediation
    assert batch == {**expected, rewatch.pk: None, locked.pk: None}
    for assessment in assessments:
        if assessment in (expired, open_one):
            continue  # attempt_start itself submits or resumes these before asking
        previous = Attempt.objects.filter(assessment=assessment, student=student).order_by("-number").first()
        single = assessment_services.attempt_start_refusal(
            assessment=assessment, student=student, previous=previous, now=now
        )
        assert single == expected[assessment.pk], assessment


# --- signing in and the navigation ------------------------------------------------------------------


def test_sign_in_shows_the_error_and_keeps_the_username():
    room = classroom(1)
    student = room.students[0]
    response = Client().post(reverse("login"), {"username": student.username, "password": "wrong"})
    assert response.status_code == 200
    content = response.content.decode()
    assert '<div class="alert alert-danger" role="alert" id="login-errors">' in content
    assert "Please enter a correct username and password." in text(response)
    assert f'value="{student.username}"' in content
    assert 'aria-invalid="true"' in content


@pytest.mark.parametrize(
    ("role", "home"),
    [("student", "/path/"), ("teacher", "/teach/"), ("staff", "/staff/")],
)
def test_sign_in_lands_each_role_on_its_home(role, home):
    room = classroom(1)
    user = {"student": room.students[0], "teacher": room.teacher}.get(role) or StaffFactory()
    response = Client().post(reverse("login"), {"username": user.username, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1] == (home, 302)
    assert response.status_code == 200


def test_sign_in_honours_a_safe_next_and_ignores_an_unsafe_one():
    room = classroom(1)
    student = room.students[0]
    lesson = lesson_url(room.competencies[0])
    safe = Client().post(
        f"{reverse('login')}?next={lesson}",
        {"username": student.username, "password": PASSWORD, "next": lesson},
    )
    assert safe["Location"] == lesson
    unsafe = Client().post(
        reverse("login"),
        {"username": student.username, "password": PASSWORD, "next": "https://evil.example/path/"},
    )
    assert unsafe["Location"] == reverse("home")


def test_navigation_shows_the_roles_links_with_the_current_page_marked():
    room = classroom(1)
    student_page = client_for(room.students[0]).get(reverse("progress:path")).content.decode()
    assert '<a class="nav-link" href="/path/" aria-current="page">My path</a>' in student_page
    assert '<a class="nav-link" href="/results/">Results</a>' in student_page
    assert "My sections" not in student_page
    assert '<form method="post" action="/accounts/logout/"' in student_page
    teacher_page = client_for(room.teacher).get(reverse("progress:teacher-home")).content.decode()
    assert '<a class="nav-link" href="/teach/" aria-current="page">My sections</a>' in teacher_page
    assert "My path" not in teacher_page and "Results" not in teacher_page
    staff_page = client_for(StaffFactory()).get("/staff/").content.decode()
    assert '<a class="nav-link" href="/staff/" aria-current="page">Overview</a>' in staff_page
    assert '<a class="nav-link" href="/admin/">Admin</a>' in staff_page
    assert "My sections" not in staff_page and "My path" not in staff_page


def test_sign_out_is_a_post():
    room = classroom(1)
    client = client_for(room.students[0])
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("progress:path")).status_code == 302  # signed out: to the sign-in page
