from __future__ import annotations

from decimal import Decimal

import factory
from django.utils import timezone

from assessments.models import (
    Assessment,
    Attempt,
    BlueprintRule,
    Item,
    ItemAlignment,
    ItemChoice,
    RubricLevel,
)
from tests.factories.competencies import CompetencyFactory
from tests.factories.roster import StudentFactory


class ItemFactory(factory.django.DjangoModelFactory):
    """An active short-text item ("What is 2 + 2?" / "4") unless told otherwise.

    ``aligned_to=competency`` (or a list) adds alignments worth one point each.
    """

    class Meta:
        model = Item
        skip_postgeneration_save = True

    type = Item.Type.SHORT_TEXT
    stem = factory.Sequence(lambda n: f"Question {n}: what is 2 + 2?")
    status = Item.Status.ACTIVE
    max_points = Decimal("1.00")
    accepted_answers = factory.LazyAttribute(lambda item: ["4"] if item.type == Item.Type.SHORT_TEXT else [])

    @factory.post_generation
    def aligned_to(obj, create, extracted, **kwargs):
        if not create or extracted is None:
            return
        competencies = extracted if isinstance(extracted, list | tuple) else [extracted]
        for competency in competencies:
            ItemAlignment.objects.create(item=obj, competency=competency, points=Decimal("1.00"))


class ItemChoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ItemChoice

    item = factory.SubFactory(ItemFactory, type=Item.Type.SINGLE_CHOICE)
    text = factory.Sequence(lambda n: f"Choice {n}")
    is_correct = False
    position = factory.Sequence(lambda n: n)


class RubricLevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RubricLevel

    item = factory.SubFactory(ItemFactory, type=Item.Type.EXTENDED_TEXT)
    points = Decimal("1.00")
    description = "Meets the criterion"


class ItemAlignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ItemAlignment

    item = factory.SubFactory(ItemFactory)
    competency = factory.SubFactory(CompetencyFactory)
    points = Decimal("1.00")


class AssessmentFactory(factory.django.DjangoModelFactory):
    """An active, untimed mastery check with no gate."""

    class Meta:
        model = Assessment

    title = factory.Sequence(lambda n: f"Mastery check {n}")
    kind = Assessment.Kind.MASTERY_CHECK
    status = Assessment.Status.ACTIVE


class BlueprintRuleFactory(factory.django.DjangoModelFactory):
    """A rule drawing from every active item aligned to the competency (pass ``items=[...]`` to pin a pool)."""

    class Meta:
        model = BlueprintRule
        skip_postgeneration_save = True

    assessment = factory.SubFactory(AssessmentFactory)
    competency = factory.SubFactory(CompetencyFactory)
    draw_count = 1
    position = factory.Sequence(lambda n: n)

    @factory.post_generation
    def items(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.items.set(extracted)


class AttemptFactory(factory.django.DjangoModelFactory):
    """A bare in-progress attempt with no form; use ``assessments.services.attempt_start`` for a real one."""

    class Meta:
        model = Attempt

    assessment = factory.SubFactory(AssessmentFactory)
    student = factory.SubFactory(StudentFactory)
    number = factory.Sequence(lambda n: n + 1)
    seed = 42
    started_at = factory.LazyFunction(timezone.now)
