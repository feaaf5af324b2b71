"""The district staff overview: who may open it, that it shows only the caller's district, the live
rescoring block, the admin link, and a flat query count at two district sizes."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments.models import ItemStatistics, RescoreJob
from mastery import staff_selectors
from progress.models import InterventionFlag
from roster.models import ImportRun, User
from tests.factories import (
    AssessmentFactory,
    CompetencyFactory,
    DistrictFactory,
    EnrollmentFactory,
    FrameworkFactory,
    ItemFactory,
    SchoolFactory,
    SectionFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 11, 2, 9, 0, tzinfo=datetime.UTC)
Kind = InterventionFlag.Kind


def _flag(
    student: User, kind: str, *, competency=None, status=InterventionFlag.Status.OPEN
) -> InterventionFlag:
    return InterventionFlag.objects.create(
        student=student,
        competency=competency,
        kind=kind,
        status=status,
        reason="Two failed mastery checks.",
        suggestion="Re-watch the lesson.",
        opened_at=NOW,
    )


def _district(name: str, *, students: int = 2, frameworks: int = 1, suspects: int = 1, jobs: int = 1):
    """A district with schools, students with open flags, frameworks, imports, a job and suspect items."""
    district = DistrictFactory(name=name)
    staff = StaffFactory(district=district, username=f"staff-{name.lower().replace(' ', '-')}")
    north = SchoolFactory(district=district, name=f"{name} North")
    south = SchoolFactory(district=district, name=f"{name} South")
    north_section = SectionFactory(school=north)
    south_section = SectionFactory(school=south)
    competency = None
    for index in range(frameworks):
        framework = FrameworkFactory(district=district, title=f"{name} framework {index}")
        for _ in range(3):
            competency = CompetencyFactory(framework=framework)
    for index in range(students):
        student = StudentFactory(district=district)
        EnrollmentFactory(section=north_section if index % 2 == 0 else south_section, user=student)
        _flag(student, Kind.STUCK, competency=competency)
        _flag(student, Kind.INACTIVE)
    for index in range(3):
        ImportRun.objects.create(
            kind=ImportRun.Kind.CASE,
            status=ImportRun.Status.APPLIED,
            source_name=f"{name}-{index}.json",
            started_by=staff,
            district=district,
            counts={"framework": {"created": 1, "updated": 0}, "competency": {"created": 3, "updated": 0}},
        )
    for index in range(suspects):
        item = ItemFactory(district=district, stem=f"{name} suspect item {index}")
        ItemStatistics.objects.create(
            item=item,
            response_count=30,
            facility=Decimal("0.1000"),
            discrimination=Decimal("-0.2000"),
            is_suspect=True,
            suspect_reasons=["Negative discrimination: check the key."],
            computed_at=NOW,
        )
    for index in range(jobs):
        item = ItemFactory(district=district, stem=f"{name} rescored item {index}")
        job = RescoreJob.objects.create(status=RescoreJob.Status.RUNNING, total=40, done=10, changed=3)
        job.items.add(item)
    return district, staff


def test_teacher_student_and_districtless_staff_get_404(client):
    district, _ = _district("Riverside")
    for user in (
        TeacherFactory(district=district),
        StudentFactory(district=district),
        StaffFactory(district=None, username="root-without-district"),
    ):
        client.force_login(user)
        assert client.get(reverse("staff:overview")).status_code == 404
        assert client.get(reverse("staff:rescoring")).status_code == 404


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(reverse("staff:overview"))
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/staff/"


def test_overview_shows_only_the_callers_district(client):
    _, staff = _district("Riverside", students=3)
    _district("Lakeside", students=5)
    client.force_login(staff)
    response = client.get(reverse("staff:overview"))
    assert response.status_code == 200
    context = response.context
    assert [framework.title for framework in context["frameworks"]] == ["Riverside framework 0"]
    assert [framework.competency_count for framework in context["frameworks"]] == [3]
    assert [run.source_name for run in context["import_runs"]] == [
        "Riverside-2.json",
        "Riverside-1.json",
        "Riverside-0.json",
    ]
    assert [run.counts_summary for run in context["import_runs"]] == ["4 created"] * 3
    assert [statistics.item.stem for statistics in context["suspect_items"]] == ["Riverside suspect item 0"]
    assert [job.items.get().stem for job in context["jobs"]] == ["Riverside rescored item 0"]
    flags = {row.school.name: dict(row.counts) for row in context["school_flags"]}
    # Students 0 and 2 are at North, student 1 at South; each has a stuck and an inactive flag.
    assert flags == {
        "Riverside North": {Kind.STUCK: 2, Kind.INACTIVE: 2},
        "Riverside South": {Kind.STUCK: 1, Kind.INACTIVE: 1},
    }
    html = response.content.decode()
    assert "Lakeside" not in html
    assert "Riverside framework 0" in html
    assert reverse("admin:assessments_item_change", args=[context["suspect_items"][0].item_id]) in html
    assert "Negative discrimination: check the key." in html


def test_flags_that_are_not_open_or_of_inactive_enrollments_are_not_counted(client):
    district, _staff = _district("Riverside", students=0)
    school = SchoolFactory(district=district, name="Riverside East")
    section = SectionFactory(school=school)
    student = StudentFactory(district=district)
    EnrollmentFactory(section=section, user=student)
    _flag(student, Kind.BEHIND_PACE)
    _flag(student, Kind.INACTIVE, status=InterventionFlag.Status.ACKNOWLEDGED)
    _flag(student, Kind.REGRESSED, competency=CompetencyFactory(), status=InterventionFlag.Status.RESOLVED)
    dropped = StudentFactory(district=district)
    EnrollmentFactory(section=section, user=dropped, is_active=False)
    _flag(dropped, Kind.STUCK)
    rows = staff_selectors.open_flag_counts_by_school(district=district)
    assert [(row.school.name, row.counts, row.total) for row in rows] == [
        ("Riverside East", {Kind.BEHIND_PACE: 1}, 1),
        ("Riverside North", {}, 0),
        ("Riverside South", {}, 0),
    ]
    assert rows[0].by_kind() == [
        ("stuck", "Stuck", 0),
        ("prerequisite_gap", "Prerequisite gap", 0),
        ("behind_pace", "Behind pace", 1),
        ("inactive", "Inactive", 0),
        ("regressed", "Regressed", 0),
        ("predicted_miss", "Predicted miss", 0),
    ]


def test_a_job_on_an_assessment_of_the_district_counts_and_progress_is_shown(client):
    district, staff = _district("Riverside", jobs=0)
    assessment = AssessmentFactory(district=district, title="Ratios check")
    job = RescoreJob.objects.create(
        status=RescoreJob.Status.RUNNING, assessment=assessment, total=8, done=2, changed=1
    )
    client.force_login(staff)
    response = client.get(reverse("staff:rescoring"))
    html = response.content.decode()
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    assert 'hx-trigger="every 2s"' in html
    assert f'hx-get="{reverse("staff:rescoring")}"' in html
    assert '<progress class="w-100 staff-progress" max="8" value="2"' in html
    assert "2 of 8 responses rescored (25%), 1 changed" in html
    assert f"Rescore #{job.pk}: Ratios check" in html


def test_polling_stops_when_no_job_runs(client):
    district, staff = _district("Riverside", jobs=0)
    item = ItemFactory(district=district)
    finished = RescoreJob.objects.create(
        status=RescoreJob.Status.COMPLETED, total=5, done=5, changed=0, finished_at=timezone.now()
    )
    finished.items.add(item)
    client.force_login(staff)
    html = client.get(reverse("staff:rescoring")).content.decode()
    assert "hx-trigger" not in html
    assert 'data-polling="off"' in html
    assert "No job is running." in html
    assert '<progress class="w-100 staff-progress" max="5" value="5"' in html
    assert "5 of 5 responses rescored (100%), 0 changed" in html


def test_finished_jobs_are_limited_but_running_ones_always_shown():
    district, _ = _district("Riverside", jobs=0)
    item = ItemFactory(district=district)
    finished = []
    for _ in range(staff_selectors.FINISHED_JOB_LIMIT + 2):
        job = RescoreJob.objects.create(status=RescoreJob.Status.COMPLETED, total=1, done=1)
        job.items.add(item)
        finished.append(job)
    pending = RescoreJob.objects.create(status=RescoreJob.Status.PENDING)
    pending.items.add(item)
    jobs = staff_selectors.rescore_job_list_for_district(district=district)
    expected_finished = [job.pk for job in reversed(finished)][: staff_selectors.FINISHED_JOB_LIMIT]
    assert [job.pk for job in jobs] == [pending.pk, *expected_finished]
    assert [job.percent for job in jobs[:2]] == [0, 100]


def test_admin_header_links_to_the_overview(client):
    _, staff = _district("Riverside")
    client.force_login(staff)
    html = client.get(reverse("admin:index")).content.decode()
    assert f'<a href="{reverse("staff:overview")}" id="staff-overview-link">District overview</a>' in html
    assert "<title>Catalog, rescoring" not in html  # the admin's own titles stay
    assert "Mastery: district administration" in html
    assert "Catalog, rosters and assessments | Mastery admin" in html


def test_import_counts_summary():
    assert (
        staff_selectors.import_counts_summary(
            {"users": {"created": 2, "updated": 1, "deactivated": 0}, "classes": {"created": 1}}
        )
        == "3 created, 1 updated"
    )
    assert staff_selectors.import_counts_summary({"users": {"created": 0}}) == "nothing changed"
    assert staff_selectors.import_counts_summary(None) == "nothing changed"
    assert staff_selectors.import_counts_summary({"note": "x", "a": {"created": "n/a"}}) == "nothing changed"


@pytest.mark.parametrize(("students", "frameworks", "suspects", "jobs"), [(5, 1, 1, 1), (40, 4, 12, 6)])
def test_overview_query_count_is_flat(
    client, django_assert_num_queries, students, frameworks, suspects, jobs
):
    _, staff = _district("Riverside", students=students, frameworks=frameworks, suspects=suspects, jobs=jobs)
    client.force_login(staff)
    # session, user, district; frameworks, imports, jobs, suspect items, schools, flag counts
    with django_assert_num_queries(9):
        response = client.get(reverse("staff:overview"))
    assert response.status_code == 200
    assert len(response.context["jobs"]) == jobs
    assert len(response.context["suspect_items"]) == suspects
    assert sum(row.total for row in response.context["school_flags"]) == 2 * students


@pytest.mark.parametrize("jobs", [1, 8])
def test_rescoring_partial_query_count_is_flat(client, django_assert_num_queries, jobs):
    _, staff = _district("Riverside", students=1, jobs=jobs)
    client.force_login(staff)
    with django_assert_num_queries(4):  # session, user, district, jobs with their item counts
        response = client.get(reverse("staff:rescoring"))
    assert response.content.decode().count('class="mb-3 rescore-job"') == jobs
