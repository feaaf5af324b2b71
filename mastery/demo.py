"""The demo district: the bundled sample framework, a mastery scale, lessons, one school, two sections.

Deterministic: the same names, logins and dates on every run. Later layers (assessments, progress) add
their own demo data here, since this module sits at the top of the dependency order.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.contrib.auth.hashers import make_password
from django.db import transaction

from competencies import services as catalog
from competencies.models import (
    Competency,
    Framework,
    LearningResource,
    MasteryLevel,
    MasteryScale,
    PacingGuide,
    PacingTarget,
)
from roster.models import Course, District, Enrollment, ImportRun, School, Section, Term, User

DEMO_PASSWORD = "mastery-demo"
DEMO_DISTRICT = "Demo Unified School District"
SAMPLE_FRAMEWORK = Path(__file__).resolve().parent.parent / "competencies" / "data"
SAMPLE_FRAMEWORK_FILE = SAMPLE_FRAMEWORK / "sample_framework_what-standards-could-be.json"

FIRST_NAMES = [
    "Amara", "Ben", "Chloe", "Diego", "Elif", "Farah", "Gabriel", "Hana", "Isaac", "Jade",
    "Kofi", "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tess",
    "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Aiden", "Bea", "Caleb", "Dalia",
    "Emeka", "Freya", "Gus", "Ines", "Jonah", "Keira", "Luca", "Maya", "Noor",
]  # fmt: skip
LAST_NAMES = [
    "Okafor", "Schmidt", "Nguyen", "Garcia", "Yilmaz", "Haddad", "Silva", "Sato", "Cohen", "Murphy",
    "Mensah", "Novak", "Rossi", "Adeyemi", "Farouk", "Patel", "Larsen", "Moreno", "Kahale", "Brennan",
]  # fmt: skip

SCALE_LEVELS = [
    (4, "Exceeds", False, "#1a7f37"),
    (3, "Mastery", True, "#2da44e"),
    (2, "Near mastery", False, "#bf8700"),
    (1, "Beginning", False, "#cf222e"),
    (0, "No evidence", False, "#8c959f"),
]

# A lesson per leaf: (kind, title, url, minutes). Readings link to the standard's public text.
STANDARD_PAGE = "https://www.thecorestandards.org/Math/Content/{grade}/RP/A/{number}/"


@dataclass
class DemoSummary:
    created: bool
    logins: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def demo_reset() -> None:
    """Remove the demo district and everything that hangs off it."""
    with transaction.atomic():
        district = District.objects.filter(name=DEMO_DISTRICT).first()
        if district is None:
            return
        Enrollment.objects.filter(section__school__district=district).delete()
        Section.objects.filter(school__district=district).delete()  # and their pacing guides
        Framework.objects.filter(district=district).delete()
        ImportRun.objects.filter(district=district).delete()
        Course.objects.filter(district=district).delete()
        Term.objects.filter(district=district).delete()
        School.objects.filter(district=district).delete()
        User.objects.filter(district=district).delete()
        MasteryScale.objects.filter(district=district).delete()
        district.delete()


def demo_seed(*, reset: bool = False) -> DemoSummary:
    """Create the demo district unless it exists; ``reset`` rebuilds it from scratch."""
    if reset:
        demo_reset()
    if District.objects.filter(name=DEMO_DISTRICT).exists():
        return DemoSummary(created=False, logins=_logins())
    with transaction.atomic():
        district = District.objects.create(name=DEMO_DISTRICT)
        staff = _user(district, "demo-staff", "Dana", "Whitfield", User.Role.DISTRICT_STAFF, is_staff=True)
        scale = _mastery_scale(district)
        report = catalog.framework_import_case(
            source=SAMPLE_FRAMEWORK_FILE.read_bytes(),
            user=staff,
            source_name=SAMPLE_FRAMEWORK_FILE.name,
            district=district,
        )
        framework = report.framework
        framework.mastery_scale = scale
        framework.calculation_method = "weighted_average"
        framework.calculation_parameter = Decimal("0.65")
        framework.save(update_fields=["mastery_scale", "calculation_method", "calculation_parameter"])
        catalog.framework_publish(framework=framework, user=staff)
        leaves = _leaves(framework)
        _lessons(leaves)
        sections = _school_and_sections(district)
        teacher = _user(district, "demo-teacher", "Sam", "Rivera", User.Role.TEACHER)
        students = _students(district, count=40)
        for section in sections:
            Enrollment.objects.create(
                section=section, user=teacher, role=Enrollment.Role.TEACHER, is_primary=True
            )
        Enrollment.objects.bulk_create(
            Enrollment(section=sections[index % 2], user=student, role=Enrollment.Role.STUDENT)
            for index, student in enumerate(students)
        )
        _pacing(sections, framework, leaves)
    return DemoSummary(
        created=True,
        logins=_logins(),
        counts={
            "competencies": framework.competencies.count(),
            "leaf competencies": len(leaves),
            "lesson resources": LearningResource.objects.filter(competency__framework=framework).count(),
            "sections": len(sections),
            "students": len(students),
        },
    )


def _logins() -> list[tuple[str, str]]:
    return [
        ("demo-staff", "district staff: Django admin, catalog curation"),
        ("demo-teacher", "teacher of both sections"),
        ("demo-student", "student in Math 6, period 1"),
    ]


def _user(district, username, first, last, role, *, is_staff=False, save=True) -> User:
    user = User(
        username=username,
        first_name=first,
        last_name=last,
        role=role,
        district=district,
        is_staff=is_staff,
        is_superuser=is_staff,
        email=f"{username}@demo.example.org",
    )
    # Every demo login shares one password: hash it once (a slow hash per user would take most of a minute).
    user.password = _demo_password_hash()
    if save:
        user.save()
    return user


@functools.cache
def _demo_password_hash() -> str:
    return make_password(DEMO_PASSWORD)


def _mastery_scale(district: District) -> MasteryScale:
    scale = MasteryScale.objects.create(
        name="Four-point proficiency", district=district, description="3 or above is mastery."
    )
    MasteryLevel.objects.bulk_create(
        MasteryLevel(scale=scale, name=name, points=Decimal(points), is_mastery=is_mastery, color=color)
        for points, name, is_mastery, color in SCALE_LEVELS
    )
    return scale


def _leaves(framework: Framework) -> list[Competency]:
    tree = list(Competency.objects.with_tree_fields().tree_filter(framework=framework))
    parent_ids = {competency.parent_id for competency in tree}
    return [competency for competency in tree if competency.pk not in parent_ids]


def _lessons(leaves: list[Competency]) -> None:
    resources = []
    for competency in leaves:
        # CCSS.Math.Content.6.RP.A.3a -> grade 6, number 3/a
        _, _, _, grade, _, _, number = (competency.code.split(".") + [""] * 7)[:7]
        page = STANDARD_PAGE.format(grade=grade, number="/".join(filter(None, [number[:1], number[1:]])))
        resources += [
            LearningResource(
                competency=competency,
                kind=LearningResource.Kind.VIDEO,
                title=f"Lesson video: {competency.code.removeprefix('CCSS.Math.Content.')}",
                url="https://www.youtube.com/watch?v=HpdMJaKaXXc",
                duration_minutes=7,
                position=1,
            ),
            LearningResource(
                competency=competency,
                kind=LearningResource.Kind.READING,
                title="The standard, with examples",
                url=page,
                duration_minutes=5,
                position=2,
            ),
        ]
    LearningResource.objects.bulk_create(resources)


def _school_and_sections(district: District) -> list[Section]:
    school = School.objects.create(district=district, name="Lincoln Middle School", identifier="LMS")
    term = Term.objects.create(
        district=district,
        title="2026-27 School Year",
        kind=Term.Kind.SCHOOL_YEAR,
        start_date=datetime.date(2026, 8, 24),
        end_date=datetime.date(2027, 6, 11),
        school_year=2027,
    )
    course = Course.objects.create(
        district=district, school=school, title="Ratios and Proportional Reasoning"
    )
    return [
        Section.objects.create(
            school=school, term=term, course=course, title="Math 6 - Period 1", code="M6-1"
        ),
        Section.objects.create(
            school=school, term=term, course=course, title="Math 7 - Period 3", code="M7-3"
        ),
    ]


def _students(district: District, *, count: int) -> list[User]:
    students = [_user(district, "demo-student", "Alex", "Kim", User.Role.STUDENT, save=False)]
    for index in range(count - 1):
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        last = LAST_NAMES[(index * 7) % len(LAST_NAMES)]
        students.append(
            _user(district, f"student{index + 1:02d}", first, last, User.Role.STUDENT, save=False)
        )
    return User.objects.bulk_create(students)


def _pacing(sections: list[Section], framework: Framework, leaves: list[Competency]) -> None:
    start = datetime.date(2026, 9, 14)
    for section in sections:
        guide = PacingGuide.objects.create(section=section, framework=framework)
        PacingTarget.objects.bulk_create(
            PacingTarget(
                guide=guide, competency=competency, target_date=start + datetime.timedelta(weeks=3 * i)
            )
            for i, competency in enumerate(leaves)
        )
