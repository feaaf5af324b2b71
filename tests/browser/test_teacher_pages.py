"""A teacher in a real browser: signs in, opens a section, sees the flag of a stuck student and
resolves it with a note in place (htmx: the page does not navigate), opens the student's page and
the grading queue and grades a written answer. Every page passes axe-core and is photographed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from assessments.models import Attempt
from progress.models import InterventionFlag
from tests.assessments.test_grading_pages import Check
from tests.browser.conftest import assert_accessible, log_in, save_screenshot
from tests.progress.test_teacher_pages import UnitRoom, _classroom_view, evidence_history

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_teacher_resolves_a_flag_in_place_reads_a_student_and_grades_an_answer(page):
    room = UnitRoom()
    room.teacher.username = "tess"
    room.teacher.save()
    evidence_history(room)
    flag = InterventionFlag.objects.create(
        student=room.cy,
        competency=room.ee1,
        kind=InterventionFlag.Kind.STUCK,
        reason="Failed the 6.EE.1 mastery check twice in 9 days",
        suggestion="Re-watch the expressions lesson, then practise with a partner",
        opened_at=room.ben.date_joined,
    )
    waiting = Check(_classroom_view(room)).submit(room.ana)

    # the teacher's home
    log_in(page, "tess")
    expect(page.get_by_role("heading", level=1)).to_have_text("My sections")
    expect(page.locator("#open-flags")).to_contain_text("Cy Lee")
    expect(page.locator(".grading-count")).to_contain_text("1 answer to grade")
    save_screenshot(page, "teacher-home")
    assert_accessible(page, "teacher home")

    # the section: heatmap and the flag queue
    page.get_by_role("link", name="Math 6B", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Math 6B")
    row = page.locator(f"#flag-{flag.pk}")
    expect(row).to_contain_text("Cy Lee")
    expect(row).to_contain_text("Failed the 6.EE.1 mastery check twice in 9 days")
    expect(page.locator("#heatmap")).to_contain_text("expected by today")
    save_screenshot(page, "section-heatmap")
    assert_accessible(page, "section page")

    # resolve in place: the flag's row is swapped, the page is the same document
    page.evaluate("() => { window.notReloaded = true; }")
    url = page.url
    row.get_by_label("Note").fill("Retaught at lunch with the tape diagram")
    row.get_by_role("button", name="Resolve").click()
    expect(page.locator(f"#flag-{flag.pk}")).to_contain_text(
        "Resolved by Tess Hart: Retaught at lunch with the tape diagram"
    )
    assert page.evaluate("() => window.notReloaded === true")
    assert page.url == url
    expect(page.locator(f"#flag-{flag.pk} .flag-status")).to_be_focused()
    flag.refresh_from_db()
    assert (flag.status, flag.resolution_note) == (
        InterventionFlag.Status.RESOLVED,
        "Retaught at lunch with the tape diagram",
    )

    # re-sort the heatmap in place (htmx; a plain GET without JavaScript): the URL says how
    page.get_by_label("Sort students by").select_option("-mastered")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.locator("#heatmap tbody tr").first).to_contain_text("Ana Ruiz")
    expect(page).to_have_url(re.compile(r"\?sort=-mastered&order=pacing"))
    expect(page.locator("#heatmap-heading")).to_be_focused()
    expect(page.locator("#heatmap-csv")).to_have_attribute(
        "href", re.compile(r"heatmap\.csv\?sort=-mastered")
    )
    assert page.evaluate("() => window.notReloaded === true")

    # the student's page, from the heatmap's name link
    page.locator("#heatmap").get_by_role("link", name="Cy Lee").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cy Lee")
    expect(page.locator(f"#timeline-{room.rp1.pk} svg")).to_be_visible()
    expect(page.locator("#flag-history")).to_contain_text("Retaught at lunch with the tape diagram")
    save_screenshot(page, "teacher-student")
    assert_accessible(page, "student page")

    # the grading queue, from the section page
    page.get_by_role("link", name="Math 6B", exact=True).click()
    page.get_by_role("link", name=re.compile(r"^Grading queue")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Grading queue")
    expect(page.locator("#queue-count")).to_have_text("1 answer to grade with the rubric, oldest first.")
    save_screenshot(page, "grading-queue")
    assert_accessible(page, "grading queue")
    entry = page.locator(f"#response-{waiting.pk}")
    entry.get_by_label("4 points: Complete").check()
    entry.get_by_label("Feedback for the student").fill("Clear comparison; name the unit next time.")
    entry.get_by_role("button", name=re.compile(r"^Save the grade")).click()
    expect(page.get_by_role("status").first).to_have_text("Graded Ana Ruiz's answer on Unit rates check.")
    expect(page.locator("#queue-count")).to_have_text("Nothing to grade: every written answer has a grade.")
    waiting.refresh_from_db()
    waiting.attempt.refresh_from_db()
    assert (waiting.score, waiting.feedback) == (4, "Clear comparison; name the unit next time.")
    assert waiting.attempt.status == Attempt.Status.COMPLETED


def test_the_section_page_fits_a_phone(phone_page):
    room = UnitRoom()
    room.teacher.username = "tess"
    room.teacher.save()
    log_in(phone_page, "tess")
    phone_page.goto(f"/teach/sections/{room.section.pk}/")
    expect(phone_page.get_by_role("heading", level=1)).to_have_text("Math 6B")
    # the page does not scroll sideways: only the heatmap's own box does
    assert phone_page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    expect(phone_page.get_by_label("Sort students by")).to_be_visible()
    save_screenshot(phone_page, "section-heatmap-phone")
    assert_accessible(phone_page, "section page on a phone")
