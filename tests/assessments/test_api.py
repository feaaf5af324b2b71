"""The student attempt API and the staff item bank, through HTTP."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from assessments.models import Attempt, AttemptItem, Item, RescoreJob, Response
from tests.assessments.conftest import api_client_for, assessment_with
from tests.factories import (
    AssessmentFactory,
    BlueprintRuleFactory,
    CompetencyFactory,
    DistrictFactory,
    FrameworkFactory,
    ItemFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = pytest.mark.django_db

KEY_FIELDS = {
    "correct",
    "is_correct",
    "accepted",
    "accepted_answers",
    "answer_value",
    "answer_tolerance",
    "tolerance",
    "value",
    "rubric",
    "rubric_levels",
    "key_version",
    "key_version_seen",
    "partial_credit",
    "seed",
}


def start(client, assessment):
    return client.post(reverse("attempt-start", args=[assessment.pk]))


def put_answer(client, attempt_id, item_id, answer):
    return client.put(
        reverse("attempt-response", args=[attempt_id, item_id]), {"answer": answer}, format="json"
    )


def test_a_student_takes_a_mastery_check_start_to_result(bank):
    assessment = assessment_with([*bank.auto_items(), bank.extended], bank.ratios, time_limit_minutes=30)
    client = api_client_for(bank.student)

    started = start(client, assessment)

    assert started.status_code == 201
    body = started.json()
    attempt = Attempt.objects.get(pk=body["id"])
    assert body["deadline"] == attempt.deadline.isoformat().replace("+00:00", "Z")
    assert attempt.deadline == attempt.started_at + datetime.timedelta(minutes=30)
    # the payload lists exactly the stored form, in order
    stored = list(
        AttemptItem.objects.filter(attempt=attempt).order_by("position").values_list("item_id", flat=True)
    )
    assert [item["id"] for item in body["items"]] == stored
    by_id = {item["id"]: item for item in body["items"]}
    assert by_id[bank.single.pk]["stem"] == "<p>Pick <strong>4</strong></p>"
    assert by_id[bank.single.pk]["choices"] == [
        {"id": bank.choice["single_right"].pk, "text": "four"},
        {"id": bank.choice["single_wrong"].pk, "text": "five"},
    ]
    assert by_id[bank.numeric.pk]["stem"] == "<p>Pi to four places: \\(\\pi \\approx ?\\)</p>"
    assert by_id[bank.short.pk]["choices"] == []

    answers = {
        bank.single.pk: bank.choice["single_right"].pk,  # right: 1 of 1
        bank.multiple.pk: [bank.choice["two"].pk, bank.choice["six"].pk, bank.choice["seven"].pk],  # 1 of 3
        bank.numeric.pk: "31.37",  # |31.37 - 31.4159| = 0.0459 <= 0.05: 2 of 2
        bank.short.pk: "\uff43\uff41\uff52\uff42\uff4f\uff4e  Dioxide ",  # NFKC + casefold + whitespace: 1 of 1
        bank.extended.pk: "Price per one unit.",
    }
    for item_id, answer in answers.items():
        saved = put_answer(client, attempt.pk, item_id, answer)
        assert saved.status_code == 200, saved.json()
    assert put_answer(client, attempt.pk, bank.short.pk, "oxygen").status_code == 200  # autosave overwrites
    assert put_answer(client, attempt.pk, bank.short.pk, answers[bank.short.pk]).status_code == 200

    submitted = client.post(reverse("attempt-submit", args=[attempt.pk]))

    assert submitted.status_code == 200
    result = submitted.json()
    assert (result["status"], result["score"], result["max_score"], result["competencies"]) == (
        "submitted",
        None,
        "11.00",
        [],
    )
    scores = {row["item"]: (row["score"], row["needs_grading"]) for row in result["responses"]}
    assert scores == {
        bank.single.pk: ("1.00", False),
        bank.multiple.pk: ("1.00", False),  # (2 right - 1 wrong) / 3 correct * 3 points
        bank.numeric.pk: ("2.00", False),
        bank.short.pk: ("1.00", False),
        bank.extended.pk: (None, True),
    }

    from assessments import services

    services.response_grade(
        response=Response.objects.get(attempt=attempt, item=bank.extended),
        points=2,
        grader=TeacherFactory(),
        feedback="Add an example.",
    )
    final = client.get(reverse("attempt-detail", args=[attempt.pk])).json()
    assert (final["status"], final["score"], final["max_score"]) == ("completed", "7.00", "11.00")
    # ratios: 7 of 11 -> 2.545 -> 2.55 on the 4-point scale -> level 2, not met;
    # rates: the single-choice item only, right -> 4.00 -> met
    assert final["competencies"] == [
        {"id": bank.ratios.pk, "code": "7.RP.A.1", "score": "2.55", "level": "2.00", "met": False},
        {"id": bank.rates.pk, "code": "7.RP.A.2", "score": "4.00", "level": "4.00", "met": True},
    ]
    essay = next(row for row in final["responses"] if row["item"] == bank.extended.pk)
    assert (essay["score"], essay["feedback"]) == ("2.00", "Add an example.")

    again = client.post(reverse("attempt-submit", args=[attempt.pk]))
    assert again.status_code == 200
    assert again.json() == final


def test_submit_of_an_all_auto_attempt_returns_competencies_at_once(bank):
    assessment = assessment_with([bank.single], bank.ratios)
    client = api_client_for(bank.student)
    attempt_id = start(client, assessment).json()["id"]
    put_answer(client, attempt_id, bank.single.pk, bank.choice["single_wrong"].pk)

    result = client.post(reverse("attempt-submit", args=[attempt_id])).json()

    assert (result["status"], result["score"]) == ("completed", "0.00")
    assert [(row["code"], row["score"], row["met"]) for row in result["competencies"]] == [
        ("7.RP.A.1", "0.00", False),
        ("7.RP.A.2", "0.00", False),
    ]


def find_keys(payload, found: set[str]) -> set[str]:
    if isinstance(payload, dict):
        for key, value in payload.items():
            found.add(key)
            find_keys(value, found)
    elif isinstance(payload, list):
        for value in payload:
            find_keys(value, found)
    return found


def test_no_student_endpoint_of_an_open_attempt_reveals_the_key(bank):
    assessment = assessment_with([*bank.auto_items(), bank.extended], bank.ratios)
    client = api_client_for(bank.student)
    started = start(client, assessment)
    attempt_id = started.json()["id"]
    payloads = [
        started,
        start(client, assessment),  # resuming the open attempt
        put_answer(client, attempt_id, bank.numeric.pk, "2"),
        put_answer(client, attempt_id, bank.short.pk, "oxygen"),
        put_answer(client, attempt_id, bank.single.pk, bank.choice["single_wrong"].pk),
        client.get(reverse("attempt-detail", args=[attempt_id])),
    ]
    secrets = ["31.4159", "0.05", "Carbon dioxide", "CO2", "Secret rubric"]
    for response in payloads:
        assert response.status_code in (200, 201)
        payload = response.json()
        assert not (find_keys(payload, set()) & KEY_FIELDS), response.request["PATH_INFO"]
        text = json.dumps(payload)
        for secret in secrets:
            assert secret not in text, (secret, response.request["PATH_INFO"])
        # no choice is marked in any way other than id and text
        for item in payload.get("items", []):
            for choice in item["choices"]:
                assert set(choice) == {"id", "text"}


def test_autosave_after_the_deadline_or_after_submit_is_409_and_changes_nothing(bank):
    assessment = assessment_with([bank.short, bank.numeric], bank.ratios, time_limit_minutes=5)
    client = api_client_for(bank.student)
    attempt_id = start(client, assessment).json()["id"]
    assert put_answer(client, attempt_id, bank.short.pk, "CO2").status_code == 200
    Attempt.objects.filter(pk=attempt_id).update(
        started_at=timezone.now() - datetime.timedelta(minutes=10),
        deadline=timezone.now() - datetime.timedelta(minutes=5),
    )

    late = put_answer(client, attempt_id, bank.short.pk, "oxygen")
    assert late.status_code == 409
    assert late.json() == {"detail": "The time limit has passed; this attempt takes no more answers."}
    assert put_answer(client, attempt_id, bank.numeric.pk, "3").status_code == 409
    assert list(Response.objects.values_list("item_id", "answer")) == [(bank.short.pk, "CO2")]

    client.post(reverse("attempt-submit", args=[attempt_id]))
    after = put_answer(client, attempt_id, bank.short.pk, "oxygen")
    assert after.status_code == 409
    assert after.json() == {"detail": "This attempt has been submitted; it takes no more answers."}
    assert Response.objects.get(item=bank.short).answer == "CO2"


def test_bad_answer_shapes_are_400_with_a_message(bank):
    assessment = assessment_with([bank.multiple, bank.numeric], bank.ratios)
    client = api_client_for(bank.student)
    attempt_id = start(client, assessment).json()["id"]

    wrong_shape = put_answer(client, attempt_id, bank.multiple.pk, "two")
    assert wrong_shape.status_code == 400
    assert wrong_shape.json() == {"detail": ["A multiple-choice answer must be a list of choice ids."]}
    assert put_answer(client, attempt_id, bank.numeric.pk, "pi").status_code == 400
    no_answer = client.put(reverse("attempt-response", args=[attempt_id, bank.numeric.pk]), {}, format="json")
    assert no_answer.status_code == 400
    assert no_answer.json() == {"detail": 'Send {"answer": ...}.'}
    not_json = client.put(
        reverse("attempt-response", args=[attempt_id, bank.numeric.pk]),
        "[1, 2",
        content_type="application/json",
    )
    assert not_json.status_code == 400
    assert put_answer(client, attempt_id, bank.short.pk, "CO2").status_code == 404  # not on the form
    assert put_answer(client, attempt_id, 999999, "CO2").status_code == 404
    assert not Response.objects.exists()


def test_a_student_sees_only_their_own_attempts(bank):
    assessment = assessment_with([bank.short], bank.ratios)
    attempt_id = start(api_client_for(bank.student), assessment).json()["id"]
    other = api_client_for(StudentFactory(district=bank.student.district))

    assert other.get(reverse("attempt-detail", args=[attempt_id])).status_code == 404
    assert put_answer(other, attempt_id, bank.short.pk, "CO2").status_code == 404
    assert other.post(reverse("attempt-submit", args=[attempt_id])).status_code == 404
    assert other.get(reverse("attempt-detail", args=[999999])).json() == {"detail": "Not found."}
    assert Attempt.objects.get().status == "in_progress"


def test_only_students_use_the_attempt_api_and_only_on_visible_assessments(bank):
    assessment = assessment_with([bank.short], bank.ratios)
    assert start(api_client_for(TeacherFactory()), assessment).status_code == 403
    other_district = AssessmentFactory(district=DistrictFactory())
    BlueprintRuleFactory(assessment=other_district, competency=bank.ratios, items=[bank.short])
    assert start(api_client_for(bank.student), other_district).status_code == 404
    draft = assessment_with([bank.short], bank.rates, status="draft")
    assert start(api_client_for(bank.student), draft).status_code == 404


def test_a_closed_gate_is_409_with_the_reason(bank):
    assessment = assessment_with([bank.short], bank.ratios, max_attempts=1)
    client = api_client_for(bank.student)
    attempt_id = start(client, assessment).json()["id"]
    client.post(reverse("attempt-submit", args=[attempt_id]))

    refused = start(client, assessment)

    assert refused.status_code == 409
    assert refused.json() == {"detail": "All 1 attempts have been used."}


def test_a_retake_through_the_api_gets_a_different_form(bank):
    competency = CompetencyFactory(framework=bank.ratios.framework)
    items = [ItemFactory(aligned_to=competency) for _ in range(6)]
    assessment = AssessmentFactory(competency=competency)
    BlueprintRuleFactory(assessment=assessment, competency=competency, draw_count=3)
    client = api_client_for(bank.student)

    first = start(client, assessment).json()
    client.post(reverse("attempt-submit", args=[first["id"]]))
    second = start(client, assessment).json()

    first_ids = [item["id"] for item in first["items"]]
    second_ids = [item["id"] for item in second["items"]]
    assert set(first_ids).isdisjoint(second_ids)
    assert set(first_ids) | set(second_ids) == {item.pk for item in items}
    for payload in (first, second):
        stored = AttemptItem.objects.filter(attempt_id=payload["id"]).order_by("position")
        assert [row.item_id for row in stored] == [item["id"] for item in payload["items"]]


@pytest.mark.parametrize("size", [3, 12])
def test_start_and_submit_query_counts_are_flat_through_the_api(django_assert_num_queries, size):
    competency = CompetencyFactory()
    items = [ItemFactory(aligned_to=competency) for _ in range(size)]
    assessment = assessment_with(items, competency)
    student = StudentFactory()
    client = api_client_for(student)
    # assessment, then the start service (savepoint, previous, rules, pinned pool, previous form skipped
    # on a first attempt, inner savepoint, insert, bulk insert, release both), then the payload (form,
    # choices), and the progress layer's start gate (one query: the prerequisites' mastery)
    with django_assert_num_queries(13):
        attempt_id = start(client, assessment).json()["id"]
    # submit: savepoint, the student's attempt locked, form, responses, insert unanswered, alignments
    # with their scales' levels, insert competency scores, save, release; the payload is built from
    # what the submit read and wrote (no choice items here: no choice query)
    with django_assert_num_queries(9):
        assert client.post(reverse("attempt-submit", args=[attempt_id])).status_code == 200


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="elsewhere the autosave is response_save")
def test_autosave_through_the_api_is_one_read_and_one_write(bank, django_assert_num_queries):
    assessment = assessment_with([bank.single, bank.numeric], bank.ratios)
    client = api_client_for(bank.student)
    attempt_id = start(client, assessment).json()["id"]
    # the attempt with the item on its form and the item's choice ids, then the guarded upsert
    for item_id, answer in [
        (bank.single.pk, bank.choice["single_wrong"].pk),
        (bank.single.pk, bank.choice["single_right"].pk),
        (bank.numeric.pk, "31.4"),
    ]:
        with django_assert_num_queries(2):
            saved = put_answer(client, attempt_id, item_id, answer)
        assert saved.status_code == 200
        assert (saved.json()["item"], saved.json()["answer"]) == (item_id, answer)
    assert dict(Response.objects.values_list("item_id", "answer")) == {
        bank.single.pk: bank.choice["single_right"].pk,
        bank.numeric.pk: "31.4",
    }


def test_submit_with_choice_items_query_count(bank, django_assert_num_queries):
    assessment = assessment_with(bank.auto_items(), bank.ratios)
    client = api_client_for(bank.student)
    attempt_id = start(client, assessment).json()["id"]
    answers = {
        bank.single.pk: bank.choice["single_right"].pk,
        bank.multiple.pk: [bank.choice["two"].pk],
        bank.numeric.pk: "31.4",
        bank.short.pk: "CO2",
    }
    for item_id, answer in answers.items():
        assert put_answer(client, attempt_id, item_id, answer).status_code == 200
    # savepoint, lock, form, choices (keys and payload alike), responses, bulk update, alignments with
    # levels, insert competency scores, save, release
    with django_assert_num_queries(10):
        assert client.post(reverse("attempt-submit", args=[attempt_id])).status_code == 200


@pytest.mark.parametrize("with_essay", [False, True], ids=["completed", "awaiting-grading"])
def test_the_submit_answer_is_the_stored_attempt(bank, with_essay):
    """The submit builds its answer from what it scored; it must equal what the API reads back."""
    items = [*bank.auto_items(), bank.extended] if with_essay else bank.auto_items()
    assessment = assessment_with(items, bank.ratios, time_limit_minutes=30)
    client = api_client_for(bank.student)
    attempt_id = start(client, assessment).json()["id"]
    put_answer(client, attempt_id, bank.single.pk, bank.choice["single_right"].pk)
    put_answer(client, attempt_id, bank.multiple.pk, [bank.choice["two"].pk, bank.choice["seven"].pk])
    put_answer(client, attempt_id, bank.numeric.pk, "31.4")  # bank.short left unanswered

    submitted = client.post(reverse("attempt-submit", args=[attempt_id]))

    assert submitted.status_code == 200
    stored = client.get(reverse("attempt-detail", args=[attempt_id])).json()
    assert submitted.json() == stored
    assert (stored["status"], len(stored["responses"]), len(stored["competencies"])) == (
        ("submitted", 5, 0) if with_essay else ("completed", 4, 2)
    )


# --- staff item bank ------------------------------------------------------------------------------


@pytest.fixture
def staff_world():
    district = DistrictFactory()
    staff = StaffFactory(district=district)
    own = CompetencyFactory(framework=FrameworkFactory(district=district))
    shared = CompetencyFactory(framework=FrameworkFactory(district=None))
    foreign = CompetencyFactory(framework=FrameworkFactory(district=DistrictFactory()))
    return staff, own, shared, foreign


def test_staff_create_and_read_items_of_every_type_with_keys(staff_world):
    staff, own, shared, _ = staff_world
    client = api_client_for(staff)
    bodies = [
        {
            "type": "multiple_choice",
            "stem": "Evens?",
            "points": "3",
            "partial_credit": True,
            "choices": [{"text": "2", "correct": True}, {"text": "3"}, {"text": "4", "correct": True}],
            "alignments": [{"competency": own.pk, "points": "2"}, {"competency": shared.pk}],
        },
        {"type": "numeric", "stem": "Pi?", "answer": {"value": "3.14", "tolerance": "0.01"}},
        {"type": "short_text", "stem": "Gas?", "accepted": ["CO2", "carbon dioxide"], "status": "active"},
        {
            "type": "extended_text",
            "stem": "Explain.",
            "points": 4,
            "rubric": [{"points": 4, "description": "Full"}, {"points": 0, "description": "None"}],
        },
    ]
    created = [client.post(reverse("item-list"), body, format="json") for body in bodies]
    assert [response.status_code for response in created] == [201, 201, 201, 201], [r.json() for r in created]
    multiple, numeric, short, extended = (response.json() for response in created)

    assert multiple == {
        "id": multiple["id"],
        "type": "multiple_choice",
        "stem": "Evens?",
        "stem_html": "<p>Evens?</p>",
        "status": "draft",
        "points": "3.00",
        "key_version": 1,
        "alignments": [{"competency": own.pk, "points": "2.00"}, {"competency": shared.pk, "points": "1.00"}],
        "choices": [
            {"id": multiple["choices"][0]["id"], "text": "2", "correct": True},
            {"id": multiple["choices"][1]["id"], "text": "3", "correct": False},
            {"id": multiple["choices"][2]["id"], "text": "4", "correct": True},
        ],
        "partial_credit": True,
    }
    assert numeric["answer"] == {"value": "3.14", "tolerance": "0.01"}
    assert (short["accepted"], short["status"]) == (["CO2", "carbon dioxide"], "active")
    assert extended["rubric"] == [
        {"points": "4.00", "description": "Full"},
        {"points": "0.00", "description": "None"},
    ]
    assert Item.objects.filter(district=staff.district).count() == 4

    listed = client.get(reverse("item-list")).json()
    assert [item["id"] for item in listed] == [multiple["id"], numeric["id"], short["id"], extended["id"]]
    assert client.get(reverse("item-detail", args=[numeric["id"]])).json() == numeric


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        (
            {"type": "single_choice", "stem": "?", "choices": [{"text": "a", "correct": True}]},
            "single-choice",
        ),
        ({"type": "numeric", "stem": "?"}, "answer value"),
        ({"type": "short_text", "stem": "?", "accepted": []}, "accepted answer"),
        ({"type": "extended_text", "stem": "?"}, "rubric"),
        ({"type": "essay", "stem": "?"}, "type"),
        ({"type": "short_text", "stem": "?", "accepted": ["a"], "points": 0}, "points"),
    ],
)
def test_invalid_items_are_400(staff_world, body, message_part):
    staff, *_ = staff_world
    response = api_client_for(staff).post(reverse("item-list"), body, format="json")
    assert response.status_code == 400
    assert message_part in json.dumps(response.json())
    assert not Item.objects.exists()


def test_staff_cannot_align_to_another_districts_competency(staff_world):
    staff, _, _, foreign = staff_world
    response = api_client_for(staff).post(
        reverse("item-list"),
        {"type": "short_text", "stem": "?", "accepted": ["a"], "alignments": [{"competency": foreign.pk}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"detail": {"alignments": [f"Unknown competency: {foreign.pk}."]}}


def test_staff_see_their_districts_items_and_shared_ones_aligned_to_visible_frameworks(staff_world):
    staff, own, shared, foreign = staff_world
    mine = ItemFactory(district=staff.district)
    shared_on_shared = ItemFactory(district=None, aligned_to=shared)
    shared_on_own = ItemFactory(district=None, aligned_to=own)
    ItemFactory(district=None, aligned_to=foreign)  # shared, but only on another district's framework
    ItemFactory(district=None)  # shared, aligned nowhere
    ItemFactory(district=foreign.framework.district, aligned_to=shared)  # another district's own item

    listed = api_client_for(staff).get(reverse("item-list")).json()

    assert [item["id"] for item in listed] == [mine.pk, shared_on_shared.pk, shared_on_own.pk]
    assert api_client_for(TeacherFactory()).get(reverse("item-list")).status_code == 403
    assert api_client_for(StudentFactory()).get(reverse("item-list")).status_code == 403


def test_a_patch_to_the_stem_keeps_the_key_version_a_key_change_raises_it(staff_world):
    staff, own, shared, _ = staff_world
    client = api_client_for(staff)
    item = client.post(
        reverse("item-list"),
        {
            "type": "single_choice",
            "stem": "Pick",
            "choices": [{"text": "a", "correct": True}, {"text": "b"}],
            "alignments": [{"competency": own.pk}],
        },
        format="json",
    ).json()
    url = reverse("item-detail", args=[item["id"]])
    a, b = (choice["id"] for choice in item["choices"])

    def patch(body):
        response = client.patch(url, body, format="json")
        assert response.status_code == 200, response.json()
        return response.json()

    reworded = patch({"stem": "Pick one", "status": "active"})
    assert (reworded["key_version"], reworded.get("rescore_job")) == (1, None)
    renamed = patch({"choices": [{"id": a, "text": "A", "correct": True}, {"id": b, "text": "B"}]})
    assert (renamed["key_version"], [choice["id"] for choice in renamed["choices"]]) == (1, [a, b])
    assert (
        patch({"choices": [{"id": a, "text": "A"}, {"id": b, "text": "B", "correct": True}]})["key_version"]
        == 2
    )
    assert patch({"points": "2"})["key_version"] == 3
    assert patch({"points": "2.00"})["key_version"] == 3
    moved = patch({"alignments": [{"competency": own.pk}, {"competency": shared.pk, "points": "2"}]})
    assert (moved["key_version"], len(moved["alignments"])) == (4, 2)
    assert (
        patch({"alignments": [{"competency": own.pk}, {"competency": shared.pk, "points": "3"}]})[
            "key_version"
        ]
        == 5
    )
    # A key change answers with the rescoring job it started (see tests/assessments/test_rescoring.py).
    assert moved["rescore_job"] == RescoreJob.objects.latest("pk").pk - 1
    assert Item.history.filter(id=item["id"]).count() >= 5


def test_patch_numeric_and_short_text_keys(staff_world):
    staff, *_ = staff_world
    client = api_client_for(staff)
    numeric = client.post(
        reverse("item-list"), {"type": "numeric", "stem": "?", "answer": {"value": 2}}, format="json"
    ).json()
    changed = client.patch(
        reverse("item-detail", args=[numeric["id"]]),
        {"answer": {"value": 2, "tolerance": "0.5"}},
        format="json",
    ).json()
    assert (changed["answer"], changed["key_version"]) == ({"value": "2", "tolerance": "0.5"}, 2)
    short = client.post(
        reverse("item-list"), {"type": "short_text", "stem": "?", "accepted": ["a"]}, format="json"
    ).json()
    changed = client.patch(
        reverse("item-detail", args=[short["id"]]), {"accepted": ["a", "b"]}, format="json"
    ).json()
    assert (changed["accepted"], changed["key_version"]) == (["a", "b"], 2)
    invalid = client.patch(reverse("item-detail", args=[short["id"]]), {"accepted": []}, format="json")
    assert invalid.status_code == 400
    assert Item.objects.get(pk=short["id"]).accepted_answers == ["a", "b"]


def test_shared_items_are_read_only_and_foreign_ones_invisible(staff_world):
    staff, _, shared, foreign = staff_world
    client = api_client_for(staff)
    shared_item = ItemFactory(district=None, aligned_to=shared)
    foreign_item = ItemFactory(district=foreign.framework.district)
    assert client.get(reverse("item-detail", args=[shared_item.pk])).status_code == 200
    assert (
        client.patch(reverse("item-detail", args=[shared_item.pk]), {"stem": "x"}, format="json").status_code
        == 403
    )
    assert client.get(reverse("item-detail", args=[foreign_item.pk])).status_code == 404
    assert (
        client.patch(reverse("item-detail", args=[foreign_item.pk]), {"stem": "x"}, format="json").status_code
        == 404
    )


@pytest.mark.parametrize("size", [2, 10])
def test_item_list_query_count_is_flat(django_assert_num_queries, staff_world, size):
    staff, own, _, _ = staff_world
    for _ in range(size):
        ItemFactory(district=staff.district, aligned_to=own)
    client = api_client_for(staff)
    with django_assert_num_queries(4):  # items, choices, rubric levels, alignments
        assert len(client.get(reverse("item-list")).json()) == size


def test_the_schema_documents_the_endpoints(staff_world):
    staff, *_ = staff_world
    schema = api_client_for(staff).get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for path in (
        "/api/v1/assessments/{id}/attempts/",
        "/api/v1/attempts/{id}/",
        "/api/v1/attempts/{id}/responses/{item_id}/",
        "/api/v1/attempts/{id}/submit/",
        "/api/v1/items/",
        "/api/v1/items/{id}/",
    ):
        assert path in paths, sorted(paths)


def test_scores_are_decimals_in_the_database(bank):
    # guards the JSON strings above: they come from DecimalField(decimal_places=2)
    assessment = assessment_with([bank.short], bank.ratios)
    client = api_client_for(bank.student)
    attempt_id = start(client, assessment).json()["id"]
    client.post(reverse("attempt-submit", args=[attempt_id]))
    assert Attempt.objects.get().max_score == Decimal("1.00")
