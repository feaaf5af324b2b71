"""Random answers of every shape to every item type, through ``response_save`` / ``attempt_submit`` and
through the API: a bad answer is refused with a clear message (a 400 naming it on the API) and nothing
saved; a submit always scores, every score within the item's points; never an unhandled exception or
a 500."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from assessments import services
from assessments.models import Attempt, AttemptItem, Item, ItemChoice, Response, RubricLevel
from roster.models import User
from tests.factories import (
    AssessmentFactory,
    CompetencyFactory,
    DistrictFactory,
    FrameworkFactory,
    ItemFactory,
)
from tests.faults.hostile import TRIED, assert_clear, json_values

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

D = Decimal


@dataclass
class Form:
    student: User
    assessment: object
    items: list[Item]
    choice_ids: list[int]


@pytest.fixture
def form() -> Form:
    district = DistrictFactory()
    competency = CompetencyFactory(framework=FrameworkFactory(district=district))
    single = ItemFactory(
        type=Item.Type.SINGLE_CHOICE, district=district, max_points=D(2), aligned_to=competency
    )
    multiple = ItemFactory(
        type=Item.Type.MULTIPLE_CHOICE,
        district=district,
        partial_credit=True,
        max_points=D(3),
        aligned_to=competency,
    )
    choice_ids = []
    for item in (single, multiple):
        for position in range(3):
            choice = ItemChoice.objects.create(
                item=item, text=f"choice {position}", is_correct=position == 0 or (item is multiple and position == 1),
                position=position,
            )  # fmt: skip
            choice_ids.append(choice.pk)
    numeric = ItemFactory(
        type=Item.Type.NUMERIC,
        district=district,
        answer_value=D("2.5"),
        answer_tolerance=D("0.1"),
        aligned_to=competency,
    )
    short = ItemFactory(
        type=Item.Type.SHORT_TEXT, district=district, accepted_answers=["four", "4"], aligned_to=competency
    )
    extended = ItemFactory(
        type=Item.Type.EXTENDED_TEXT, district=district, max_points=D(4), aligned_to=competency
    )
    RubricLevel.objects.create(item=extended, points=D(4), description="all of it")
    student = User.objects.create(
        username="fuzz-student", role=User.Role.STUDENT, district=district, password="!"
    )
    assessment = AssessmentFactory(competency=competency, district=district)
    return Form(student, assessment, [single, multiple, numeric, short, extended], choice_ids)


def open_attempt(form: Form) -> Attempt:
    # One open attempt per assessment: an example that failed midway (while shrinking) left one open.
    Attempt.objects.filter(student=form.student, status=Attempt.Status.IN_PROGRESS).update(
        status=Attempt.Status.COMPLETED, submitted_at=timezone.now(), completed_at=timezone.now()
    )
    number = Attempt.objects.filter(student=form.student, assessment=form.assessment).count() + 1
    attempt = Attempt.objects.create(
        assessment=form.assessment,
        student=form.student,
        number=number,
        seed=number,
        started_at=timezone.now(),
    )
    AttemptItem.objects.bulk_create(
        AttemptItem(attempt=attempt, item=item, position=position, key_version_seen=1)
        for position, item in enumerate(form.items, start=1)
    )
    return attempt


special_answers = st.sampled_from(
    [
        None, True, 0, -1, 2**63, 2**64 + 1, -(2**80), 1.5, float("inf"), float("-inf"), float("nan"), 1e308,
        "", " ", "2.5", " 2.5 ", "2,5", "1e999999", "-1e-999999", "NaN", "Infinity", "0x10", "\u00bd", "\u0662\u066b\u0665",
        "four", "FOUR ", "\uff46\uff4f\uff55\uff52", "4\x00", "\x00", "a" * 100_001, "<script>alert(1)</script>",
        [], [0], [1, 1], [True], ["1"], [2**70], list(range(100)), {}, {"answer": 1},
    ]
)  # fmt: skip


def answers(form_size: int = 5):
    """One answer per item: random JSON, special values, or choice ids (valid, foreign, repeated)."""
    choice_like = st.integers(-3, 3).map(lambda offset: ("choice", offset))
    return st.lists(json_values | special_answers | choice_like, min_size=form_size, max_size=form_size)


def realise(value, form: Form):
    """A ``("choice", n)`` placeholder becomes a real choice id near the form's (some are foreign)."""
    if isinstance(value, tuple):
        return form.choice_ids[0] + value[1] * 2
    return value


def check_scores(attempt: Attempt, form: Form) -> None:
    attempt.refresh_from_db()
    assert attempt.status in (Attempt.Status.SUBMITTED, Attempt.Status.COMPLETED)
    points = {item.pk: item.max_points for item in form.items}
    for item_id, score in Response.objects.filter(attempt=attempt).values_list("item_id", "score"):
        if item_id == form.items[-1].pk:
            assert score is None  # extended text waits for a grader
        else:
            assert score is not None and D(0) <= score <= points[item_id]


@given(values=answers())
def test_random_answers_through_the_services_are_refused_clearly_or_scored(form, values):
    attempt = open_attempt(form)
    for item, value in zip(form.items, values, strict=True):
        value = realise(value, form)
        before = list(Response.objects.filter(attempt=attempt, item=item).values_list("answer", flat=True))
        try:
            services.response_save(attempt=attempt, item=item, answer=value)
        except ValidationError as error:
            assert_clear(error.messages)
            assert (
                list(Response.objects.filter(attempt=attempt, item=item).values_list("answer", flat=True))
                == before
            )
            outcome = "refused"
        else:
            outcome = "saved"
        TRIED[(f"answers via services ({item.type})", outcome)] += 1
    services.attempt_submit(attempt=attempt)
    check_scores(attempt, form)


@given(
    values=answers(),
    raw=st.lists(st.binary(max_size=40) | st.text(max_size=40).map(str.encode), min_size=5, max_size=5),
    use_raw=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_random_answers_through_the_api_never_answer_500(client, form, values, raw, use_raw):
    client.force_login(form.student)
    attempt = open_attempt(form)
    for item, value, body, send_raw in zip(form.items, values, raw, use_raw, strict=True):
        url = f"/api/v1/attempts/{attempt.pk}/responses/{item.pk}/"
        if send_raw:
            answer = client.put(url, data=body, content_type="application/json")
        else:
            payload = json.dumps({"answer": realise(value, form)}, allow_nan=True)
            answer = client.put(url, data=payload, content_type="application/json")
        assert answer.status_code in (200, 400), (answer.status_code, answer.content[:300])
        if answer.status_code == 400:
            detail = answer.json()
            assert detail, answer.content
        TRIED[(f"answers via the API ({item.type})", str(answer.status_code))] += 1
    submitted = client.post(f"/api/v1/attempts/{attempt.pk}/submit/")
    assert submitted.status_code == 200, submitted.content[:300]
    check_scores(attempt, form)
