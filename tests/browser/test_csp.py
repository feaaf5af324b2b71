"""The content security policy the site sends (no inline script or style) breaks nothing: the login
page, the admin (index and a competency's change page), the teacher's home, the student's path and an
attempt page run without a single CSP violation in the browser's console."""

from __future__ import annotations

from decimal import Decimal

import pytest

from assessments import services
from assessments.models import Item, ItemAlignment, ItemChoice
from roster.models import Enrollment
from tests.browser.conftest import DESKTOP, log_in, save_screenshot
from tests.factories import (
    AssessmentFactory,
    BlueprintRuleFactory,
    CompetencyFactory,
    DistrictFactory,
    EnrollmentFactory,
    FrameworkFactory,
    ItemFactory,
    SectionFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site():
    district = DistrictFactory(name="Riverside Unified")
    framework = FrameworkFactory(district=district, title="Grade 7 Mathematics")
    competency = CompetencyFactory(framework=framework, code="7.RP.A.1", statement="Compute unit rates.")
    section = SectionFactory(school__district=district, title="Math 7, period 1")
    teacher = TeacherFactory(district=district, username="ms-rivera")
    student = StudentFactory(district=district, username="maya")
    EnrollmentFactory(section=section, user=teacher, role=Enrollment.Role.TEACHER)
    EnrollmentFactory(section=section, user=student, role=Enrollment.Role.STUDENT)
    item = ItemFactory(district=district, type=Item.Type.SINGLE_CHOICE, stem="Per cake: 2 cups for 4 cakes?")
    ItemChoice.objects.create(item=item, text="1/2 cup", is_correct=True, position=1)
    ItemChoice.objects.create(item=item, text="2 cups", position=2)
    ItemAlignment.objects.create(item=item, competency=competency, points=Decimal(1))
    assessment = AssessmentFactory(district=district, competency=competency, title="Unit rates check")
    BlueprintRuleFactory(assessment=assessment, competency=competency, items=[item], draw_count=1)
    attempt = services.attempt_start(assessment=assessment, student=student)
    return {
        "staff": StaffFactory(district=district, username="dana"),
        "teacher": teacher,
        "student": student,
        "competency": competency,
        "attempt": attempt,
    }


def watch(page) -> list[str]:
    """Every console message that reports a content security policy violation."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


def visit(page, url: str, name: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, f"{url}: {response and response.status}"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    save_screenshot(page, f"csp-{name}")


def test_no_page_breaks_the_content_security_policy(browser, live_server, page, site):
    violations = watch(page)
    visit(page, "/accounts/login/", "login")
    log_in(page, site["staff"].username)
    visit(page, "/admin/", "admin-index")
    visit(page, f"/admin/competencies/competency/{site['competency'].pk}/change/", "admin-competency")
    page.get_by_role("link", name="History").first.wait_for()

    for who, urls in [
        ("teacher", ["/teach/"]),
        ("student", ["/path/", f"/attempts/{site['attempt'].pk}/"]),
    ]:
        context = browser.new_context(base_url=live_server.url, viewport=DESKTOP, reduced_motion="reduce")
        other = context.new_page()
        violations += watch(other)
        log_in(other, site[who].username)
        for url in urls:
            visit(other, url, f"{who}-{url.strip('/').replace('/', '-')}")
        context.close()

    assert violations == []


def test_the_watch_catches_a_violation(page, live_server, site):
    """The check above can fail: an inline style the policy refuses shows up in the console."""
    violations = watch(page)
    visit(page, "/accounts/login/", "login-control")
    page.evaluate(
        "() => { document.body.insertAdjacentHTML('beforeend', '<div style=\"color: red\">x</div>'); }"
    )
    page.wait_for_timeout(200)
    assert len(violations) == 1
    assert violations[0].startswith(
        "Applying inline style violates the following Content Security Policy directive 'style-src 'self''"
    )
