from __future__ import annotations

from decimal import Decimal

import factory

from competencies.models import (
    Competency,
    Framework,
    LearningResource,
    MasteryLevel,
    MasteryScale,
    Prerequisite,
)


class MasteryScaleFactory(factory.django.DjangoModelFactory):
    """A four-level scale: 4 Exceeds, 3 Mastery (the mastery level), 2 Near, 1 Beginning."""

    class Meta:
        model = MasteryScale
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Scale {n}")

    @factory.post_generation
    def levels(obj, create, extracted, **kwargs):
        if not create or extracted is False:
            return
        for points, name, is_mastery in [
            (4, "Exceeds", False),
            (3, "Mastery", True),
            (2, "Near", False),
            (1, "Beginning", False),
        ]:
            MasteryLevel.objects.create(scale=obj, name=name, points=Decimal(points), is_mastery=is_mastery)


class MasteryLevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MasteryLevel

    scale = factory.SubFactory(MasteryScaleFactory, levels=False)
    name = factory.Sequence(lambda n: f"Level {n}")
    points = factory.Sequence(lambda n: Decimal(n))


class FrameworkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Framework

    title = factory.Sequence(lambda n: f"Framework {n}")
    mastery_scale = factory.SubFactory(MasteryScaleFactory)
    status = Framework.Status.PUBLISHED


class CompetencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Competency

    framework = factory.SubFactory(FrameworkFactory)
    code = factory.Sequence(lambda n: f"C.{n}")
    statement = factory.Sequence(lambda n: f"Competency statement {n}")
    position = factory.Sequence(lambda n: n)


class PrerequisiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prerequisite

    prerequisite = factory.SubFactory(CompetencyFactory)
    competency = factory.SubFactory(
        CompetencyFactory, framework=factory.SelfAttribute("..prerequisite.framework")
    )


class LearningResourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LearningResource

    competency = factory.SubFactory(CompetencyFactory)
    kind = LearningResource.Kind.VIDEO
    title = factory.Sequence(lambda n: f"Lesson video {n}")
    url = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    duration_minutes = 6
