"""The catalog admin, driven through its own URLs as district staff would use it."""

from __future__ import annotations

import datetime
import io
import json
import os
import re
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from competencies import services
from competencies.models import (
    CaseAssociation,
    Competency,
    Framework,
    LearningResource,
    MasteryLevel,
    MasteryScale,
    PacingGuide,
    PacingTarget,
    Prerequisite,
)
from tests.conftest import DATA_DIR
from tests.factories import (
    CompetencyFactory,
    FrameworkFactory,
    LearningResourceFactory,
    MasteryScaleFactory,
    PrerequisiteFactory,
    SectionFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)
from tests.factories.roster import PASSWORD

pytestmark = pytest.mark.django_db

CASE_FILE = DATA_DIR / "case" / "opensalt_docs-sample_what-standards-could-be_16items.json"
DOCUMENT_ID = "20c5134f-423d-4097-a971-3dd5152bf507"
RP_6_A_1 = "b6f61076-aa12-450b-8f9d-b86bc071f85e"  # precedes 6.RP.A.2 in the package
RP_6_A_2 = "eceec0fb-e4de-4ef3-a48f-0987b366c9ae"
RP_6_A_3 = "d83a65ed-770c-4dbe-a505-11e5e17a9a79"
YOUTUBE_URL = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def staff():
    return StaffFactory(first_name="Dana", last_name="Curator")


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    assert client.login(username=staff.username, password=PASSWORD)
    return client


def admin_url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


def upload(path, name: str | None = None) -> io.BytesIO:
    handle = io.BytesIO(path.read_bytes() if hasattr(path, "read_bytes") else path)
    handle.name = name or path.name
    return handle


def field_value(bound_field) -> Any:
    value = bound_field.value()
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else None
    if isinstance(value, list | tuple):
        return [str(part) for part in value]
    return str(value)


def form_fields(form) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = field_value(form[name])
        if value is not None:
            data[form.add_prefix(name)] = value
    return data


def change_form_data(response) -> dict[str, Any]:
    """What the browser would post back unchanged from an admin add/change page."""
    data = form_fields(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(form_fields(formset.management_form))
        for form in formset.forms:
            data.update(form_fields(form))
    return data


def inline_prefix(response, model) -> str:
    for inline in response.context["inline_admin_formsets"]:
        if inline.formset.model is model:
            return inline.formset.prefix
    raise AssertionError(f"no inline for {model.__name__}")


def page_text(html: str) -> str:
    """The visible text of a page, whitespace collapsed."""
    text = re.sub(r"<[^>]+>", " ", html)
    text = text.replace("&nbsp;", " ").replace("&rarr;", "→")
    return re.sub(r"\s+", " ", text)


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def import_case_through_admin(client: Client) -> str:
    """Upload the 16-item package; return the preview URL."""
    response = client.post(admin_url("competencies_framework_import", "case"), {"file": upload(CASE_FILE)})
    assert response.status_code == 302
    return response["Location"]


def apply_import(client: Client, preview_url: str):
    token = preview_url.rstrip("/").rsplit("/", 1)[-1]
    return client.post(preview_url, {"token": token})


# --- the whole curation story ------------------------------------------------------------------


def test_staff_curates_a_framework_end_to_end(staff_client, staff):
    # The framework list offers the two import pages.
    response = staff_client.get(admin_url("competencies_framework_changelist"))
    assert response.status_code == 200
    assert admin_url("competencies_framework_import", "case") in response.content.decode()
    assert admin_url("competencies_framework_import", "csv") in response.content.decode()
    assert staff_client.get(admin_url("competencies_framework_import", "case")).status_code == 200

    # Upload -> dry-run preview: 16 competencies to create, nothing written.
    preview_url = import_case_through_admin(staff_client)
    response = staff_client.get(preview_url)
    assert response.status_code == 200
    rows = {row["key"]: row for row in response.context["count_rows"]}
    assert rows["competencies"]["created"] == 16
    assert rows["competencies"]["updated"] == 0
    assert rows["framework"]["created"] == 1
    assert rows["prerequisites"]["created"] == 2  # the third precedes points outside the package
    assert rows["associations"]["created"] == 21
    assert '<td class="num created">16</td>' in response.content.decode()
    assert response.context["report"].dry_run is True
    assert Competency.objects.count() == 0
    assert Framework.objects.count() == 0
    assert Prerequisite.objects.count() == 0

    # Apply -> written, back on the framework with a success message; the upload is gone.
    token = preview_url.rstrip("/").rsplit("/", 1)[-1]
    pending_path = staff_client.session["competencies_pending_imports"][token]["path"]
    assert os.path.exists(pending_path)
    response = apply_import(staff_client, preview_url)
    framework = Framework.objects.get(identifier=DOCUMENT_ID)
    assert response.status_code == 302
    assert response["Location"] == admin_url("competencies_framework_change", framework.pk)
    assert Competency.objects.filter(framework=framework).count() == 16
    assert any(text.startswith("Imported “opensalt_docs-sample") for text in message_texts(response))
    assert not os.path.exists(pending_path)
    assert token not in staff_client.session["competencies_pending_imports"]
    edges_after_import = Prerequisite.objects.count()

    first = Competency.objects.get(identifier=RP_6_A_1)
    second = Competency.objects.get(identifier=RP_6_A_2)
    third = Competency.objects.get(identifier=RP_6_A_3)
    assert Prerequisite.objects.filter(prerequisite=first, competency=second).exists()

    # 6.RP.A.2 before 6.RP.A.1 would close a cycle: refused on the page, nothing written.
    response = staff_client.post(
        admin_url("competencies_prerequisite_add"), {"prerequisite": second.pk, "competency": first.pk}
    )
    assert response.status_code == 200
    cycle = "CCSS.Math.Content.6.RP.A.2 -> CCSS.Math.Content.6.RP.A.1 -> CCSS.Math.Content.6.RP.A.2 would form a cycle"
    assert response.context["adminform"].form.non_field_errors() == [cycle]
    assert escape(cycle) in response.content.decode()
    assert Prerequisite.objects.count() == edges_after_import

    # A valid edge through the competency's inline, with a lesson video in the same save.
    change_url = admin_url("competencies_competency_change", third.pk)
    page = staff_client.get(change_url)
    data = change_form_data(page)
    prerequisites = inline_prefix(page, Prerequisite)
    resources = inline_prefix(page, LearningResource)
    index = int(data[f"{prerequisites}-INITIAL_FORMS"])
    data[f"{prerequisites}-{index}-prerequisite"] = str(second.pk)
    data[f"{resources}-0-kind"] = "video"
    data[f"{resources}-0-title"] = "Ratios in two minutes"
    data[f"{resources}-0-url"] = YOUTUBE_URL
    data[f"{resources}-0-duration_minutes"] = "6"
    data[f"{resources}-0-position"] = "1"
    response = staff_client.post(change_url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert Prerequisite.objects.count() == edges_after_import + 1
    assert Prerequisite.objects.filter(prerequisite=second, competency=third).exists()
    video = LearningResource.objects.get(competency=third)
    assert (video.kind, video.title, video.duration_minutes) == ("video", "Ratios in two minutes", 6)
    page = staff_client.get(change_url)
    assert "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ" in page.content.decode()

    # Publish through the action.
    assert framework.status == Framework.Status.DRAFT
    response = staff_client.post(
        admin_url("competencies_framework_changelist"),
        {"action": "publish_selected", "_selected_action": [framework.pk]},
    )
    assert response.status_code == 302
    framework.refresh_from_db()
    assert framework.status == Framework.Status.PUBLISHED
    assert message_texts(response) == ["1 framework published."]

    # History pages say who changed what.
    response = staff_client.get(admin_url("competencies_framework_history", framework.pk))
    assert response.status_code == 200
    html = response.content.decode()
    text = page_text(html)
    assert "Changed Dana Curator" in text
    assert "Status: draft → published" in text
    records = list(response.context["page_obj"])
    assert records[0].history_user == staff
    assert records[0].status == "published"
    response = staff_client.get(admin_url("competencies_competency_history", third.pk))
    assert response.status_code == 200
    assert "Dana Curator" in response.content.decode()
    edge = Prerequisite.objects.get(prerequisite=second, competency=third)
    response = staff_client.get(admin_url("competencies_prerequisite_history", edge.pk))
    assert "Dana Curator" in response.content.decode()
    assert edge.history.get().history_user == staff


def test_cycle_through_the_competency_inline_is_refused_with_the_message(staff_client):
    first = CompetencyFactory()
    second = CompetencyFactory(framework=first.framework)
    PrerequisiteFactory(prerequisite=first, competency=second)
    change_url = admin_url("competencies_competency_change", first.pk)
    page = staff_client.get(change_url)
    data = change_form_data(page)
    prefix = inline_prefix(page, Prerequisite)
    data[f"{prefix}-0-prerequisite"] = str(second.pk)

    response = staff_client.post(change_url, data)

    assert response.status_code == 200
    message = f"{second.code} -> {first.code} -> {second.code} would form a cycle"
    formset = next(
        f.formset for f in response.context["inline_admin_formsets"] if f.formset.model is Prerequisite
    )
    assert formset.errors[0] == {"__all__": [message]}
    assert escape(message) in response.content.decode()
    assert Prerequisite.objects.count() == 1


def test_prerequisite_admin_adds_a_valid_edge_through_the_service(staff_client, staff):
    first = CompetencyFactory()
    second = CompetencyFactory(framework=first.framework)

    response = staff_client.post(
        admin_url("competencies_prerequisite_add"), {"prerequisite": first.pk, "competency": second.pk}
    )

    assert response.status_code == 302
    edge = Prerequisite.objects.get()
    assert (edge.prerequisite, edge.competency) == (first, second)
    assert edge.history.count() == 1
    assert edge.history.get().history_user == staff


# --- imports -------------------------------------------------------------------------------------

CSV_SOURCE = (
    b"identifier,fullStatement,humanCodingScheme,isChildOf,sequenceNumber\n"
    b",Ratios and proportional relationships,R,,1\n"
    b",Understand the concept of a ratio,R.1,R,1\n"
    b",Use rate language in the context of a ratio,R.2,R,2\n"
)


def test_csv_import_previews_then_applies(staff_client):
    framework = FrameworkFactory(title="Grade 6 ratios", status=Framework.Status.DRAFT)
    response = staff_client.get(admin_url("competencies_framework_import", "csv"))
    assert response.status_code == 200
    assert "Grade 6 ratios" in response.content.decode()

    response = staff_client.post(
        admin_url("competencies_framework_import", "csv"),
        {"file": upload(CSV_SOURCE, "ratios.csv"), "framework": framework.pk},
    )
    assert response.status_code == 302
    preview_url = response["Location"]
    response = staff_client.get(preview_url)
    assert response.status_code == 200
    rows = {row["key"]: row for row in response.context["count_rows"]}
    assert rows["competencies"] == {
        "kind": "Competencies",
        "key": "competencies",
        "created": 3,
        "updated": 0,
        "unchanged": 0,
    }
    assert response.context["target_framework"] == framework
    assert Competency.objects.count() == 0

    response = apply_import(staff_client, preview_url)
    assert response.status_code == 302
    assert response["Location"] == admin_url("competencies_framework_change", framework.pk)
    assert sorted(framework.competencies.values_list("code", flat=True)) == ["R", "R.1", "R.2"]
    assert Competency.objects.get(code="R.2").parent == Competency.objects.get(code="R")

    # The same upload cannot be applied twice.
    response = apply_import(staff_client, preview_url)
    assert response.status_code == 302
    assert response["Location"] == admin_url("competencies_framework_import", "csv")
    assert Competency.objects.count() == 3


def test_csv_import_with_errors_shows_them_and_writes_nothing(staff_client):
    framework = FrameworkFactory(status=Framework.Status.DRAFT)
    source = b"fullStatement,humanCodingScheme,isChildOf\nA statement,A,\n,B,A\n"
    response = staff_client.post(
        admin_url("competencies_framework_import", "csv"),
        {"file": upload(source, "broken.csv"), "framework": framework.pk},
    )
    response = staff_client.get(response["Location"])

    assert response.status_code == 200
    errors = response.context["import_errors"]
    assert len(errors) >= 1
    assert any("row 3" in error for error in errors)
    html = response.content.decode()
    assert "nothing was written" in html
    assert "Apply the import" not in html
    assert Competency.objects.count() == 0


def test_case_upload_rejects_a_file_that_is_not_json(staff_client):
    response = staff_client.post(
        admin_url("competencies_framework_import", "case"), {"file": upload(b"a,b\n", "rows.csv")}
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"file": ["Choose a .json file; “rows.csv” is not one."]}


def test_case_import_of_broken_json_lists_the_problem(staff_client):
    response = staff_client.post(
        admin_url("competencies_framework_import", "case"), {"file": upload(b"{not json", "broken.json")}
    )
    response = staff_client.get(response["Location"])

    assert response.status_code == 200
    assert response.context["import_errors"]
    assert Framework.objects.count() == 0


def test_preview_of_an_unknown_token_sends_back_to_upload(staff_client):
    response = staff_client.get(admin_url("competencies_framework_import_preview", "case", "x" * 32))

    assert response.status_code == 302
    assert response["Location"] == admin_url("competencies_framework_import", "case")


# --- export, search, status actions ----------------------------------------------------------------


def test_export_action_downloads_one_case_package(staff_client):
    report = services.framework_import_case(source=CASE_FILE.read_bytes())
    framework = report.framework

    response = staff_client.post(
        admin_url("competencies_framework_changelist"),
        {"action": "export_case_selected", "_selected_action": [framework.pk]},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="what-standards-could-be.json"'
    package = json.loads(response.content)
    assert package["CFDocument"]["identifier"] == DOCUMENT_ID
    assert len(package["CFItems"]) == 16


def test_export_action_zips_several_frameworks(staff_client):
    imported = services.framework_import_case(source=CASE_FILE.read_bytes()).framework
    other = FrameworkFactory(title="Empty framework")

    response = staff_client.post(
        admin_url("competencies_framework_changelist"),
        {"action": "export_case_selected", "_selected_action": [imported.pk, other.pk]},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["empty-framework.json", "what-standards-could-be.json"]
    assert len(json.loads(archive.read("what-standards-could-be.json"))["CFItems"]) == 16
    assert json.loads(archive.read("empty-framework.json"))["CFItems"] == []


def test_export_button_on_the_framework_page(staff_client):
    framework = services.framework_import_case(source=CASE_FILE.read_bytes()).framework
    page = staff_client.get(admin_url("competencies_framework_change", framework.pk))
    export_url = admin_url("competencies_framework_export", framework.pk)
    assert export_url in page.content.decode()

    response = staff_client.get(export_url)

    assert response.status_code == 200
    assert len(json.loads(response.content)["CFItems"]) == 16


def test_search_by_identifier_finds_exactly_one(staff_client):
    services.framework_import_case(source=CASE_FILE.read_bytes())
    url = admin_url("competencies_competency_changelist")

    response = staff_client.get(url, {"q": RP_6_A_2})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert list(response.context["cl"].result_list) == [Competency.objects.get(identifier=RP_6_A_2)]

    response = staff_client.get(url, {"q": RP_6_A_2.upper()})
    assert response.context["cl"].result_count == 1

    response = staff_client.get(url, {"q": "6.RP.A.3"})
    assert sorted(c.code for c in response.context["cl"].result_list) == [
        "CCSS.Math.Content.6.RP.A.3",
        "CCSS.Math.Content.6.RP.A.3a",
        "CCSS.Math.Content.6.RP.A.3b",
        "CCSS.Math.Content.6.RP.A.3c",
        "CCSS.Math.Content.6.RP.A.3d",
    ]

    response = staff_client.get(admin_url("competencies_framework_changelist"), {"q": DOCUMENT_ID})
    assert response.context["cl"].result_count == 1


def test_competency_tree_is_indented_and_filterable(staff_client):
    services.framework_import_case(source=CASE_FILE.read_bytes())
    FrameworkFactory(title="Other framework")
    url = admin_url("competencies_competency_changelist")

    response = staff_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "tree_queries/tree_admin.js" in html
    assert 'class="collapse-toggle' in html
    assert "text-indent:30px" in html  # a child row sits one level in
    depths = {c.code: c.tree_depth for c in response.context["cl"].result_list}
    assert depths["CCSS.Math.Content.6.RP.A"] == 0
    assert depths["CCSS.Math.Content.6.RP.A.3"] == 1
    assert depths["CCSS.Math.Content.6.RP.A.3a"] == 2

    response = staff_client.get(url, {"item_type": "Cluster"})
    assert sorted(c.code for c in response.context["cl"].result_list) == [
        "CCSS.Math.Content.6.RP.A",
        "CCSS.Math.Content.7.RP.A",
    ]
    response = staff_client.get(url, {"framework_status": "retired"})
    assert response.context["cl"].result_count == 0
    assert "No competency matches this search or filter." in response.content.decode()


def test_education_level_filter(staff_client):
    framework = FrameworkFactory()
    CompetencyFactory(framework=framework, code="G6", education_levels=["06"])
    CompetencyFactory(framework=framework, code="G67", education_levels=["06", "07"])
    CompetencyFactory(framework=framework, code="G7", education_levels=["07"])

    response = staff_client.get(admin_url("competencies_competency_changelist"), {"education_level": "07"})

    assert sorted(c.code for c in response.context["cl"].result_list) == ["G67", "G7"]


def test_retire_action_counts_what_changed(staff_client):
    published = FrameworkFactory(status=Framework.Status.PUBLISHED)
    retired = FrameworkFactory(status=Framework.Status.RETIRED)

    response = staff_client.post(
        admin_url("competencies_framework_changelist"),
        {"action": "retire_selected", "_selected_action": [published.pk, retired.pk]},
    )

    assert response.status_code == 302
    published.refresh_from_db()
    assert published.status == Framework.Status.RETIRED
    assert message_texts(response) == ["1 framework retired.", "1 already retired: left unchanged."]


# --- validation on the change pages ------------------------------------------------------------------


def test_parent_from_another_framework_is_refused(staff_client):
    node = CompetencyFactory()
    stranger = CompetencyFactory()
    change_url = admin_url("competencies_competency_change", node.pk)
    data = change_form_data(staff_client.get(change_url))
    data["parent"] = str(stranger.pk)

    response = staff_client.post(change_url, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["parent"] == [
        f"“{stranger}” belongs to the framework “{stranger.framework}”; choose a parent from “{node.framework}”."
    ]
    node.refresh_from_db()
    assert node.parent is None


def test_parent_loop_is_refused(staff_client):
    root = CompetencyFactory()
    child = CompetencyFactory(framework=root.framework, parent=root)
    change_url = admin_url("competencies_competency_change", root.pk)
    data = change_form_data(staff_client.get(change_url))
    data["parent"] = str(child.pk)

    response = staff_client.post(change_url, data)

    assert response.status_code == 200
    assert "A node cannot be made a descendant of itself." in response.content.decode()
    root.refresh_from_db()
    assert root.parent is None


def test_mastery_scale_needs_exactly_one_mastery_level(staff_client):
    url = admin_url("competencies_masteryscale_add")
    data = change_form_data(staff_client.get(url))
    data.update(
        {
            "name": "Four levels",
            "levels-TOTAL_FORMS": "2",
            "levels-0-name": "Exceeds",
            "levels-0-points": "4",
            "levels-0-is_mastery": "on",
            "levels-0-color": "#198754",
            "levels-1-name": "Mastery",
            "levels-1-points": "3",
            "levels-1-is_mastery": "on",
            "levels-1-color": "#0d6efd",
        }
    )

    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.non_form_errors() == [
        "Mark exactly one level as the mastery level; 2 are marked: “Exceeds”, “Mastery”."
    ]

    del data["levels-0-is_mastery"], data["levels-1-is_mastery"]
    response = staff_client.post(url, data)
    assert response.context["inline_admin_formsets"][0].formset.non_form_errors() == [
        "Mark exactly one level as the mastery level; none is marked."
    ]
    assert MasteryScale.objects.count() == 0

    data["levels-1-is_mastery"] = "on"
    response = staff_client.post(url, data)
    assert response.status_code == 302
    scale = MasteryScale.objects.get(name="Four levels")
    assert [(level.name, level.is_mastery) for level in scale.levels.all()] == [
        ("Exceeds", False),
        ("Mastery", True),
    ]


def test_mastery_level_can_move_to_another_level(staff_client):
    scale = MasteryScaleFactory()
    change_url = admin_url("competencies_masteryscale_change", scale.pk)
    data = change_form_data(staff_client.get(change_url))
    names = {data[f"levels-{i}-name"]: i for i in range(4)}
    del data[f"levels-{names['Mastery']}-is_mastery"]
    data[f"levels-{names['Exceeds']}-is_mastery"] = "on"

    response = staff_client.post(change_url, data)

    assert response.status_code == 302
    assert MasteryLevel.objects.get(scale=scale, is_mastery=True).name == "Exceeds"


def test_pacing_target_must_come_from_the_guides_framework(staff_client):
    framework = FrameworkFactory()
    inside = CompetencyFactory(framework=framework)
    outside = CompetencyFactory()
    section = SectionFactory()
    url = admin_url("competencies_pacingguide_add")
    data = change_form_data(staff_client.get(url))
    data.update(
        {
            "section": str(section.pk),
            "framework": str(framework.pk),
            "targets-0-competency": str(outside.pk),
            "targets-0-target_date": "2026-10-01",
        }
    )

    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert PacingGuide.objects.count() == 0

    data["targets-0-competency"] = str(inside.pk)
    response = staff_client.post(url, data)
    assert response.status_code == 302
    target = PacingTarget.objects.get()
    assert (target.guide.section, target.competency, target.target_date) == (
        section,
        inside,
        datetime.date(2026, 10, 1),
    )


# --- every page renders; who may enter ----------------------------------------------------------------


@pytest.fixture
def one_of_each():
    scale = MasteryScaleFactory()
    framework = FrameworkFactory(mastery_scale=scale)
    root = CompetencyFactory(framework=framework, education_levels=["06"], item_type="Cluster")
    leaf = CompetencyFactory(framework=framework, parent=root)
    edge = PrerequisiteFactory(prerequisite=root, competency=leaf)
    resource = LearningResourceFactory(competency=leaf)
    association = CaseAssociation.objects.create(
        framework=framework,
        identifier="3f0d0a5e-8f9b-4c61-a0a9-2f1c6d1e9b11",
        association_type="isRelatedTo",
        origin_identifier=str(leaf.identifier),
        destination_identifier="urn:example:outside",
        destination_title="A standard elsewhere",
    )
    guide = PacingGuide.objects.create(section=SectionFactory(), framework=framework)
    PacingTarget.objects.create(guide=guide, competency=leaf, target_date=datetime.date(2026, 11, 2))
    return {
        "framework": framework,
        "competency": leaf,
        "prerequisite": edge,
        "learningresource": resource,
        "caseassociation": association,
        "masteryscale": scale,
        "pacingguide": guide,
    }


CATALOG_MODELS = [
    "framework",
    "competency",
    "prerequisite",
    "learningresource",
    "caseassociation",
    "masteryscale",
    "pacingguide",
]


@pytest.mark.parametrize("model_name", CATALOG_MODELS)
def test_every_catalog_page_renders_for_staff(staff_client, one_of_each, model_name):
    obj = one_of_each[model_name]
    pages = [
        admin_url(f"competencies_{model_name}_changelist"),
        admin_url(f"competencies_{model_name}_change", obj.pk),
        admin_url(f"competencies_{model_name}_history", obj.pk),
    ]
    if model_name != "caseassociation":
        pages.append(admin_url(f"competencies_{model_name}_add"))
    for url in pages:
        response = staff_client.get(url)
        assert response.status_code == 200, url
    assert staff_client.get(admin_url("competencies_caseassociation_add")).status_code == 403


def test_empty_lists_explain_what_to_do(staff_client):
    response = staff_client.get(admin_url("competencies_framework_changelist"))
    assert "No frameworks yet." in response.content.decode()
    response = staff_client.get(admin_url("competencies_competency_changelist"))
    assert "The catalog has no competencies yet." in response.content.decode()


def test_autocomplete_finds_competencies_for_the_parent_widget(staff_client):
    competency = CompetencyFactory(code="7.RP.A.1", statement="Compute unit rates")
    response = staff_client.get(
        reverse("admin:autocomplete"),
        {
            "term": "unit rates",
            "app_label": "competencies",
            "model_name": "competency",
            "field_name": "parent",
        },
    )

    assert response.status_code == 200
    assert response.json()["results"] == [{"id": str(competency.pk), "text": str(competency)}]


@pytest.mark.parametrize("make_user", [StudentFactory, TeacherFactory, None])
def test_non_staff_are_sent_to_login(make_user):
    client = Client()
    if make_user is not None:
        user = make_user()
        assert client.login(username=user.username, password=PASSWORD)
    for url in [
        admin_url("competencies_competency_changelist"),
        admin_url("competencies_framework_import", "case"),
    ]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_tree_move_stays_within_the_framework(staff_client):
    root = CompetencyFactory(code="R")
    leaf = CompetencyFactory(framework=root.framework, code="L")
    stranger = CompetencyFactory(code="S")
    move_url = admin_url("competencies_competency_changelist") + "move-node/"

    response = staff_client.post(
        move_url, {"move": leaf.pk, "relative_to": stranger.pk, "position": "last-child"}
    )
    assert response.content == b"error"
    leaf.refresh_from_db()
    assert leaf.parent is None

    response = staff_client.post(
        move_url, {"move": leaf.pk, "relative_to": root.pk, "position": "last-child"}
    )
    assert response.content == b"ok"
    leaf.refresh_from_db()
    assert leaf.parent == root


def test_abandoned_uploads_are_swept(staff_client):
    leftover = Path(tempfile.gettempdir()) / "mastery-catalog-import-abandoned-for-two-days"
    leftover.write_bytes(b"{}")
    two_days_ago = time.time() - 2 * 24 * 60 * 60
    os.utime(leftover, (two_days_ago, two_days_ago))

    import_case_through_admin(staff_client)

    assert not leftover.exists()


def test_an_upload_belongs_to_the_session_that_made_it(staff_client):
    preview_url = import_case_through_admin(staff_client)
    other_staff = StaffFactory()
    other_client = Client()
    assert other_client.login(username=other_staff.username, password=PASSWORD)

    response = other_client.post(preview_url, {"token": preview_url.rstrip("/").rsplit("/", 1)[-1]})

    assert response.status_code == 302
    assert response["Location"] == admin_url("competencies_framework_import", "case")
    assert Framework.objects.count() == 0
    assert staff_client.get(preview_url).status_code == 200


def test_prerequisite_search_by_either_ends_identifier(staff_client):
    edge = PrerequisiteFactory()
    PrerequisiteFactory()
    url = admin_url("competencies_prerequisite_changelist")

    for identifier in [edge.identifier, edge.prerequisite.identifier, edge.competency.identifier]:
        response = staff_client.get(url, {"q": str(identifier)})
        assert list(response.context["cl"].result_list) == [edge]


def test_removing_a_prerequisite_in_the_inline_keeps_its_history(staff_client, staff):
    edge = PrerequisiteFactory()
    change_url = admin_url("competencies_competency_change", edge.competency.pk)
    page = staff_client.get(change_url)
    data = change_form_data(page)
    data[f"{inline_prefix(page, Prerequisite)}-0-DELETE"] = "on"

    response = staff_client.post(change_url, data)

    assert response.status_code == 302
    assert Prerequisite.objects.count() == 0
    deleted = Prerequisite.history.filter(identifier=edge.identifier).latest("history_date")
    assert (deleted.history_type, deleted.history_user) == ("-", staff)


def test_deleting_an_edge_in_the_prerequisite_admin(staff_client, staff):
    edge = PrerequisiteFactory()

    response = staff_client.post(admin_url("competencies_prerequisite_delete", edge.pk), {"post": "yes"})

    assert response.status_code == 302
    assert Prerequisite.objects.count() == 0
    assert Prerequisite.history.filter(history_type="-").get().history_user == staff
