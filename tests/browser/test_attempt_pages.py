"""A student takes a mastery check in a real browser: start, every item type with autosave, reload,
submit with confirmation, the result before and after the teacher grades the written answer."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from assessments import services
from assessments.models import Assessment, Attempt, Item, ItemAlignment, ItemChoice, Response, RubricLevel
from competencies.models import Competency
from roster.models import User
from tests.browser.conftest import assert_accessible, log_in, save_screenshot
from tests.factories import (
    AssessmentFactory,
    BlueprintRuleFactory,
    CompetencyFactory,
    DistrictFactory,
    FrameworkFactory,
    ItemFactory,
    LearningResourceFactory,
    PrerequisiteFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

STRICT_CSP = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass
class Check:
    student: User
    competency: Competency
    assessment: Assessment
    items: dict[str, Item]
    choices: dict[str, ItemChoice]


@pytest.fixture
def check() -> Check:
    """A mastery check on 7.RP.A.1 with one item of each type: 1 + 3 + 2 + 1 + 4 = 11 points.

    7.RP.A.1 has no prerequisite, so the project's start gate lets the student in.
    """
    district = DistrictFactory(name="Riverside Unified")
    framework = FrameworkFactory(district=district, title="Grade 7 Mathematics")
    competency = CompetencyFactory(
        framework=framework,
        code="7.RP.A.1",
        statement="Compute unit rates associated with ratios of fractions.",
    )
    following = CompetencyFactory(
        framework=framework,
        code="7.RP.A.2",
        statement="Recognize and represent proportional relationships between quantities.",
    )
    PrerequisiteFactory(prerequisite=competency, competency=following)
    AssessmentFactory(
        district=district, competency=following, title="Proportional relationships: mastery check"
    )
    LearningResourceFactory(competency=competency, title="Unit rates with fractions (video)")
    student = StudentFactory(district=district, username="maya", first_name="Maya", last_name="Lopez")

    single = ItemFactory(
        district=district,
        type=Item.Type.SINGLE_CHOICE,
        stem="A recipe uses **2 cups** of flour for 4 cakes. How much flour is that per cake?",
    )
    choices = {
        "half": ItemChoice.objects.create(item=single, text="1/2 cup", is_correct=True, position=1),
        "two": ItemChoice.objects.create(item=single, text="2 cups", position=2),
        "eight": ItemChoice.objects.create(item=single, text="8 cups", position=3),
    }
    multiple = ItemFactory(
        district=district,
        type=Item.Type.MULTIPLE_CHOICE,
        stem="Which of these are unit rates? Choose all that apply.",
        max_points=Decimal(3),
        partial_credit=True,
    )
    for position, (name, text, correct) in enumerate(
        [
            ("speed", "60 miles per 1 hour", True),
            ("price", "$3 per 1 pound", True),
            ("pace", "1.5 pages per 1 minute", True),
            ("ratio", "3 apples to 5 oranges", False),
        ],
        start=1,
    ):
        choices[name] = ItemChoice.objects.create(
            item=multiple, text=text, is_correct=correct, position=position
        )
    numeric = ItemFactory(
        district=district,
        type=Item.Type.NUMERIC,
        stem="Ana walks 1/2 mile in 1/4 hour. How many miles per hour is that?",
        max_points=Decimal(2),
        answer_value=Decimal(2),
        answer_tolerance=Decimal("0.01"),
    )
    short = ItemFactory(
        district=district,
        type=Item.Type.SHORT_TEXT,
        stem="What do we call a rate whose second quantity is 1?",
        accepted_answers=["unit rate", "a unit rate"],
    )
    extended = ItemFactory(
        district=district,
        type=Item.Type.EXTENDED_TEXT,
        stem="Explain how you would compare two phone plans using unit rates.",
        max_points=Decimal(4),
    )
    for points, description in [(4, "Complete"), (2, "Partial"), (0, "Missing")]:
        RubricLevel.objects.create(item=extended, points=Decimal(points), description=description)
    items = {"single": single, "multiple": multiple, "numeric": numeric, "short": short, "extended": extended}
    for item in items.values():
        ItemAlignment.objects.create(item=item, competency=competency, points=item.max_points)
    assessment = AssessmentFactory(
        district=district,
        competency=competency,
        title="Unit rates: mastery check",
        time_limit_minutes=30,
        max_attempts=3,
        cooldown_hours=24,
    )
    BlueprintRuleFactory(
        assessment=assessment, competency=competency, items=list(items.values()), draw_count=len(items)
    )
    return Check(student=student, competency=competency, assessment=assessment, items=items, choices=choices)


def status_of(page, item: Item):
    return page.locator(f"#status-{item.pk}")


def test_a_student_takes_a_mastery_check_and_masters_the_competency(page, check):
    items = check.items
    log_in(page, check.student.username)

    # the assessment page
    page.goto(f"/assessments/{check.assessment.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Unit rates: mastery check")
    expect(page.get_by_text("0 used, 3 of 3 left")).to_be_visible()
    save_screenshot(page, "student-assessment")
    assert_accessible(page, "assessment page")
    page.get_by_role("button", name="Start the mastery check").click()

    # the attempt page: the countdown comes from the server and ticks
    page.wait_for_url(re.compile(r"/attempts/\d+/$"))
    attempt = Attempt.objects.get(student=check.student, assessment=check.assessment)
    countdown = page.locator("#countdown-value")
    expect(countdown).to_have_text(re.compile(r"^(30:00|29:[0-5]\d)$"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3_000)

    # answer every type; each one autosaves
    page.get_by_label("1/2 cup").check()
    expect(status_of(page, items["single"])).to_have_text("Saved")
    page.get_by_label("60 miles per 1 hour").check()
    # by keyboard: Tab moves through the choices in order, Space ticks one
    page.keyboard.press("Tab")
    expect(page.get_by_label("$3 per 1 pound")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(page.get_by_label("1.5 pages per 1 minute")).to_be_checked()
    expect(status_of(page, items["multiple"])).to_have_text("Saved")
    page.locator(f"#answer-{items['numeric'].pk}").fill("2")
    expect(status_of(page, items["numeric"])).to_have_text("Saved")
    page.locator(f"#answer-{items['short'].pk}").fill("Unit  Rate")
    expect(status_of(page, items["short"])).to_have_text("Saved")
    page.locator(f"#answer-{items['extended'].pk}").fill(
        "Divide each plan's price by its gigabytes, then pick the lower price per gigabyte."
    )
    expect(status_of(page, items["extended"])).to_have_text("Saved")
    expect(page.locator("#answered-count")).to_have_text("5")
    saved = dict(Response.objects.filter(attempt=attempt).values_list("item_id", "answer"))
    assert saved[items["single"].pk] == check.choices["half"].pk
    assert saved[items["numeric"].pk] == "2"
    save_screenshot(page, "student-attempt")
    assert_accessible(page, "attempt page")

    # a reload keeps every answer
    page.reload()
    expect(page.get_by_label("1/2 cup")).to_be_checked()
    expect(page.get_by_label("2 cups")).not_to_be_checked()
    expect(page.get_by_label("60 miles per 1 hour")).to_be_checked()
    expect(page.get_by_label("3 apples to 5 oranges")).not_to_be_checked()
    expect(page.locator(f"#answer-{items['numeric'].pk}")).to_have_value("2")
    expect(page.locator(f"#answer-{items['short'].pk}")).to_have_value("Unit  Rate")
    expect(page.locator(f"#answer-{items['extended'].pk}")).to_have_value(re.compile("^Divide each plan"))

    # submit, with a confirmation
    page.get_by_role("button", name="Submit answers…").click()
    dialog = page.get_by_role("dialog", name="Submit your answers?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("You have answered 5 of 5 questions.")
    expect(dialog.get_by_text("unanswered")).to_be_hidden()
    save_screenshot(page, "student-attempt-confirm", full_page=False)
    dialog.get_by_role("button", name="Submit now").click()

    # the result waits for the teacher's grade of the written answer
    page.wait_for_url(re.compile(rf"/attempts/{attempt.pk}/result/$"))
    expect(page.get_by_text("Submitted: awaiting teacher grading")).to_be_visible()
    expect(page.get_by_text("Scored so far: 7 of 11 points.")).to_be_visible()
    assert_accessible(page, "result page, awaiting grading")

    teacher = TeacherFactory(district=check.student.district, first_name="Sam", last_name="Okafor")
    services.response_grade(
        response=Response.objects.get(attempt=attempt, item=items["extended"]),
        points=3,
        grader=teacher,
        feedback="Good method. Show the division for each plan next time.",
    )
    page.reload()

    # 11 - 1 rubric point = 10 of 11; on the 4-point scale 10/11 * 4 = 3.64, level Mastery: met
    expect(page.locator("#attempt-score")).to_have_text("10 of 11 points")
    row = page.locator(f"#competency-{check.competency.pk}")
    expect(row).to_contain_text("7.RP.A.1")
    expect(row).to_contain_text("3.64 of 4")
    expect(row).to_contain_text("Mastery")
    expect(row.get_by_text("Met", exact=True)).to_be_visible()
    expect(page.get_by_text("Passed: every competency met")).to_be_visible()
    expect(page.get_by_text("Show the division for each plan next time.")).to_be_visible()
    next_up = page.get_by_role("link", name=re.compile("Proportional relationships: mastery check"))
    expect(next_up).to_be_visible()
    save_screenshot(page, "student-result")
    assert_accessible(page, "result page")

    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.COMPLETED
    assert attempt.score == Decimal("10.00")
    assert attempt.is_passed is True

    # back on the assessment page: passed, and the cooldown closes the gate with its reason
    page.get_by_role("link", name="Unit rates: mastery check").click()
    expect(page.get_by_text("You passed this mastery check")).to_be_visible()
    expect(page.locator("#gate-reason")).to_contain_text("Cooldown: the next attempt opens on")
    expect(page.get_by_role("button", name="Start attempt 2")).to_be_disabled()
    save_screenshot(page, "student-assessment-after")
    assert_accessible(page, "assessment page after a pass")


def test_the_attempt_page_works_under_a_strict_content_security_policy(page, check):
    """No inline script: autosave and the countdown run with script-src 'self' only."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

    def with_csp(route):
        response = route.fetch(max_redirects=0)
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    page.route(
        lambda url: True,
        lambda route: with_csp(route) if route.request.resource_type == "document" else route.continue_(),
    )
    log_in(page, check.student.username)
    attempt = services.attempt_start(assessment=check.assessment, student=check.student)

    page.goto(f"/attempts/{attempt.pk}/")
    countdown = page.locator("#countdown-value")
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3_000)
    page.get_by_label("2 cups").check()
    expect(status_of(page, check.items["single"])).to_have_text("Saved")

    # an answer the server refuses says why, beside its question
    services.attempt_submit(attempt=attempt)
    page.get_by_label("1/2 cup").check()
    expect(status_of(page, check.items["single"])).to_have_text(
        "Not saved: This attempt has been submitted; it takes no more answers."
    )

    script_violations = [text for text in violations if "script" in text.lower()]
    assert script_violations == []


def test_the_attempt_page_fits_a_phone(phone_page, check):
    page = phone_page
    log_in(page, check.student.username)
    attempt = services.attempt_start(assessment=check.assessment, student=check.student)

    page.goto(f"/attempts/{attempt.pk}/")
    page.get_by_label("1/2 cup").check()
    expect(status_of(page, check.items["single"])).to_have_text("Saved")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    save_screenshot(page, "student-attempt-phone")
    assert_accessible(page, "attempt page on a phone")

    page.goto(f"/attempts/{attempt.pk}/submit/")
    expect(page.get_by_text("4 unanswered")).to_be_visible()
    assert_accessible(page, "confirmation page on a phone")


def test_at_zero_the_countdown_submits_the_attempt(page, check):
    log_in(page, check.student.username)
    attempt = services.attempt_start(assessment=check.assessment, student=check.student)
    deadline = timezone.now() + datetime.timedelta(seconds=5)
    Attempt.objects.filter(pk=attempt.pk).update(deadline=deadline)

    page.goto(f"/attempts/{attempt.pk}/")
    page.get_by_label("1/2 cup").check()
    expect(status_of(page, check.items["single"])).to_have_text("Saved")
    page.wait_for_url(re.compile(rf"/attempts/{attempt.pk}/result/$"), timeout=15_000)

    expect(page.get_by_text("Submitted: awaiting teacher grading")).to_be_visible()
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.SUBMITTED
    assert attempt.submitted_at == deadline
    assert Response.objects.get(attempt=attempt, item=check.items["single"]).score == Decimal("1.00")


def test_without_javascript_the_form_saves_and_submits_after_a_confirmation_page(browser, live_server, check):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, check.student.username)
        page.goto(f"/assessments/{check.assessment.pk}/")
        page.get_by_role("button", name="Start the mastery check").click()
        page.wait_for_url(re.compile(r"/attempts/\d+/$"))
        page.get_by_label("1/2 cup").check()
        page.locator(f"#answer-{check.items['short'].pk}").fill("unit rate")
        page.get_by_role("button", name="Submit answers…").click()

        page.wait_for_url(re.compile(r"/attempts/\d+/submit/$"))
        expect(page.get_by_text("You have answered 2 of 5 questions")).to_be_visible()
        expect(page.get_by_text("3 unanswered")).to_be_visible()
        assert (
            Response.objects.get(attempt__student=check.student, item=check.items["short"]).answer
            == "unit rate"
        )
        save_screenshot(page, "student-attempt-confirm-page")  # axe needs JavaScript: see the phone test
        page.get_by_role("button", name="Submit now").click()

        page.wait_for_url(re.compile(r"/attempts/\d+/result/$"))
        expect(page.get_by_text("Scored so far: 2 of 11 points.")).to_be_visible()
        attempt = Attempt.objects.get(student=check.student, assessment=check.assessment)
        services.response_grade(
            response=Response.objects.get(attempt=attempt, item=check.items["extended"]),
            points=0,
            grader=TeacherFactory(district=check.student.district),
            feedback="No answer yet: let us talk it through in class.",
        )
        page.reload()
        expect(page.locator("#attempt-score")).to_have_text("2 of 11 points")
        expect(page.locator(f"#competency-{check.competency.pk}")).to_contain_text("Not met")
        expect(page.get_by_text("Review the lesson before you try again:")).to_be_visible()
        expect(page.get_by_role("link", name="Unit rates with fractions (video)")).to_be_visible()
        save_screenshot(page, "student-result-not-met")
    finally:
        context.close()
