"""Privacy: the export of everything held about one student (JSON, CSV zip; nothing of anyone else),
forgetting a student (anonymise or delete), the retention purge of old raw responses, as services,
commands, the nightly task and admin actions."""

from __future__ import annotations

import csv
import datetime
import io
import json
import zipfile
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.urls import reverse

from assessments.models import Attempt, AttemptCompetencyScore, Item, Response
from mastery import privacy, tasks
from progress.models import CompetencyMastery, Evidence, InterventionFlag, ResourceView
from roster.models import AuditEvent, Enrollment, User
from tests.factories import (
    AssessmentFactory,
    CompetencyFactory,
    DistrictFactory,
    EnrollmentFactory,
    FrameworkFactory,
    ItemFactory,
    LearningResourceFactory,
    SectionFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
    TermFactory,
)
from tests.factories.roster import PASSWORD

pytestmark = pytest.mark.django_db

T_OLD = datetime.datetime(2020, 3, 2, 9, 0, tzinfo=datetime.UTC)
T_NOW = datetime.datetime(2026, 10, 5, 9, 0, tzinfo=datetime.UTC)
TODAY = datetime.date(2026, 11, 23)


@dataclass
class Held:
    student: User
    attempts: list[Attempt]
    responses: list[Response]


@pytest.fixture
def school():
    district = DistrictFactory(name="Riverside Unified")
    framework = FrameworkFactory(district=district)
    competency = CompetencyFactory(framework=framework, code="7.RP.A.1", statement="Unit rates")
    old_term = TermFactory(
        district=district, start_date=datetime.date(2019, 8, 26), end_date=datetime.date(2020, 6, 10)
    )
    term = TermFactory(
        district=district, start_date=datetime.date(2026, 8, 24), end_date=datetime.date(2027, 6, 11)
    )
    return {
        "district": district,
        "competency": competency,
        "assessment": AssessmentFactory(district=district, competency=competency, title="Unit rates check"),
        "text_item": ItemFactory(district=district, type=Item.Type.SHORT_TEXT, stem="Name it"),
        "number_item": ItemFactory(
            district=district, type=Item.Type.NUMERIC, stem="How many?", answer_value=Decimal(4)
        ),
        "resource": LearningResourceFactory(competency=competency, title="Video"),
        "old_section": SectionFactory(school__district=district, term=old_term, title="Math 6 (2019)"),
        "section": SectionFactory(school__district=district, term=term, title="Math 7"),
        "teacher": TeacherFactory(district=district, username="ms-rivera"),
    }


def hold(school, username: str, first: str, last: str, *, answer: str, years=("old", "now")) -> Held:
    """A student with one of every kind of row, answer texts and notes naming them."""
    student = StudentFactory(
        district=school["district"],
        username=username,
        first_name=first,
        last_name=last,
        email=f"{username}@example.org",
        sourced_id=f"sis-{username}",
        grades=["07"],
    )
    attempts, responses = [], []
    for number, (key, started) in enumerate([("old", T_OLD), ("now", T_NOW)], start=1):
        if key not in years:
            continue
        EnrollmentFactory(
            user=student,
            section=school[f"{'old_' if key == 'old' else ''}section"],
            sourced_id=f"enr-{username}-{key}",
        )
        attempt = Attempt.objects.create(
            assessment=school["assessment"],
            student=student,
            number=number,
            seed=7,
            status="completed",
            started_at=started,
            submitted_at=started,
            completed_at=started,
            score=Decimal(2),
            max_score=Decimal(2),
            is_passed=True,
        )
        attempts.append(attempt)
        responses.append(
            Response.objects.create(
                attempt=attempt,
                item=school["text_item"],
                answer=f"{answer} ({key})",
                saved_at=started,
                score=Decimal(1),
                scored_key_version=1,
                feedback=f"Well done {first}",
            )
        )
        responses.append(
            Response.objects.create(
                attempt=attempt,
                item=school["number_item"],
                answer=4,
                saved_at=started,
                score=Decimal(1),
                scored_key_version=1,
            )
        )
        AttemptCompetencyScore.objects.create(
            attempt=attempt,
            competency=school["competency"],
            earned=Decimal(2),
            possible=Decimal(2),
            score=Decimal(4),
            is_met=True,
        )
    Evidence.objects.create(
        student=student,
        competency=school["competency"],
        source="observation",
        is_summative=False,
        score=Decimal(3),
        is_correct=True,
        observed_at=T_NOW,
        author=school["teacher"],
        note=f"{first} explained it",
    )
    CompetencyMastery.objects.create(student=student, competency=school["competency"], state="mastered")
    InterventionFlag.objects.create(
        student=student,
        competency=school["competency"],
        kind="stuck",
        status="resolved",
        reason="r",
        suggestion="s",
        opened_at=T_NOW,
        resolution_note=f"Talked with {first}",
    )
    ResourceView.objects.create(
        student=student, resource=school["resource"], first_viewed_at=T_NOW, last_viewed_at=T_NOW
    )
    return Held(student=student, attempts=attempts, responses=responses)


@pytest.fixture
def maya(school) -> Held:
    return hold(school, "maya", "Maya", "Lopez", answer="unit rate")


@pytest.fixture
def noah(school) -> Held:
    return hold(school, "noah", "Noah", "Zimmer", answer="Noahs secret")


# --- export ---------------------------------------------------------------------------------------------


def test_the_export_holds_every_row_about_the_student_and_nothing_of_another(school, maya, noah):
    data = privacy.student_export_data(student=maya.student)

    tables = data["tables"]
    assert (data["format"], data["version"], data["student_id"]) == (
        "mastery-student-export",
        1,
        maya.student.pk,
    )
    assert {name: len(rows) for name, rows in tables.items()} == {
        "student": 1,
        "student_history": 2,  # created, then the password set
        "enrollments": 2,
        "attempts": 2,
        "responses": 4,
        "response_score_changes": 0,
        "attempt_competency_scores": 2,
        "evidence": 1,
        "evidence_history": 1,
        "masteries": 1,
        "mastery_history": 1,
        "flags": 1,
        "flag_history": 1,
        "resource_views": 1,
        "audit_events": 0,
        "admin_log": 0,
        "login_attempts": 0,
        "logins": 0,
        "login_failures": 0,
    }
    (student,) = tables["student"]
    assert "password" not in student
    assert {
        key: student[key] for key in ("id", "username", "first_name", "last_name", "email", "sourced_id")
    } == {
        "id": maya.student.pk,
        "username": "maya",
        "first_name": "Maya",
        "last_name": "Lopez",
        "email": "maya@example.org",
        "sourced_id": "sis-maya",
    }
    assert [
        (row["item_id"], row["answer"], row["score"], row["feedback"]) for row in tables["responses"]
    ] == [
        (school["text_item"].pk, "unit rate (old)", Decimal("1.00"), "Well done Maya"),
        (school["number_item"].pk, 4, Decimal("1.00"), ""),
        (school["text_item"].pk, "unit rate (now)", Decimal("1.00"), "Well done Maya"),
        (school["number_item"].pk, 4, Decimal("1.00"), ""),
    ]
    assert [row["sourced_id"] for row in tables["enrollments"]] == ["enr-maya-old", "enr-maya-now"]
    assert [(row["note"], row["author_id"]) for row in tables["evidence"]] == [
        ("Maya explained it", school["teacher"].pk)
    ]
    text = privacy.export_json(data).decode()
    for other in ("noah", "Noah", "Zimmer", "Noahs secret", "sis-noah", "enr-noah"):
        assert other not in text
    noah_ids = {response.pk for response in noah.responses}
    assert noah_ids.isdisjoint(row["id"] for row in tables["responses"])


@pytest.mark.parametrize("extra_students", [1, 6])
def test_the_export_runs_one_query_per_table_whatever_the_volume(
    school, maya, django_assert_num_queries, extra_students
):
    for number in range(extra_students):
        hold(school, f"s{number}", "Sam", f"Other{number}", answer="x")
        hold(school, f"t{number}", "Tia", f"Other{number}", answer="y", years=("now",))
    ContentType.objects.get_for_model(User)  # cached for the process after the first use
    with django_assert_num_queries(len(privacy.TABLES)):
        privacy.student_export_data(student=maya.student)


def test_the_json_command_writes_the_export_and_the_audit_log_records_it(maya, noah, tmp_path):
    out = tmp_path / "maya.json"
    call_command("student_export", "maya", "--format", "json", "--out", str(out), stdout=io.StringIO())

    written = json.loads(out.read_text())
    expected = json.loads(privacy.export_json(privacy.student_export_data(student=maya.student)))
    expected["tables"]["audit_events"] = []  # the export itself is recorded after it was taken
    assert written == expected
    assert list(AuditEvent.objects.values_list("action", "actor_id", "subject_id", "after")) == [
        ("student_export", None, maya.student.pk, {"format": "json"})
    ]


def test_the_csv_command_writes_a_zip_with_one_csv_per_table(school, maya, noah, tmp_path):
    out = tmp_path / "maya.zip"
    call_command("student_export", "maya", "--format", "csv", "--out", str(out), stdout=io.StringIO())

    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == sorted(f"{table.name}.csv" for table in privacy.TABLES)
        responses = list(csv.reader(io.StringIO(archive.read("responses.csv").decode())))
        logins = list(csv.reader(io.StringIO(archive.read("logins.csv").decode())))
        whole = b"".join(archive.read(name) for name in archive.namelist()).decode()
    assert responses[0] == [
        "id",
        "attempt_id",
        "item_id",
        "answer",
        "saved_at",
        "score",
        "scored_key_version",
        "needs_grading",
        "grader_id",
        "graded_at",
        "feedback",
    ]
    assert [(row[2], row[3], row[5], row[10]) for row in responses[1:]] == [
        (str(school["text_item"].pk), "unit rate (old)", "1.00", "Well done Maya"),
        (str(school["number_item"].pk), "4", "1.00", ""),
        (str(school["text_item"].pk), "unit rate (now)", "1.00", "Well done Maya"),
        (str(school["number_item"].pk), "4", "1.00", ""),
    ]
    assert len(logins) == 1  # the header only
    assert "Noah" not in whole and "noah" not in whole


def test_the_export_refuses_a_teacher_and_an_unknown_name(school, tmp_path):
    with pytest.raises(CommandError, match="'ms-rivera' is not a student"):
        call_command("student_export", "ms-rivera", "--out", str(tmp_path / "x.json"))
    with pytest.raises(CommandError, match="No user with the username 'ghost'"):
        call_command("student_export", "ghost", "--out", str(tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()
    assert AuditEvent.objects.count() == 0


# --- forget ---------------------------------------------------------------------------------------------


def test_anonymising_keeps_the_learning_records_and_nothing_that_identifies(school, maya, noah):
    student_id = maya.student.pk
    out = io.StringIO()
    call_command("student_forget", "maya", stdout=out)

    assert out.getvalue().strip() == f"Anonymised student #{student_id} (was maya)."
    user = User.objects.get(pk=student_id)
    assert (user.username, user.first_name, user.last_name, user.email, user.sourced_id, user.grades) == (
        f"forgotten-{student_id}",
        "",
        "",
        "",
        None,
        [],
    )
    assert (user.is_active, user.has_usable_password()) == (False, False)
    assert authenticate(username="maya", password=PASSWORD) is None
    assert User.history.filter(id=student_id).count() == 0
    assert list(Enrollment.objects.filter(user=user).values_list("sourced_id", "is_active")) == [
        (None, False),
        (None, False),
    ]
    assert list(
        Response.objects.filter(attempt__student=user)
        .order_by("pk")
        .values_list("answer", "score", "feedback")
    ) == [
        (None, Decimal("1.00"), ""),
        (4, Decimal("1.00"), ""),
        (None, Decimal("1.00"), ""),
        (4, Decimal("1.00"), ""),
    ]
    assert list(Attempt.objects.filter(student=user).values_list("score", flat=True)) == [Decimal("2.00")] * 2
    assert list(Evidence.objects.filter(student=user).values_list("score", "note")) == [(Decimal("3.00"), "")]
    assert CompetencyMastery.objects.get(student=user).state == "mastered"
    assert InterventionFlag.objects.get(student=user).resolution_note == ""
    assert list(AuditEvent.objects.values_list("action", "target_repr", "subject_id")) == [
        ("student_anonymise", f"user #{student_id}", student_id)
    ]
    text = privacy.export_json(privacy.student_export_data(student=user)).decode()
    for identifying in ("maya", "Maya", "Lopez", "unit rate"):
        assert identifying not in text
    # Noah is untouched.
    noah_user = User.objects.get(pk=noah.student.pk)
    assert (noah_user.username, noah_user.first_name, noah_user.is_active) == ("noah", "Noah", True)
    assert Response.objects.filter(attempt__student=noah_user, answer="Noahs secret (now)").count() == 1


def test_deleting_removes_every_row_about_the_student_only(school, maya, noah):
    student_id = maya.student.pk
    before_noah = privacy.student_export_data(student=noah.student)
    call_command("student_forget", "maya", "--delete", stdout=io.StringIO())

    assert not User.objects.filter(pk=student_id).exists()
    for model, field in [
        (Enrollment, "user_id"),
        (Attempt, "student_id"),
        (Evidence, "student_id"),
        (CompetencyMastery, "student_id"),
        (InterventionFlag, "student_id"),
        (ResourceView, "student_id"),
    ]:
        assert model.objects.filter(**{field: student_id}).count() == 0
    assert Response.objects.filter(attempt__student_id=student_id).count() == 0
    assert User.history.filter(id=student_id).count() == 0
    assert Evidence.history.filter(student_id=student_id).count() == 0
    assert CompetencyMastery.history.filter(student_id=student_id).count() == 0
    assert InterventionFlag.history.filter(student_id=student_id).count() == 0
    assert list(AuditEvent.objects.values_list("action", "target_repr", "subject_id")) == [
        ("student_delete", f"user #{student_id}", student_id)
    ]
    assert privacy.student_export_data(student=noah.student) == before_noah


def test_forgetting_refuses_a_teacher(school):
    with pytest.raises(CommandError, match="'ms-rivera' is not a student"):
        call_command("student_forget", "ms-rivera", "--delete")
    assert User.objects.filter(username="ms-rivera").exists()


# --- retention ------------------------------------------------------------------------------------------


def test_the_purge_removes_old_terms_raw_responses_and_keeps_results(school, maya, noah, settings):
    settings.MASTERY_RESPONSE_RETENTION_YEARS = 3
    recent = {response.pk for held in (maya, noah) for response in held.responses[2:]}

    preview = privacy.responses_purge(today=TODAY, dry_run=True)
    assert preview == privacy.PurgeResult(cutoff=datetime.date(2023, 11, 23), terms=1, responses=4)
    assert Response.objects.count() == 8
    result = privacy.responses_purge(today=TODAY)

    assert result == privacy.PurgeResult(cutoff=datetime.date(2023, 11, 23), terms=1, responses=4)
    assert set(Response.objects.values_list("pk", flat=True)) == recent
    kept = (Decimal("2.00"), Decimal("2.00"))
    assert sorted(Attempt.objects.values_list("started_at", "score", "max_score")) == [
        (T_OLD, *kept),
        (T_OLD, *kept),
        (T_NOW, *kept),
        (T_NOW, *kept),
    ]
    assert AttemptCompetencyScore.objects.count() == 4
    assert CompetencyMastery.objects.filter(state="mastered").count() == 2
    assert Evidence.objects.count() == 2
    assert list(AuditEvent.objects.values_list("action", "actor_id", "after")) == [
        ("responses_purge", None, {"cutoff": "2023-11-23", "years": 3, "terms": 1, "responses": 4})
    ]
    assert privacy.responses_purge(today=TODAY).responses == 0  # idempotent
    assert AuditEvent.objects.count() == 1


def test_the_purge_keeps_everything_within_the_retention_period(school, maya):
    assert privacy.responses_purge(today=TODAY, years=7).responses == 0
    assert Response.objects.count() == 4
    with pytest.raises(privacy.PrivacyError, match="at least one year"):
        privacy.responses_purge(today=TODAY, years=0)


def test_the_purge_command_and_the_nightly_task(school, maya):
    out = io.StringIO()
    call_command("purge_responses", "--years", "3", "--dry-run", stdout=out)
    assert "Would purge 2 responses of 1 terms that ended before" in out.getvalue()
    assert Response.objects.count() == 4

    assert tasks.responses_purge_nightly.delay().get() == 2
    assert Response.objects.count() == 2


# --- admin actions ------------------------------------------------------------------------------------------


def test_the_admin_export_action_downloads_the_selected_students(client, school, maya, noah):
    staff = StaffFactory(district=school["district"])
    client.force_login(staff)
    response = client.post(
        reverse("admin:roster_user_changelist"),
        {"action": "export_student_data", "_selected_action": [maya.student.pk, school["teacher"].pk]},
    )

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="student-data-maya.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["maya.json", "maya-csv.zip"]
        exported = json.loads(archive.read("maya.json"))
    assert exported["student_id"] == maya.student.pk
    assert "Noah" not in json.dumps(exported)


def test_the_admin_anonymise_action_stays_in_the_staff_members_district(client, school, maya):
    elsewhere = StudentFactory(district=DistrictFactory(), username="far")
    staff = StaffFactory(district=school["district"], is_superuser=False)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    client.force_login(staff)
    response = client.post(
        reverse("admin:roster_user_changelist"),
        {"action": "anonymise_students", "_selected_action": [maya.student.pk, elsewhere.pk]},
    )

    assert response.status_code == 302
    assert User.objects.get(pk=maya.student.pk).username == f"forgotten-{maya.student.pk}"
    assert User.objects.get(pk=elsewhere.pk).username == "far"


def test_the_admin_delete_action_removes_the_student_and_refuses_non_students(client, school, maya, noah):
    staff = StaffFactory(district=school["district"])
    client.force_login(staff)
    changelist = reverse("admin:roster_user_changelist")

    nothing = client.post(
        changelist, {"action": "export_student_data", "_selected_action": [school["teacher"].pk]}, follow=True
    )
    assert "Select at least one student of your district." in nothing.content.decode()
    response = client.post(
        changelist,
        {"action": "delete_students_and_data", "_selected_action": [maya.student.pk, school["teacher"].pk]},
    )

    assert response.status_code == 302
    assert not User.objects.filter(pk=maya.student.pk).exists()
    assert User.objects.filter(pk=school["teacher"].pk).exists()
    assert User.objects.filter(pk=noah.student.pk).exists()
    assert list(AuditEvent.objects.values_list("action", "actor_id", "subject_id")) == [
        ("student_delete", staff.pk, maya.student.pk)
    ]
