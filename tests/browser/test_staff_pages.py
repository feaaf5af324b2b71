"""District staff in a real browser: sign in, import a CASE package through the admin (upload, dry-run
preview with its counts, apply), find the framework and its competencies in admin, then open the district
overview from the admin header and watch a rescoring job finish live."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from assessments.models import ItemStatistics, RescoreJob
from competencies.models import Framework
from progress.models import InterventionFlag
from roster.models import ImportRun
from tests.browser.conftest import assert_accessible, log_in, save_screenshot
from tests.factories import (
    DistrictFactory,
    EnrollmentFactory,
    ItemFactory,
    SchoolFactory,
    SectionFactory,
    StaffFactory,
    StudentFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CASE_FILE = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "case"
    / ("opensalt_docs-sample_what-standards-could-be_16items.json")
)
NOW = datetime.datetime(2026, 11, 2, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture
def district_staff():
    district = DistrictFactory(name="Riverside Unified")
    staff = StaffFactory(district=district, username="dana", first_name="Dana", last_name="Whitfield")
    school = SchoolFactory(district=district, name="Riverside Middle")
    section = SectionFactory(school=school, title="Math 7, period 2")
    for index, kind in enumerate([InterventionFlag.Kind.STUCK, InterventionFlag.Kind.STUCK, "inactive"]):
        student = StudentFactory(district=district, username=f"student{index}")
        EnrollmentFactory(section=section, user=student)
        InterventionFlag.objects.create(
            student=student,
            kind=kind,
            reason="No activity for six school days." if kind == "inactive" else "Two failed checks.",
            suggestion="Check in with the student.",
            opened_at=NOW,
        )
    suspect = ItemFactory(district=district, stem="A map scale of 1 : 50 000. How far is 3 cm?")
    ItemStatistics.objects.create(
        item=suspect,
        response_count=42,
        facility=Decimal("0.0714"),
        discrimination=Decimal("-0.3100"),
        is_suspect=True,
        suspect_reasons=["Negative discrimination (-0.31): stronger students miss it; check the key."],
        computed_at=NOW,
    )
    job = RescoreJob.objects.create(
        status=RescoreJob.Status.RUNNING, requested_by=staff, total=40, done=10, changed=2, reason="Key fixed"
    )
    job.items.add(suspect)
    return staff, job


def test_staff_import_a_case_file_and_open_the_overview(page, district_staff):
    staff, job = district_staff
    log_in(page, staff.username)
    page.goto("/admin/")
    expect(page.locator("#site-name")).to_have_text("Mastery: district administration")
    expect(page.get_by_role("link", name="District overview")).to_be_visible()

    # Upload, then the dry run's preview with its counts; nothing written yet.
    page.goto("/admin/competencies/framework/import/case/")
    page.locator("input[type=file]").set_input_files(str(CASE_FILE))
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("#count-competencies .created")).to_have_text("16")
    expect(page.locator("#count-prerequisites .created")).to_have_text("2")
    assert Framework.objects.count() == 0
    save_screenshot(page, "staff-case-import")
    page.get_by_role("button", name="Apply the import").click()

    # Applied: the framework's page, then its competencies in the admin list.
    framework = Framework.objects.get()
    assert (framework.title, framework.district_id, framework.competencies.count()) == (
        "What Standards Could Be",
        staff.district_id,
        16,
    )
    expect(page).to_have_url(re.compile(rf"/admin/competencies/framework/{framework.pk}/change/$"))
    expect(page.locator(".messagelist .success")).to_contain_text("Imported")
    page.goto(f"/admin/competencies/competency/?framework__id__exact={framework.pk}")
    expect(page.locator("#result_list")).to_contain_text("CCSS.Math.Content.7.RP.A.2a")
    expect(page.locator("#result_list")).to_contain_text("CCSS.Math.Content.6.RP.A.3d")

    # The overview, from the admin header.
    page.get_by_role("link", name="District overview").click()
    expect(page).to_have_url(re.compile(r"/staff/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Riverside Unified")
    row = page.locator(f"tr[data-framework='{framework.pk}']")
    expect(row).to_contain_text("What Standards Could Be")
    expect(row.locator(".competency-count")).to_have_text("16")
    expect(row).to_contain_text("Draft")
    run = ImportRun.objects.get(district=staff.district)
    expect(page.locator(f"[data-import='{run.pk}']")).to_contain_text(f"CASE: {CASE_FILE.name}")
    flags = page.locator("tr[data-school]")
    expect(flags.locator("[data-kind='stuck']")).to_have_text("2")
    expect(flags.locator("[data-kind='inactive']")).to_have_text("1")
    expect(flags.locator("[data-kind='total']")).to_have_text("3")
    expect(page.locator("#suspect-items")).to_contain_text("Negative discrimination (-0.31)")

    # The running job, polled every 2 s, until it completes: then the polling stops.
    progress = page.locator(f"[data-job='{job.pk}'] progress")
    expect(progress).to_have_attribute("value", "10")
    expect(page.locator(f"[data-job='{job.pk}']")).to_contain_text("10 of 40 responses rescored (25%)")
    expect(page.locator("#rescoring-jobs")).to_have_attribute("data-polling", "on")
    assert_accessible(page, "staff overview")
    save_screenshot(page, "staff-overview")

    RescoreJob.objects.filter(pk=job.pk).update(done=40, changed=5, status=RescoreJob.Status.COMPLETED)
    expect(page.locator(f"[data-job='{job.pk}']")).to_contain_text(
        "40 of 40 responses rescored (100%), 5 changed", timeout=8_000
    )
    expect(progress).to_have_attribute("value", "40")
    expect(page.locator("#rescoring-jobs")).to_have_attribute("data-polling", "off")
    expect(page.locator("#rescoring-summary")).to_have_text("No job is running.")
