from __future__ import annotations

import datetime
from decimal import Decimal

import factory
from django.utils import timezone

from progress.models import BKTParameters, CompetencyMastery, Evidence
from tests.factories.competencies import CompetencyFactory
from tests.factories.roster import StudentFactory


class EvidenceFactory(factory.django.DjangoModelFactory):
    """A teacher observation of 3 (Mastery on the default scale), met, observed now."""

    class Meta:
        model = Evidence

    student = factory.SubFactory(StudentFactory)
    competency = factory.SubFactory(CompetencyFactory)
    source = Evidence.Source.OBSERVATION
    is_summative = True
    score = Decimal("3.00")
    is_correct = factory.LazyAttribute(lambda evidence: Decimal(evidence.score) >= 3)
    observed_at = factory.LazyFunction(timezone.now)


class CompetencyMasteryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CompetencyMastery

    student = factory.SubFactory(StudentFactory)
    competency = factory.SubFactory(CompetencyFactory)
    state = CompetencyMastery.State.READY


class BKTParametersFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BKTParameters

    competency = factory.SubFactory(CompetencyFactory)
    prior = 0.2
    learn = 0.15
    guess = 0.2
    slip = 0.1
    fitted_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=1))
