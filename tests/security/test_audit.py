"""The append-only audit log: exactly one row per audited decision, with who, what, when, before and
after; nothing else writes it, and nothing (model, queryset, raw SQL) changes or deletes a row."""

from __future__ import annotations

import datetime

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from assessments.rescoring import rescore_job_create
from competencies.services import framework_import_case
from progress import flag_services, services
from progress.models import InterventionFlag
from roster.audit import audit_record
from roster.models import AuditEvent, AuditLogIsAppendOnly, ImportRun, User
from roster.services import oneroster_import
from tests.factories import (
    CompetencyFactory,
    CompetencyMasteryFactory,
    DistrictFactory,
    FrameworkFactory,
    ItemFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)
from tests.roster.oneroster_helpers import BULK

pytestmark = pytest.mark.django_db

CASE_SMALL = BULK.parent.parent / "case" / "opensalt_test-fixture_MarkdownFramework_2items.json"
NOW = datetime.datetime(2026, 10, 5, 9, 0, tzinfo=datetime.UTC)
AUDIT_COLUMNS = (
    "action",
    "actor_id",
    "actor_username",
    "district_id",
    "target_type",
    "target_id",
    "target_repr",
    "subject_id",
    "before",
    "after",
    "note",
)


def rows() -> list[tuple]:
    return list(AuditEvent.objects.order_by("pk").values_list(*AUDIT_COLUMNS))


@pytest.fixture
def world():
    district = DistrictFactory(name="Riverside Unified")
    framework = FrameworkFactory(district=district)
    competency = CompetencyFactory(framework=framework, code="6.RP.A.1", statement="Understand ratios")
    teacher = TeacherFactory(district=district, username="ms-rivera")
    student = StudentFactory(district=district, username="maya")
    return district, competency, teacher, student


def test_a_mastery_override_is_recorded_with_before_and_after(world):
    district, competency, teacher, student = world
    started = timezone.now()

    mastery = services.mastery_override(
        student=student, competency=competency, state="mastered", author=teacher, note="Conference", now=NOW
    )

    event = AuditEvent.objects.get()
    assert started <= event.created_at <= timezone.now()
    assert rows() == [
        (
            "mastery_override",
            teacher.pk,
            "ms-rivera",
            district.pk,
            "progress.competencymastery",
            str(mastery.pk),
            f"competency mastery #{mastery.pk} (student #{student.pk})",
            student.pk,
            None,
            {
                "competency_id": competency.pk,
                "state": "mastered",
                "score": None,
                "is_overridden": True,
                "is_unlocked_by_teacher": False,
            },
            "Conference",
        )
    ]


def test_an_unlock_is_recorded_with_the_row_as_it_was(world):
    _, competency, teacher, student = world
    CompetencyMasteryFactory(student=student, competency=competency, state="locked")

    services.mastery_override(
        student=student, competency=competency, state="unlocked", author=teacher, note="Ready early", now=NOW
    )

    (event,) = rows()
    assert event[0] == "mastery_unlock"
    assert event[8] == {
        "competency_id": competency.pk,
        "state": "locked",
        "score": None,
        "is_overridden": False,
        "is_unlocked_by_teacher": False,
    }
    assert event[9] == {**event[8], "state": "ready", "is_unlocked_by_teacher": True}
    assert event[10] == "Ready early"


def test_a_refused_override_records_nothing(world):
    _, competency, teacher, student = world
    with pytest.raises(Exception, match="note"):
        services.mastery_override(
            student=student, competency=competency, state="mastered", author=teacher, note=""
        )
    assert rows() == []


def test_flag_actions_are_recorded_one_row_each(world):
    district, competency, teacher, student = world
    flag = InterventionFlag.objects.create(
        student=student, competency=competency, kind="stuck", reason="r", suggestion="s", opened_at=NOW
    )
    today = timezone.localdate()

    flag_services.flag_acknowledge(flag=flag, user=teacher, note="On it")
    flag_services.flag_snooze(flag=flag, user=teacher, until=today + datetime.timedelta(days=3), note="Trip")
    flag_services.flag_resolve(flag=flag, user=teacher, note="Retaught")

    target = (
        "progress.interventionflag",
        str(flag.pk),
        f"intervention flag #{flag.pk} (student #{student.pk})",
    )
    until = (today + datetime.timedelta(days=3)).isoformat()
    assert rows() == [
        (
            "flag_acknowledge",
            teacher.pk,
            "ms-rivera",
            district.pk,
            *target,
            student.pk,
            {"status": "open", "snoozed_until": None},
            {"status": "acknowledged", "snoozed_until": None},
            "On it",
        ),
        (
            "flag_snooze",
            teacher.pk,
            "ms-rivera",
            district.pk,
            *target,
            student.pk,
            {"status": "acknowledged", "snoozed_until": None},
            {"status": "snoozed", "snoozed_until": until},
            "Trip",
        ),
        (
            "flag_resolve",
            teacher.pk,
            "ms-rivera",
            district.pk,
            *target,
            student.pk,
            {"status": "snoozed", "snoozed_until": until},
            {"status": "resolved", "snoozed_until": None},
            "Retaught",
        ),
    ]


def test_a_rescoring_job_is_recorded_when_created_and_not_when_it_runs():
    district = DistrictFactory()
    staff = StaffFactory(district=district, username="dana")
    item = ItemFactory(district=district)

    job = rescore_job_create(items=[item], user=staff, reason="Key typo", changes={"x": 1}, enqueue=False)
    job.status = job.Status.RUNNING
    job.save()

    assert rows() == [
        (
            "rescore_job_created",
            staff.pk,
            "dana",
            district.pk,
            "assessments.rescorejob",
            str(job.pk),
            f"Rescore #{job.pk} (Pending)",
            None,
            None,
            {"assessment_id": None, "total": 0, "changes": {"x": 1}},
            "Key typo",
        )
    ]


def test_a_case_import_is_recorded_and_a_dry_run_is_not():
    district = DistrictFactory()
    staff = StaffFactory(district=district, username="dana")

    framework_import_case(source=CASE_SMALL.read_bytes(), dry_run=True, user=staff, district=district)
    assert rows() == []
    report = framework_import_case(source=CASE_SMALL.read_bytes(), user=staff, district=district)

    run = ImportRun.objects.get()
    assert rows() == [
        (
            "import_case",
            staff.pk,
            "dana",
            district.pk,
            "roster.importrun",
            str(run.pk),
            str(run),
            None,
            None,
            {"framework_id": report.framework.pk, "source_name": run.source_name, "counts": run.counts},
            "",
        )
    ]


def test_a_oneroster_import_is_recorded_and_a_dry_run_is_not():
    staff = StaffFactory(username="dana", district=None)
    oneroster_import(source=BULK, dry_run=True, user=staff)
    assert rows() == []

    report = oneroster_import(source=BULK, user=staff)

    run = report.import_run
    assert rows() == [
        (
            "import_oneroster",
            staff.pk,
            "dana",
            run.district_id,
            "roster.importrun",
            str(run.pk),
            str(run),
            None,
            None,
            {"source_name": "district_bulk", "counts": run.counts},
            "",
        )
    ]
    assert run.district_id is not None


def test_a_role_change_in_the_admin_is_recorded(client):
    district = DistrictFactory()
    staff = StaffFactory(district=district, username="dana")
    teacher = TeacherFactory(district=district, username="sam")
    client.force_login(staff)
    url = reverse("admin:roster_user_change", args=[teacher.pk])
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "username": "sam",
            "date_joined_0": teacher.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": teacher.date_joined.strftime("%H:%M:%S"),
            "district": district.pk,
            "grades": "[]",
            "groups": [],
            "user_permissions": [],
        }
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)

    response = client.post(url, {**data, "first_name": "Samuel"})  # no role change: nothing recorded
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert rows() == []
    response = client.post(url, {**data, "role": "district_staff", "is_staff": "on"})
    assert response.status_code == 302

    assert rows() == [
        (
            "role_change",
            staff.pk,
            "dana",
            district.pk,
            "roster.user",
            str(teacher.pk),
            f"user #{teacher.pk}",
            None,
            {"role": "teacher", "is_staff": False},
            {"role": "district_staff", "is_staff": True},
            "",
        )
    ]
    assert User.objects.get(pk=teacher.pk).role == "district_staff"


def test_an_unknown_action_is_refused():
    with pytest.raises(ValueError, match="Unknown audit action 'made_up'"):
        audit_record(actor=None, action="made_up")
    assert rows() == []


def test_the_model_and_its_queryset_refuse_changes():
    event = audit_record(actor=None, action="responses_purge", after={"responses": 3})
    event.note = "rewritten"
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(note="rewritten")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.all().delete()
    assert rows() == [("responses_purge", None, "", None, "", "", "", None, None, {"responses": 3}, "")]


@pytest.mark.postgres
def test_the_database_refuses_raw_update_and_delete(is_postgres):
    if not is_postgres:
        pytest.skip("The trigger is PostgreSQL's (SQLite's flush between tests is a DELETE).")
    event = audit_record(actor=None, action="responses_purge", note="kept")
    for statement in (
        "UPDATE roster_auditevent SET note = 'rewritten' WHERE id = %s",
        "DELETE FROM roster_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises((DatabaseError, IntegrityError), match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event.pk])
    assert list(AuditEvent.objects.values_list("pk", "note")) == [(event.pk, "kept")]


def test_the_admin_shows_the_log_read_only_filtered_and_searchable(client):
    district = DistrictFactory()
    other = DistrictFactory()
    staff = StaffFactory(district=district, username="dana")
    teacher = TeacherFactory(district=district, username="sam")
    mine = audit_record(actor=teacher, action="flag_resolve", note="Retaught fractions")
    audit_record(actor=staff, action="import_case", note="Spring catalog")
    audit_record(actor=None, action="responses_purge", district=other)
    client.force_login(staff)
    changelist = reverse("admin:roster_auditevent_changelist")

    response = client.get(changelist)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 3  # a superuser sees every district
    assert [
        e.action for e in client.get(changelist, {"action__exact": "flag_resolve"}).context["cl"].result_list
    ] == ["flag_resolve"]
    assert [e.pk for e in client.get(changelist, {"actor_username": "sam"}).context["cl"].result_list] == [
        mine.pk
    ]
    assert [e.pk for e in client.get(changelist, {"q": "fractions"}).context["cl"].result_list] == [mine.pk]
    day = mine.created_at
    by_date = client.get(
        changelist,
        {"created_at__year": day.year, "created_at__month": day.month, "created_at__day": day.day},
    )
    assert by_date.context["cl"].result_count == 3
    assert b"Add audit event" not in response.content

    change = reverse("admin:roster_auditevent_change", args=[mine.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"note": "rewritten"}).status_code == 403
    assert client.get(reverse("admin:roster_auditevent_add")).status_code == 403
    assert (
        client.post(reverse("admin:roster_auditevent_delete", args=[mine.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert AuditEvent.objects.get(pk=mine.pk).note == "Retaught fractions"

    # District staff (no superuser, no model permission) read their own district's events only.
    client.force_login(StaffFactory(district=district, is_superuser=False))
    own = client.get(changelist)
    assert own.status_code == 200
    assert sorted(event.action for event in own.context["cl"].result_list) == ["flag_resolve", "import_case"]
    assert client.get(reverse("admin:roster_auditevent_change", args=[mine.pk])).status_code == 200
