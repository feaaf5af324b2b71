"""The roster admin: the registered pages, and the OneRoster upload -> preview -> apply flow."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from roster.admin import UPLOAD_SESSION_KEY, _upload_path
from roster.models import District, Enrollment, ImportRun, Section, User
from roster.services import oneroster_import
from tests.factories import EnrollmentFactory, StaffFactory, TeacherFactory
from tests.roster.oneroster_helpers import BULK, copy_package, set_cell, snapshot, table_counts, zip_bytes

pytestmark = pytest.mark.django_db

IMPORT_URL = "admin:roster_importrun_import_oneroster"


@pytest.fixture
def staff_client(client):
    staff = StaffFactory()
    client.force_login(staff)
    client.staff = staff
    return client


def upload(client, data: bytes, name: str = "riverbend.zip"):
    return client.post(
        reverse(IMPORT_URL),
        {"package": SimpleUploadedFile(name, data, content_type="application/zip"), "preview": "Preview"},
    )


def test_upload_preview_then_apply(staff_client):
    changelist = staff_client.get(reverse("admin:roster_importrun_changelist"))
    assert changelist.status_code == 200
    assert reverse(IMPORT_URL).encode() in changelist.content
    assert staff_client.get(reverse(IMPORT_URL)).status_code == 200
    before = snapshot()

    preview = upload(staff_client, zip_bytes(BULK, top_folder="export"))

    assert preview.status_code == 200
    assert snapshot() == before  # the preview wrote nothing
    report = preview.context["report"]
    assert report.dry_run is True
    assert report.counts["users"] == {"created": 16, "updated": 0, "unchanged": 0, "deactivated": 0}
    html = preview.content.decode()
    assert 'id="import-counts"' in html
    assert '<th scope="row">Enrollments</th>' in html
    assert "usr-g-001" in html  # the guardian warning
    token = staff_client.session[UPLOAD_SESSION_KEY]["token"]
    assert _upload_path(token).exists()

    applied = staff_client.post(reverse(IMPORT_URL), {"token": token, "apply": "Apply"}, follow=True)

    run = ImportRun.objects.get()
    assert applied.redirect_chain == [(reverse("admin:roster_importrun_change", args=[run.pk]), 302)]
    assert (run.status, run.source_name, run.started_by) == (
        ImportRun.Status.APPLIED,
        "riverbend.zip",
        staff_client.staff,
    )
    assert run.counts["enrollments"]["created"] == 16
    assert (
        "Imported riverbend.zip: 43 created, 0 updated, 0 unchanged, 0 deactivated."
        in applied.content.decode()
    )
    assert Enrollment.objects.count() == 16
    assert not _upload_path(token).exists()
    assert UPLOAD_SESSION_KEY not in staff_client.session
    history_user = User.objects.get(sourced_id="usr-s-001").history.get().history_user
    assert history_user == staff_client.staff

    again = staff_client.post(reverse(IMPORT_URL), {"token": token, "apply": "Apply"}, follow=True)
    assert "no longer available" in again.content.decode()
    assert ImportRun.objects.count() == 1


def test_bad_package_shows_errors_and_writes_nothing(staff_client, tmp_path):
    package = copy_package(tmp_path)
    set_cell(package, "enrollments.csv", 4, "classSourcedId", "cls-999")
    before = table_counts()

    response = upload(staff_client, zip_bytes(package))

    assert response.status_code == 200
    assert response.context["errors"] == ["enrollments.csv row 4: class 'cls-999' does not exist"]
    html = response.content.decode()
    assert "enrollments.csv row 4: class &#x27;cls-999&#x27; does not exist" in html
    assert "the header as row 1" in html
    assert 'name="apply"' not in html
    assert UPLOAD_SESSION_KEY not in staff_client.session
    assert table_counts() == before


def test_broken_zip_and_wrong_extension(staff_client):
    broken = upload(staff_client, b"PK\x03\x04 not really a zip")
    assert broken.context["errors"][0].startswith("the uploaded file: not a valid zip file")
    wrong = upload(staff_client, b"sourcedId\n", name="users.csv")
    assert wrong.context["upload_form"].errors == {"package": ["Upload the package as a .zip file."]}


def test_cancel_discards_the_previewed_upload(staff_client):
    upload(staff_client, zip_bytes(BULK))
    token = staff_client.session[UPLOAD_SESSION_KEY]["token"]

    staff_client.get(reverse(IMPORT_URL))

    assert not _upload_path(token).exists()
    assert UPLOAD_SESSION_KEY not in staff_client.session


def test_a_forged_token_is_refused(staff_client):
    upload(staff_client, zip_bytes(BULK))
    response = staff_client.post(reverse(IMPORT_URL), {"token": "A" * 43, "apply": "Apply"}, follow=True)
    assert "no longer available" in response.content.decode()
    assert ImportRun.objects.count() == 0
    assert User.objects.count() == 1
    staff_client.get(reverse(IMPORT_URL))  # discards the real upload


def test_teachers_cannot_reach_the_import_page(client):
    teacher = TeacherFactory(is_staff=True)
    client.force_login(teacher)
    assert client.get(reverse(IMPORT_URL)).status_code == 403


def test_the_temp_file_lives_in_the_temp_dir():
    token = "x" * 43
    assert _upload_path(token).parent == Path(tempfile.gettempdir())
    with pytest.raises(ValueError):
        _upload_path("../../etc/passwd")


@pytest.mark.parametrize(
    "name", ["district", "school", "term", "course", "section", "enrollment", "importrun", "user"]
)
def test_every_roster_changelist_and_change_page_renders(staff_client, name):
    oneroster_import(source=BULK)
    EnrollmentFactory()
    assert staff_client.get(reverse(f"admin:roster_{name}_changelist")).status_code == 200
    model = {"importrun": ImportRun, "user": User, "section": Section, "district": District}.get(name)
    if model is not None:
        obj = model.objects.first()
        assert staff_client.get(reverse(f"admin:roster_{name}_change", args=[obj.pk])).status_code == 200


def test_user_admin_shows_history_and_searches_sourced_id(staff_client):
    oneroster_import(source=BULK)
    student = User.objects.get(sourced_id="usr-s-003")
    history = staff_client.get(reverse("admin:roster_user_history", args=[student.pk]))
    assert history.status_code == 200
    found = staff_client.get(reverse("admin:roster_user_changelist"), {"q": "usr-s-003"})
    assert list(found.context["cl"].result_list) == [student]
    autocomplete = staff_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "roster", "model_name": "enrollment", "field_name": "section", "term": "MATH7-03"},
    )
    assert [result["text"] for result in autocomplete.json()["results"]] == ["Math 7 - Period 3"]
