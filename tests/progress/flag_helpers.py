"""A classroom for the flag, group, sweep and teacher API tests: one section, its teacher, students and a
pacing guide over four competencies (6.RP.A.1 .. 6.RP.A.4, due 1 Feb, 15 Feb, 1 Mar and 1 Apr 2027)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from competencies.models import CalculationMethod, PacingGuide, PacingTarget
from progress.models import CompetencyMastery, Evidence
from roster.models import Enrollment, Section, User
from tests.factories import (
    CompetencyFactory,
    EnrollmentFactory,
    FrameworkFactory,
    LearningResourceFactory,
    SectionFactory,
    StudentFactory,
    TeacherFactory,
)

NOW = datetime(2027, 3, 15, 15, 0, tzinfo=UTC)  # a Monday afternoon
TARGET_DATES = [date(2027, 2, 1), date(2027, 2, 15), date(2027, 3, 1), date(2027, 4, 1)]
_attempt_ids = itertools.count(1_000_000)


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2027, month, day, hour, 0, tzinfo=UTC)


@dataclass
class Classroom:
    section: Section
    teacher: User
    students: list[User]
    competencies: list  # Competency, in pacing order

    @property
    def codes(self) -> list[str]:
        return [competency.code for competency in self.competencies]


def classroom(
    students: int = 3, *, names: list[tuple[str, str]] | None = None, section: Section | None = None
) -> Classroom:
    section = section or SectionFactory(title="Math 6A")
    district = section.school.district
    framework = FrameworkFactory(district=district, calculation_method=CalculationMethod.LATEST)
    competencies = [
        CompetencyFactory(framework=framework, code=f"6.RP.A.{index}", statement=f"Ratios {index}")
        for index in range(1, 5)
    ]
    LearningResourceFactory(
        competency=competencies[0], title="Ratios with tape diagrams", url="https://example.org/ratios"
    )
    guide = PacingGuide.objects.create(section=section, framework=framework)
    PacingTarget.objects.bulk_create(
        PacingTarget(guide=guide, competency=competency, target_date=target_date)
        for competency, target_date in zip(competencies, TARGET_DATES, strict=True)
    )
    teacher = TeacherFactory(district=district, email="teacher@example.org")
    EnrollmentFactory(section=section, user=teacher, role=Enrollment.Role.TEACHER)
    people = []
    for index in range(students):
        first, last = names[index] if names else (f"Student{index:02d}", "Test")
        student = StudentFactory(district=district, first_name=first, last_name=last)
        EnrollmentFactory(section=section, user=student, role=Enrollment.Role.STUDENT)
        people.append(student)
    return Classroom(section=section, teacher=teacher, students=people, competencies=competencies)


def check(student: User, competency, when: datetime, *, score: str = "1", met: bool = False) -> Evidence:
    """A mastery check's result for one competency (attempt evidence with a made-up attempt id)."""
    return Evidence.objects.create(
        student=student,
        competency=competency,
        source=Evidence.Source.ATTEMPT,
        source_id=next(_attempt_ids),
        is_summative=True,
        score=Decimal(score),
        is_correct=met,
        observed_at=when,
    )


def mastery(student: User, competency, **fields) -> CompetencyMastery:
    row, _ = CompetencyMastery.objects.update_or_create(
        student=student, competency=competency, defaults=fields
    )
    return row
