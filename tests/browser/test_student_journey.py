"""A student's whole journey in a real browser: sign in, land on the path, open the lesson, mark it
watched, take the mastery check answering correctly, see the competency mastered and the next one
unlocked, then the results history. And the sign-in page sends each role to its home."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from assessments.models import Assessment, Attempt, ItemAlignment, ItemChoice
from competencies.models import CalculationMethod, Competency, LearningResource, PacingGuide, PacingTarget
from progress.models import CompetencyMastery, ResourceView
from roster.models import Enrollment, User
from tests.browser.conftest import assert_accessible, log_in, save_screenshot
from tests.factories import (
    AssessmentFactory,
    BlueprintRuleFactory,
    CompetencyFactory,
    DistrictFactory,
    EnrollmentFactory,
    FrameworkFactory,
    ItemFactory,
    LearningResourceFactory,
    PrerequisiteFactory,
    SchoolFactory,
    SectionFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)
from tests.factories.roster import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PLAYER = (
    "<!doctype html><html lang='en'><head><title>Lesson video</title></head><body><p>Video</p></body></html>"
)


@dataclass
class Journey:
    student: User
    teacher: User
    first: Competency
    second: Competency
    video: LearningResource
    check: Assessment


@pytest.fixture
def journey() -> Journey:
    """Math 7, period 2: two competencies in pacing order, the second needing the first. The first has
    a video lesson, a practice and a one-question mastery check; the second its own check."""
    district = DistrictFactory(name="Riverside Unified")
    school = SchoolFactory(district=district, name="Riverside Middle")
    section = SectionFactory(school=school, title="Math 7, period 2")
    framework = FrameworkFactory(
        district=district, title="Grade 7 Mathematics", calculation_method=CalculationMethod.LATEST
    )
    first = CompetencyFactory(
        framework=framework,
        code="7.RP.A.1",
        statement="Compute unit rates associated with ratios of fractions.",
        position=1,
    )
    second = CompetencyFactory(
        framework=framework,
        code="7.RP.A.2",
        statement="Recognize and represent proportional relationships between quantities.",
        position=2,
    )
    PrerequisiteFactory(prerequisite=first, competency=second)
    guide = PacingGuide.objects.create(section=section, framework=framework)
    for competency, day in ((first, "2026-09-15"), (second, "2026-10-15")):
        PacingTarget.objects.create(guide=guide, competency=competency, target_date=day)
    video = LearningResourceFactory(
        competency=first,
        title="Unit rates with fractions",
        url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        duration_minutes=7,
    )
    AssessmentFactory(
        district=district, competency=first, kind=Assessment.Kind.PRACTICE, title="Unit rates: practice"
    )
    item = ItemFactory(
        district=district,
        type="single_choice",
        stem="A recipe uses 2 cups of flour for 4 cakes. How much flour per cake?",
    )
    ItemChoice.objects.create(item=item, text="1/2 cup", is_correct=True, position=1)
    ItemChoice.objects.create(item=item, text="2 cups", position=2)
    ItemAlignment.objects.create(item=item, competency=first, points=item.max_points)
    check = AssessmentFactory(district=district, competency=first, title="Unit rates: mastery check")
    BlueprintRuleFactory(assessment=check, competency=first, items=[item], draw_count=1)
    AssessmentFactory(district=district, competency=second, title="Proportional relationships: mastery check")
    student = StudentFactory(district=district, username="maya", first_name="Maya", last_name="Lopez")
    EnrollmentFactory(section=section, user=student, role=Enrollment.Role.STUDENT)
    teacher = TeacherFactory(district=district, username="okafor", first_name="Sam", last_name="Okafor")
    EnrollmentFactory(section=section, user=teacher, role=Enrollment.Role.TEACHER)
    return Journey(student=student, teacher=teacher, first=first, second=second, video=video, check=check)


def nav(page):
    return page.get_by_role("navigation", name="Main")


def path_item(page, competency):
    return page.locator(f'#path li[data-competency="{competency.pk}"]')


def test_a_student_watches_the_lesson_masters_it_and_unlocks_the_next(page, journey):
    # the video player is another site: answer it locally, the school network may be offline
    page.route(
        re.compile(r"^https://www\.youtube-nocookie\.com/"),
        lambda route: route.fulfill(body=PLAYER, content_type="text/html"),
    )

    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_accessible(page, "login page")
    save_screenshot(page, "login")

    # a wrong password says so, and keeps the username
    page.get_by_label("Username").fill("maya")
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password.")
    expect(page.get_by_label("Username")).to_have_value("maya")
    assert_accessible(page, "login page with an error")

    log_in(page, "maya")
    expect(page).to_have_url(re.compile(r"/path/$"))

    # the path: what to do next first, with one clear button
    expect(page.get_by_role("heading", level=1)).to_have_text("My path")
    expect(nav(page).get_by_role("link", name="My path")).to_have_attribute("aria-current", "page")
    next_card = page.locator("#next")
    expect(next_card).to_contain_text("7.RP.A.1")
    expect(next_card).to_contain_text("Ready")
    expect(path_item(page, journey.second)).to_contain_text("Locked")
    expect(page.locator("#pace-bar")).to_have_attribute("value", "0")
    expect(page.locator("#pace-expected")).to_have_attribute("value", "2")
    expect(page.locator("#pace-status")).to_have_text(re.compile("Behind pace: 2 more to master"))
    assert_accessible(page, "path")
    save_screenshot(page, "student-path")
    page.get_by_role("link", name=re.compile(r"^Start 7\.RP\.A\.1")).click()

    # the lesson: the video, marked watched in place
    page.wait_for_url(re.compile(rf"/learn/{journey.first.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Compute unit rates")
    frame = page.locator("iframe")
    expect(frame).to_have_attribute("src", "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ")
    expect(frame).to_have_attribute("title", "Video: Unit rates with fractions")
    expect(page.get_by_role("link", name="Unit rates: practice")).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^Mark as watched\W+Unit rates with fractions$")).click()
    expect(page.locator(f"#watched-status-{journey.video.pk}")).to_contain_text("Watched: recorded")
    expect(page).to_have_url(re.compile(rf"/learn/{journey.first.pk}/$"))  # in place, no reload
    views = list(ResourceView.objects.filter(student=journey.student))
    assert [view.resource_id for view in views] == [journey.video.pk]
    assert_accessible(page, "lesson")
    save_screenshot(page, "lesson")

    # the mastery check is open: start it, answer correctly, submit
    page.get_by_role("button", name="Start Unit rates: mastery check").click()
    page.wait_for_url(re.compile(r"/attempts/\d+/$"))
    attempt = Attempt.objects.get(student=journey.student, assessment=journey.check)
    page.get_by_label("1/2 cup").check()
    expect(page.locator("#answered-count")).to_have_text("1")
    assert_accessible(page, "attempt page")
    page.get_by_role("button", name="Submit answers…").click()
    page.get_by_role("dialog", name="Submit your answers?").get_by_role("button", name="Submit now").click()
    page.wait_for_url(re.compile(rf"/attempts/{attempt.pk}/result/$"))
    expect(page.get_by_text("Passed: every competency met")).to_be_visible()
    assert_accessible(page, "result page")

    # back on the path: mastered, and the next competency unlocked
    nav(page).get_by_role("link", name="My path").click()
    page.wait_for_url(re.compile(r"/path/$"))
    expect(path_item(page, journey.first)).to_contain_text("Mastered")
    expect(path_item(page, journey.second)).to_contain_text("Ready")
    expect(page.locator("#next")).to_contain_text("7.RP.A.2")
    expect(page.locator("#pace-bar")).to_have_attribute("value", "1")
    assert_accessible(page, "path after mastering")
    assert (
        CompetencyMastery.objects.get(student=journey.student, competency=journey.first).state == "mastered"
    )

    # the results history
    nav(page).get_by_role("link", name="Results").click()
    page.wait_for_url(re.compile(r"/results/$"))
    expect(nav(page).get_by_role("link", name="Results")).to_have_attribute("aria-current", "page")
    row = page.locator(f'tr[data-attempt="{attempt.pk}"]')
    expect(row).to_contain_text("Unit rates: mastery check")
    expect(row).to_contain_text("1 of 1")
    expect(row).to_contain_text("7.RP.A.1: met")
    assert_accessible(page, "results")
    save_screenshot(page, "results")
    row.get_by_role("link", name=re.compile("View result")).click()
    page.wait_for_url(re.compile(rf"/attempts/{attempt.pk}/result/$"))

    # the next lesson now opens its check
    page.goto(f"/learn/{journey.second.pk}/")
    expect(page.get_by_role("button", name="Start Proportional relationships: mastery check")).to_be_visible()
    assert_accessible(page, "the next lesson")


@pytest.mark.parametrize(("role", "home"), [("teacher", "/teach/"), ("staff", "/staff/")])
def test_the_sign_in_page_sends_each_role_to_its_home(page, journey, role, home):
    user = (
        journey.teacher
        if role == "teacher"
        else StaffFactory(district=journey.student.district, username="dana")
    )
    log_in(page, user.username)
    expect(page).to_have_url(re.compile(rf"{home}$"))
    assert_accessible(page, f"{role} home")


def test_a_safe_next_is_honoured_after_sign_in(page, journey):
    page.goto(f"/learn/{journey.first.pk}/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))
    expect(page.locator("#login-next")).to_have_text("Sign in to see that page.")
    assert_accessible(page, "login page with next")
    page.get_by_label("Username").fill("maya")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/learn/{journey.first.pk}/$"))


def test_the_student_pages_fit_a_phone(phone_page, journey):
    page = phone_page
    page.route(
        re.compile(r"^https://www\.youtube-nocookie\.com/"),
        lambda route: route.fulfill(body=PLAYER, content_type="text/html"),
    )
    log_in(page, "maya")
    for url in ("/path/", f"/learn/{journey.first.pk}/", "/results/"):
        page.goto(url)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, url
        assert_accessible(page, f"{url} on a phone")
    save_screenshot(page, "student-results-phone")
