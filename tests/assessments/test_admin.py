"""The item bank admin, driven through its own URLs as district staff would use it."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assessments import services
from assessments.models import (
    Assessment,
    BlueprintRule,
    Item,
    ItemAlignment,
    ItemChoice,
    ItemStatistics,
    RescoreJob,
)
from tests.factories import (
    AssessmentFactory,
    BlueprintRuleFactory,
    CompetencyFactory,
    ItemFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)
from tests.factories.roster import PASSWORD

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 10, 5, 9, 0, tzinfo=datetime.UTC)
PREVIEW = re.compile(r'<div class="item-preview".*?</div>\s*(?=</div>)', re.DOTALL)


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


@pytest.fixture
def ratio_item():
    """A single-choice item on 6.RP.A.1 whose key is "3 : 4"."""
    competency = CompetencyFactory(code="6.RP.A.1", statement="Understand the concept of a ratio")
    item = ItemFactory(
        type=Item.Type.SINGLE_CHOICE,
        stem="A bag has **3 red** and 4 blue marbles. What is the ratio of red to blue?",
        accepted_answers=[],
        aligned_to=competency,
    )
    ItemChoice.objects.create(item=item, text="3 : 4", is_correct=True, position=1)
    ItemChoice.objects.create(item=item, text="4 : 3", position=2)
    ItemChoice.objects.create(item=item, text="3 : 7", position=3)
    return item


def item_form_data(item: Item, **overrides: Any) -> dict[str, Any]:
    """The change form of ``item`` as the browser would post it unchanged (overrides applied)."""
    data: dict[str, Any] = {
        "district": item.district_id or "",
        "type": item.type,
        "status": item.status,
        "stem": item.stem,
        "max_points": str(item.max_points),
        "answer_value": "" if item.answer_value is None else str(item.answer_value),
        "answer_tolerance": str(item.answer_tolerance),
        "accepted_answers": "[]"
        if not item.accepted_answers
        else str(item.accepted_answers).replace("'", '"'),
        "change_reason": "",
    }
    if item.partial_credit:
        data["partial_credit"] = "on"
    choices = list(item.choices.order_by("position"))
    data.update(
        {
            "choices-TOTAL_FORMS": len(choices),
            "choices-INITIAL_FORMS": len(choices),
            "choices-MIN_NUM_FORMS": 0,
            "choices-MAX_NUM_FORMS": 1000,
        }
    )
    for index, choice in enumerate(choices):
        data[f"choices-{index}-id"] = choice.pk
        data[f"choices-{index}-item"] = item.pk
        data[f"choices-{index}-position"] = choice.position
        data[f"choices-{index}-text"] = choice.text
        if choice.is_correct:
            data[f"choices-{index}-is_correct"] = "on"
    levels = list(item.rubric_levels.all())
    data.update(
        {
            "rubric_levels-TOTAL_FORMS": len(levels),
            "rubric_levels-INITIAL_FORMS": len(levels),
            "rubric_levels-MIN_NUM_FORMS": 0,
            "rubric_levels-MAX_NUM_FORMS": 1000,
        }
    )
    for index, level in enumerate(levels):
        data[f"rubric_levels-{index}-id"] = level.pk
        data[f"rubric_levels-{index}-item"] = item.pk
        data[f"rubric_levels-{index}-points"] = str(level.points)
        data[f"rubric_levels-{index}-description"] = level.description
    alignments = list(item.alignments.all())
    data.update(
        {
            "alignments-TOTAL_FORMS": len(alignments),
            "alignments-INITIAL_FORMS": len(alignments),
            "alignments-MIN_NUM_FORMS": 0,
            "alignments-MAX_NUM_FORMS": 1000,
        }
    )
    for index, alignment in enumerate(alignments):
        data[f"alignments-{index}-id"] = alignment.pk
        data[f"alignments-{index}-item"] = item.pk
        data[f"alignments-{index}-competency"] = alignment.competency_id
        data[f"alignments-{index}-points"] = str(alignment.points)
    data.update(overrides)
    return data


def completed_attempt_on(item: Item, *, answer_choice: ItemChoice, now: datetime.datetime = T0):
    """A student's real attempt (through the services) answering ``item`` with ``answer_choice``."""
    competency = item.alignments.get().competency
    assessment = AssessmentFactory(competency=competency)
    BlueprintRuleFactory(assessment=assessment, competency=competency, items=[item], draw_count=1)
    attempt = services.attempt_start(assessment=assessment, student=StudentFactory(), now=now, seed=1)
    services.response_save(attempt=attempt, item=item, answer=answer_choice.pk, now=now)
    return services.attempt_submit(attempt=attempt, now=now + datetime.timedelta(minutes=5))


# --- the preview ----------------------------------------------------------------------------------


def test_preview_shows_the_rendered_stem_and_the_choices_but_not_the_key(staff_client, ratio_item):
    response = staff_client.get(admin_url("assessments_item_change", ratio_item.pk))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Preview: what the student sees" in page
    preview = PREVIEW.search(page).group(0)
    assert "<strong>3 red</strong>" in preview
    for text in ("3 : 4", "4 : 3", "3 : 7"):
        assert f'<input type="radio" disabled> {text}</label>' in preview
    assert "correct" not in preview.lower()
    assert "checked" not in preview
    assert "is_correct" not in preview


def test_preview_is_sanitised_and_shows_the_answer_box_of_each_type(staff_client):
    item = ItemFactory(
        type=Item.Type.NUMERIC,
        stem="Speed: \\(d / t\\) <script>alert(1)</script> km per hour?",
        answer_value=Decimal("12.5"),
        accepted_answers=[],
    )
    preview = PREVIEW.search(
        staff_client.get(admin_url("assessments_item_change", item.pk)).content.decode()
    ).group(0)
    assert "<script>" not in preview
    assert "\\(d / t\\)" in preview
    assert 'inputmode="decimal"' in preview
    assert "12.5" not in preview


# --- every page renders ---------------------------------------------------------------------------


def test_every_bank_page_renders(staff_client, ratio_item):
    attempt = completed_attempt_on(ratio_item, answer_choice=ratio_item.choices.get(is_correct=True))
    assessment = attempt.assessment
    ItemStatistics.objects.create(
        item=ratio_item,
        response_count=25,
        facility=Decimal("0.9700"),
        discrimination=Decimal("0.1200"),
        is_suspect=True,
        suspect_reasons=["facility 0.97 above 0.95: almost everyone gets it right"],
        computed_at=timezone.now(),
    )
    urls = [
        admin_url("assessments_item_changelist"),
        admin_url("assessments_item_changelist") + "?suspect=yes",
        admin_url("assessments_item_changelist") + "?suspect=unknown&type=single_choice",
        admin_url("assessments_item_changelist") + "?o=7",  # sorted by facility
        admin_url("assessments_item_add"),
        admin_url("assessments_item_change", ratio_item.pk),
        admin_url("assessments_item_history", ratio_item.pk),
        admin_url("assessments_assessment_changelist"),
        admin_url("assessments_assessment_add"),
        admin_url("assessments_assessment_change", assessment.pk),
        admin_url("assessments_attempt_changelist"),
        admin_url("assessments_attempt_change", attempt.pk),
    ]
    for url in urls:
        response = staff_client.get(url)
        assert response.status_code == 200, url

    attempt_page = staff_client.get(admin_url("assessments_attempt_change", attempt.pk)).content.decode()
    assert "Form (the items drawn for this attempt)" in attempt_page
    assert 'name="_save"' not in attempt_page  # read-only
    assert staff_client.get(admin_url("assessments_attempt_add")).status_code == 403
    item_page = staff_client.get(admin_url("assessments_item_change", ratio_item.pk)).content.decode()
    assert "almost everyone gets it right" in item_page


def test_changelist_shows_statistics_and_filters_suspect_items(staff_client, ratio_item):
    healthy = ItemFactory(stem="What is 12 divided by 4?", accepted_answers=["3"])
    ItemStatistics.objects.create(
        item=ratio_item,
        response_count=25,
        facility=Decimal("0.9700"),
        discrimination=Decimal("0.1200"),
        is_suspect=True,
        computed_at=timezone.now(),
    )
    ItemStatistics.objects.create(
        item=healthy,
        response_count=25,
        facility=Decimal("0.6100"),
        discrimination=Decimal("0.4200"),
        is_suspect=False,
        computed_at=timezone.now(),
    )
    unmeasured = ItemFactory(stem="A brand new question")

    page = staff_client.get(admin_url("assessments_item_changelist")).content.decode()
    assert "0.9700" in page and "0.4200" in page
    assert "suspect items" in page  # the filter

    suspect_page = staff_client.get(admin_url("assessments_item_changelist") + "?suspect=yes")
    assert [item.pk for item in suspect_page.context["cl"].result_list] == [ratio_item.pk]
    healthy_page = staff_client.get(admin_url("assessments_item_changelist") + "?suspect=no")
    assert [item.pk for item in healthy_page.context["cl"].result_list] == [healthy.pk]
    unknown_page = staff_client.get(admin_url("assessments_item_changelist") + "?suspect=unknown")
    assert [item.pk for item in unknown_page.context["cl"].result_list] == [unmeasured.pk]


def test_competency_autocomplete_serves_the_alignment_and_blueprint_widgets(staff_client):
    competency = CompetencyFactory(code="6.RP.A.3c", statement="Find a percent of a quantity")
    for model_name, field_name in (("itemalignment", "competency"), ("blueprintrule", "competency")):
        response = staff_client.get(
            reverse("admin:autocomplete"),
            {
                "term": "percent",
                "app_label": "assessments",
                "model_name": model_name,
                "field_name": field_name,
            },
        )
        assert response.status_code == 200
        assert [row["id"] for row in response.json()["results"]] == [str(competency.pk)]
    item = ItemFactory(stem="What is 30% of 50?", accepted_answers=["15"])
    response = staff_client.get(
        reverse("admin:autocomplete"),
        {"term": "30%", "app_label": "assessments", "model_name": "blueprintrule", "field_name": "items"},
    )
    assert [row["id"] for row in response.json()["results"]] == [str(item.pk)]


# --- editing the key ------------------------------------------------------------------------------


def test_a_stem_only_change_keeps_the_key_version_and_starts_no_job(staff_client, ratio_item):
    url = admin_url("assessments_item_change", ratio_item.pk)
    response = staff_client.post(url, item_form_data(ratio_item, stem="Marbles: red to blue?"))

    assert response.status_code == 302, response.context and response.context["errors"]
    ratio_item.refresh_from_db()
    assert ratio_item.stem == "Marbles: red to blue?"
    assert ratio_item.key_version == 1
    assert not RescoreJob.objects.exists()


def test_changing_the_correct_choice_raises_the_key_version_and_starts_a_rescore(
    staff, staff_client, ratio_item
):
    right = ratio_item.choices.get(text="3 : 4")
    wrong = ratio_item.choices.get(text="4 : 3")
    attempt = completed_attempt_on(ratio_item, answer_choice=wrong)
    assert attempt.score == Decimal("0.00")
    data = item_form_data(ratio_item, change_reason="The key was reversed")
    right_index = next(i for i in range(3) if data[f"choices-{i}-id"] == right.pk)
    wrong_index = next(i for i in range(3) if data[f"choices-{i}-id"] == wrong.pk)
    del data[f"choices-{right_index}-is_correct"]
    data[f"choices-{wrong_index}-is_correct"] = "on"

    response = staff_client.post(admin_url("assessments_item_change", ratio_item.pk), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    ratio_item.refresh_from_db()
    assert ratio_item.key_version == 2
    job = RescoreJob.objects.get()
    assert list(job.items.all()) == [ratio_item]
    assert job.requested_by == staff
    assert job.reason == "The key was reversed"
    message = [str(m) for m in get_messages(response.wsgi_request)]
    assert f"Key changed: rescoring job #{job.pk} started for 1 responses" in " ".join(message)
    # Who changed what, in the item's history.
    latest = ratio_item.history.first()
    assert latest.history_user == staff
    assert latest.history_change_reason == "The key was reversed"


def test_changing_an_alignment_through_the_admin_records_a_key_change(staff_client, ratio_item):
    data = item_form_data(ratio_item)
    data["alignments-0-points"] = "2.00"

    response = staff_client.post(admin_url("assessments_item_change", ratio_item.pk), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    ratio_item.refresh_from_db()
    assert ratio_item.key_version == 2
    assert ItemAlignment.objects.get(item=ratio_item).points == Decimal("2.00")


def test_a_single_choice_item_with_two_correct_choices_is_refused(staff_client, ratio_item):
    data = item_form_data(ratio_item)
    data["choices-1-is_correct"] = "on"

    response = staff_client.post(admin_url("assessments_item_change", ratio_item.pk), data)

    assert response.status_code == 200
    assert "exactly one of them correct" in response.content.decode()
    assert ratio_item.choices.filter(is_correct=True).count() == 1
    assert Item.objects.get(pk=ratio_item.pk).key_version == 1


# --- the blueprint editor -------------------------------------------------------------------------


def test_staff_build_a_mastery_check_with_its_blueprint(staff_client, ratio_item):
    competency = ratio_item.alignments.get().competency
    response = staff_client.post(
        admin_url("assessments_assessment_add"),
        {
            "district": "",
            "title": "Ratios: mastery check",
            "kind": Assessment.Kind.MASTERY_CHECK,
            "competency": competency.pk,
            "status": Assessment.Status.ACTIVE,
            "time_limit_minutes": "20",
            "max_attempts": "",
            "cooldown_hours": "12",
            "remediation": Assessment.Remediation.VIEW_RESOURCES,
            "blueprint_rules-TOTAL_FORMS": 1,
            "blueprint_rules-INITIAL_FORMS": 0,
            "blueprint_rules-MIN_NUM_FORMS": 0,
            "blueprint_rules-MAX_NUM_FORMS": 1000,
            "blueprint_rules-0-position": 1,
            "blueprint_rules-0-competency": competency.pk,
            "blueprint_rules-0-draw_count": 1,
            "blueprint_rules-0-items": [ratio_item.pk],
        },
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    assessment = Assessment.objects.get(title="Ratios: mastery check")
    assert (assessment.time_limit_minutes, assessment.cooldown_hours) == (20, 12)
    rule = BlueprintRule.objects.get(assessment=assessment)
    assert (rule.competency, rule.draw_count, list(rule.items.all())) == (competency, 1, [ratio_item])


@pytest.mark.parametrize("make_user", [StudentFactory, TeacherFactory])
def test_non_staff_are_sent_to_login(make_user, ratio_item):
    client = Client()
    user = make_user()
    assert client.login(username=user.username, password=PASSWORD)
    response = client.get(admin_url("assessments_item_change", ratio_item.pk))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
