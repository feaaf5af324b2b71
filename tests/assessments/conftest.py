"""A small bank: one framework (scale 4/3*/2/1), two competencies, one item of every type."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from assessments.models import Assessment, Item, ItemAlignment, ItemChoice, RubricLevel
from competencies.models import Competency
from roster.models import User
from tests.factories import (
    AssessmentFactory,
    BlueprintRuleFactory,
    CompetencyFactory,
    DistrictFactory,
    FrameworkFactory,
    ItemFactory,
    StudentFactory,
)


def api_client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@dataclass
class Bank:
    student: User
    ratios: Competency
    rates: Competency
    single: Item
    multiple: Item
    numeric: Item
    short: Item
    extended: Item
    choice: dict[str, ItemChoice]

    def auto_items(self) -> list[Item]:
        return [self.single, self.multiple, self.numeric, self.short]


def _align(item: Item, competency: Competency, points: Decimal) -> None:
    ItemAlignment.objects.create(item=item, competency=competency, points=points)


@pytest.fixture
def bank(db) -> Bank:
    district = DistrictFactory()
    framework = FrameworkFactory(district=district)
    ratios = CompetencyFactory(framework=framework, code="7.RP.A.1")
    rates = CompetencyFactory(framework=framework, code="7.RP.A.2")
    student = StudentFactory(district=district)

    single = ItemFactory(type=Item.Type.SINGLE_CHOICE, stem="Pick **4**", max_points=Decimal(1))
    choice = {
        "single_right": ItemChoice.objects.create(item=single, text="four", is_correct=True, position=1),
        "single_wrong": ItemChoice.objects.create(item=single, text="five", position=2),
    }
    multiple = ItemFactory(
        type=Item.Type.MULTIPLE_CHOICE,
        stem="Pick the even numbers",
        max_points=Decimal(3),
        partial_credit=True,
    )
    for position, (name, correct) in enumerate(
        [("two", True), ("four", True), ("six", True), ("seven", False)], start=1
    ):
        choice[name] = ItemChoice.objects.create(
            item=multiple, text=name, is_correct=correct, position=position
        )
    numeric = ItemFactory(
        type=Item.Type.NUMERIC,
        stem="Pi to four places: \\(\\pi \\approx ?\\)",
        max_points=Decimal(2),
        answer_value=Decimal("31.4159"),
        answer_tolerance=Decimal("0.05"),
    )
    short = ItemFactory(
        type=Item.Type.SHORT_TEXT,
        stem="What do plants take in?",
        accepted_answers=["Carbon dioxide", "CO2"],
        max_points=Decimal(1),
    )
    extended = ItemFactory(type=Item.Type.EXTENDED_TEXT, stem="Explain a unit rate.", max_points=Decimal(4))
    RubricLevel.objects.create(item=extended, points=Decimal(4), description="Secret rubric: complete")
    RubricLevel.objects.create(item=extended, points=Decimal(2), description="Secret rubric: partial")
    RubricLevel.objects.create(item=extended, points=Decimal(0), description="Secret rubric: none")

    for item in (single, multiple, numeric, short, extended):
        _align(item, ratios, item.max_points)
    _align(single, rates, Decimal(1))
    return Bank(
        student=student,
        ratios=ratios,
        rates=rates,
        single=single,
        multiple=multiple,
        numeric=numeric,
        short=short,
        extended=extended,
        choice=choice,
    )


def assessment_with(items: list[Item], competency: Competency, **fields) -> Assessment:
    """An active mastery check whose one rule draws exactly ``items``."""
    assessment = AssessmentFactory(competency=competency, **fields)
    BlueprintRuleFactory(assessment=assessment, competency=competency, items=items, draw_count=len(items))
    return assessment
