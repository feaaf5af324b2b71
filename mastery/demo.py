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
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from assessments import services
from assessments.models import (
    Assessment,
    Attempt,
    BlueprintRule,
    Item,
    ItemAlignment,
    ItemChoice,
    RescoreJob,
    RubricLevel,
)
from competencies import services as catalog
from competencies.models import (
    Competency,
    Framework,
    LearningResource,
    MasteryLevel,
    MasteryScale,
    PacingGuide,
    PacingTarget,
    Prerequisite,
)
from progress import flag_services
from progress import services as progress_services
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
        # Attempts first: assessments and items are protected while attempts point at them.
        Attempt.objects.filter(assessment__district=district).delete()
        RescoreJob.objects.filter(items__district=district).delete()
        Assessment.objects.filter(district=district).delete()
        Item.objects.filter(district=district).delete()
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


def demo_seed(*, reset: bool = False, today: datetime.datetime | None = None) -> DemoSummary:
    """Create the demo district unless it exists; ``reset`` rebuilds it from scratch.

    The attempt history is dated in days before ``today`` (midnight UTC of the current day by
    default), so the same students are active, stuck or inactive whenever the demo is seeded.
    """
    today = today or timezone.now().astimezone(datetime.UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
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
        bank = _bank(district, staff, leaves)
        _history(bank, teacher, students, today)
        # Mastery and flags now, whatever the broker: the nightly sweep's work, done once for the demo.
        flag_services.flags_sweep(now=today)
    return DemoSummary(
        created=True,
        logins=_logins(),
        counts={
            "competencies": framework.competencies.count(),
            "leaf competencies": len(leaves),
            "lesson resources": LearningResource.objects.filter(competency__framework=framework).count(),
            "sections": len(sections),
            "students": len(students),
            "items": Item.objects.filter(district=district).count(),
            "assessments": Assessment.objects.filter(district=district).count(),
            "attempts": Attempt.objects.filter(assessment__district=district).count(),
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


# --- the item bank --------------------------------------------------------------------------------
# Per leaf (by the end of its code): six items of mixed types, real grade 6-7 questions.
# ("single", stem, choices, correct index) ("multiple", stem, choices, correct indices)
# ("numeric", stem, value, tolerance) ("short", stem, accepted answers) ("extended", stem, rubric)
RUBRIC_EXPLAIN = [
    (3, "Correct answer, clear reasoning in words or a diagram, correct ratio or rate language."),
    (2, "Correct answer with reasoning that has a gap, or a small slip with clear reasoning."),
    (1, "Some relevant work, but the answer or the reasoning is mostly missing."),
    (0, "No relevant work."),
]
BANK: dict[str, list[tuple]] = {
    "6.RP.A.1": [
        ("single", "A class has 12 girls and 15 boys. What is the ratio of girls to boys in simplest form?",
         ["4 : 5", "5 : 4", "12 : 27", "4 : 9"], 0),
        ("single", "A recipe uses 2 cups of flour for every 3 eggs. Which statement describes the same ratio?",
         ["For every 3 eggs there are 2 cups of flour", "For every 2 eggs there are 3 cups of flour",
          "There are 5 cups of flour in all", "There is 1 more cup of flour than eggs"], 0),
        ("multiple", "A fruit bowl holds 6 apples and 4 pears. Select **every** ratio that describes the bowl.",
         ["apples to pears, 3 : 2", "pears to all the fruit, 2 : 5", "apples to all the fruit, 3 : 5",
          "pears to apples, 3 : 2"], [0, 1, 2]),
        ("numeric", "A zoo has 3 zebras for every 5 giraffes. There are 20 giraffes. How many zebras are there?",
         "12", "0"),
        ("short", "A bag holds 7 red marbles and 3 blue marbles. Write the ratio of blue to red marbles "
         "with a colon (for example 1:2).", ["3:7", "3 : 7"]),
        ("extended", "At a bird sanctuary, *for every 2 wings there is 1 beak*. Explain in ratio language what "
         "the ratio 2 : 1 means here, and give one other ratio from the same situation.", RUBRIC_EXPLAIN),
    ],
    "6.RP.A.2": [
        ("single", "A pack of 8 pencils costs $2.00. What is the cost per pencil?",
         ["$0.25", "$0.40", "$4.00", "$0.16"], 0),
        ("single", "A car travels 150 miles in 3 hours at a constant speed. What is its speed?",
         ["50 miles per hour", "153 miles per hour", "450 miles per hour", "147 miles per hour"], 0),
        ("multiple", "A recipe uses 3 cups of sugar for 4 cups of flour. Select **every** true statement.",
         ["There is 3/4 cup of sugar for each cup of flour", "There are 4/3 cups of flour for each cup of sugar",
          "There are 4/3 cups of sugar for each cup of flour", "There is 1 cup of sugar for each cup of flour"],
         [0, 1]),
        ("numeric", "Maria reads 45 pages in 1.5 hours at a steady pace. How many pages does she read per hour?",
         "30", "0"),
        ("short", "Complete the sentence with a number: *We paid $75 for 15 hamburgers, which is a rate of "
         "$___ per hamburger.*", ["5", "$5", "5.00", "$5.00"]),
        ("extended", "A pot of rice uses 5 cups of water for 2 cups of rice. Find the unit rate of water per cup "
         "of rice and explain what it means in this situation.", RUBRIC_EXPLAIN),
    ],
    "6.RP.A.3a": [
        ("single", "The table shows equivalent ratios. What is the missing value?\n\n"
         "| Cups of juice | 2 | 4 | 6 |\n|---|---|---|---|\n| Cups of water | 5 | 10 | ? |",
         ["15", "12", "11", "20"], 0),
        ("single", "Which ratio is equivalent to 3 : 8?", ["9 : 24", "6 : 11", "8 : 3", "12 : 24"], 0),
        ("multiple", "Select **every** ratio equivalent to 4 : 6.", ["2 : 3", "8 : 12", "12 : 18", "6 : 8"],
         [0, 1, 2]),
        ("numeric", "Lemonade uses 2 scoops of mix for every 7 cups of water. How many cups of water go with "
         "10 scoops?", "35", "0"),
        ("short", "Store A sells 3 notebooks for $4. Store B sells 5 notebooks for $7. Which store has the "
         "lower price per notebook? Answer A or B.", ["A", "Store A"]),
        ("extended", "A swimmer swims 3 laps every 2 minutes. Make a table of at least four equivalent ratios "
         "and describe how the points look when plotted on the coordinate plane.", RUBRIC_EXPLAIN),
    ],
    "6.RP.A.3b": [
        ("single", "Which is the best buy?",
         ["12 oz for $3.00", "8 oz for $2.40", "16 oz for $4.80", "10 oz for $3.50"], 0),
        ("single", "It took 7 hours to mow 4 lawns. At that rate, how many lawns can be mowed in 35 hours?",
         ["20", "28", "16", "245"], 0),
        ("multiple", "A runner covers 12 km in 1.5 hours at a constant speed. Select **every** true statement.",
         ["Her speed is 8 km per hour", "She runs 4 km in 30 minutes", "She runs 24 km in 2 hours",
          "Her speed is 18 km per hour"], [0, 1]),
        ("numeric", "A printer prints 42 pages in 3 minutes. How many pages does it print in 10 minutes?",
         "140", "0"),
        ("short", "5 pounds of apples cost $8.75. What is the price of one pound, in dollars? Write just the "
         "number.", ["1.75", "$1.75"]),
        ("extended", "Ana rides 27 miles in 3 hours; Ben rides 40 miles in 5 hours. Who rides faster? Use unit "
         "rates and explain.", RUBRIC_EXPLAIN),
    ],
    "6.RP.A.3c": [
        ("single", "What is 30% of 80?", ["24", "30", "26.7", "50"], 0),
        ("single", "18 is 60% of what number?", ["30", "10.8", "28.8", "48"], 0),
        ("multiple", "Select **every** expression equal to 25% of 48.",
         ["0.25 × 48", "48 ÷ 4", "25/100 × 48", "48 − 25"], [0, 1, 2]),  # noqa: RUF001
        ("numeric", "A $60 jacket is on sale at 15% off. How many dollars is the discount?", "9", "0"),
        ("short", "Write 7/20 as a percent.", ["35%", "35", "35 %", "35 percent"]),
        ("extended", "In a class of 25 students, 40% walk to school. Show two different ways (for example a "
         "tape diagram and a calculation) to find how many students walk.", RUBRIC_EXPLAIN),
    ],
    "6.RP.A.3d": [
        ("single", "How many inches are in 3.5 feet?", ["42", "35", "38", "40.5"], 0),
        ("single", "A recipe needs 2 quarts of milk. How many cups is that? (1 quart = 4 cups)",
         ["8", "2", "6", "16"], 0),
        ("multiple", "Select **every** length equal to 2.5 meters.", ["250 cm", "2,500 mm", "0.0025 km", "25 cm"],
         [0, 1, 2]),
        ("numeric", "How many minutes are in 2.75 hours?", "165", "0"),
        ("short", "Complete: 5 yards = ___ feet.", ["15", "15 feet", "15 ft"]),
        ("extended", "Convert 90 kilometers per hour to meters per minute. Show how the units cancel at each "
         "step.", RUBRIC_EXPLAIN),
    ],
    "7.RP.A.1": [
        ("single", "A person walks \\(\\frac{1}{2}\\) mile every \\(\\frac{1}{4}\\) hour. What is her speed in "
         "miles per hour?", ["2", "1/8", "1/2", "4"], 0),
        ("single", "A painter covers 2/3 of a wall in 1/2 hour. At that rate, how much does he cover per hour?",
         ["4/3 walls", "1/3 wall", "3/4 wall", "1/6 wall"], 0),
        ("multiple", "Kim mixes 1/3 cup of blue paint with 1/2 cup of yellow paint. Select **every** correct "
         "unit rate.",
         ["2/3 cup of blue per cup of yellow", "3/2 cups of yellow per cup of blue",
          "1/6 cup of blue per cup of yellow", "5/6 cup of paint per cup of yellow"], [0, 1]),
        ("numeric", "A snail crawls 3/8 of a meter in 3/4 of a minute. How many meters per minute is that? "
         "Give a decimal.", "0.5", "0.001"),
        ("short", "A tap fills 2 1/2 liters in 1/4 minute. How many liters per minute?",
         ["10", "10 liters", "10 L"]),
        ("extended", "Jon mows 3/4 of an acre in 1 1/2 hours. Find the unit rate in acres per hour and in hours "
         "per acre, and explain which one is more useful to plan a 6-acre job.", RUBRIC_EXPLAIN),
    ],
    "7.RP.A.2a": [
        ("single", "Which table shows a proportional relationship between x and y?",
         ["x: 1, 2, 3 and y: 4, 8, 12", "x: 1, 2, 3 and y: 3, 5, 7", "x: 1, 2, 3 and y: 2, 4, 7",
          "x: 1, 2, 3 and y: 5, 6, 7"], 0),
        ("single", "The graph of a proportional relationship is:",
         ["a straight line through the origin", "any straight line", "a curve through the origin",
          "a horizontal line"], 0),
        ("multiple", "Select **every** proportional relationship.",
         ["The cost of apples at $2 per pound", "The distance driven at a constant 60 miles per hour",
          "A taxi fare of $3 to start plus $2 per mile", "A child's height and age"], [0, 1]),
        ("numeric", "y is proportional to x, and y = 21 when x = 7. What is y when x = 12?", "36", "0"),
        ("short", "Is the relationship with x = 2, 4, 6 and y = 5, 10, 16 proportional? Answer yes or no.",
         ["no"]),
        ("extended", "Explain two different ways to decide whether the points (2, 6), (3, 9) and (5, 15) show a "
         "proportional relationship.", RUBRIC_EXPLAIN),
    ],
    "7.RP.A.2b": [
        ("single", "In \\(y = 3.5x\\), what is the constant of proportionality?", ["3.5", "x", "y", "1"], 0),
        ("single", "A sitter earns $34 for 4 hours and $51 for 6 hours. What is the constant of "
         "proportionality, in dollars per hour?", ["8.5", "17", "0.12", "30"], 0),
        ("multiple", "A line passes through (0, 0) and (4, 10). Select **every** true statement.",
         ["The constant of proportionality is 2.5", "The point (1, 2.5) is on the line",
          "The point (2, 5) is on the line", "The point (10, 4) is on the line"], [0, 1, 2]),
        ("numeric", "Twelve identical books weigh 18 pounds. What is the constant of proportionality in "
         "pounds per book?", "1.5", "0"),
        ("short", "A recipe uses 6 eggs for every 4 cups of flour. What is the constant of proportionality in "
         "eggs per cup of flour? Answer as a decimal.", ["1.5"]),
        ("extended", "A car goes 180 miles on 6 gallons of gas. Show how to find the constant of "
         "proportionality from a table, from a graph and from this sentence.", RUBRIC_EXPLAIN),
    ],
    "7.RP.A.2c": [
        ("single", "Pens cost $1.25 each. Which equation gives the total cost c of n pens?",
         ["c = 1.25n", "n = 1.25c", "c = n + 1.25", "c = 1.25 / n"], 0),
        ("single", "A tree grows 0.4 m each year. Which equation relates the growth h (meters) to the years y?",
         ["h = 0.4y", "y = 0.4h", "h = y + 0.4", "h = 0.4 / y"], 0),
        ("multiple", "d is proportional to t with constant of proportionality 15. Select **every** equation "
         "that represents the relationship.", ["d = 15t", "t = d / 15", "d / t = 15", "d = t + 15"], [0, 1, 2]),
        ("numeric", "If y = 2.4x, what is y when x = 15?", "36", "0"),
        ("short", "Write an equation for the total cost T of n tickets at $9 each.",
         ["T = 9n", "T=9n", "T = 9 n", "T = 9*n", "T = 9 × n"]),  # noqa: RUF001
        ("extended", "A gym charges $12 per class. Write an equation for the cost of c classes, explain each "
         "variable, and explain why adding a $20 joining fee makes the relationship not proportional.",
         RUBRIC_EXPLAIN),
    ],
    "7.RP.A.2d": [
        ("single", "On a graph of the cost of cheese against pounds, the point (1, 6.5) means:",
         ["One pound of cheese costs $6.50", "6.5 pounds of cheese cost $1", "Cheese costs $1 plus $6.50",
          "There are 6.5 kinds of cheese"], 0),
        ("single", "On a proportional graph of distance against time, what does the point (0, 0) mean?",
         ["In 0 hours, 0 miles are traveled", "The trip has ended", "The speed is 0", "The graph is wrong"], 0),
        ("multiple", "The graph of a proportional relationship passes through (1, r). Select **every** true "
         "statement.", ["r is the unit rate", "r is the constant of proportionality",
                        "The graph passes through (0, 0)", "The graph passes through (r, 1)"], [0, 1, 2]),
        ("numeric", "The point (5, 40) is on a proportional graph of earnings (dollars) against hours. What is "
         "y when x = 1?", "8", "0"),
        ("short", "On the graph of a proportional relationship, the point (1, r) shows the unit ____.",
         ["rate", "unit rate"]),
        ("extended", "The graph of pages read against minutes passes through (0, 0) and (10, 4). Explain what "
         "(10, 4), (0, 0) and (1, 0.4) mean in this situation.", RUBRIC_EXPLAIN),
    ],
    "7.RP.A.3": [
        ("single", "A $40 shirt is marked up 25%. What is the new price?", ["$50", "$65", "$30", "$45"], 0),
        ("single", "Sales tax is 8%. What is the total cost of a $35 meal?",
         ["$37.80", "$43.00", "$35.08", "$2.80"], 0),
        ("multiple", "A price went from $80 to $60. Select **every** true statement.",
         ["The price decreased by $20", "The percent decrease is 25%", "The percent decrease is 33 1/3%",
          "The new price is 75% of the old price"], [0, 1, 3]),
        ("numeric", "A waiter earns a 15% tip on a $64 bill. How many dollars is the tip?", "9.6", "0.005"),
        ("short", "A town grew from 2,000 to 2,300 people. What is the percent increase?",
         ["15%", "15", "15 %", "15 percent"]),
        ("extended", "A store takes 20% off, then another 10% off the sale price. Is that the same as 30% off? "
         "Explain with a $100 item.", RUBRIC_EXPLAIN),
    ],
}  # fmt: skip

ITEM_POINTS = {"single": 1, "multiple": 2, "numeric": 1, "short": 1, "extended": 3}
ITEM_TYPES = {
    "single": Item.Type.SINGLE_CHOICE,
    "multiple": Item.Type.MULTIPLE_CHOICE,
    "numeric": Item.Type.NUMERIC,
    "short": Item.Type.SHORT_TEXT,
    "extended": Item.Type.EXTENDED_TEXT,
}
# The leaves in the order students work through them (prerequisites first: 6.RP.A.1 before 6.RP.A.2,
# every part of 6.RP.A.3 before 7.RP.A.3).
PATH = [
    "6.RP.A.1", "6.RP.A.2", "6.RP.A.3a", "6.RP.A.3b", "6.RP.A.3c", "6.RP.A.3d",
    "7.RP.A.1", "7.RP.A.2a", "7.RP.A.2b", "7.RP.A.2c", "7.RP.A.2d", "7.RP.A.3",
]  # fmt: skip
# Retakes after a failed check need a passed practice first; the last leaves (which nobody in the
# demo history reaches) ask for the lesson to be watched again instead.
VIEW_RESOURCES_FROM = 9


def _short_code(competency: Competency) -> str:
    return competency.code.removeprefix("CCSS.Math.Content.")


@dataclass
class _Key:
    """How a simulated student answers an item: right or wrong."""

    type: str
    points: int
    right: object
    wrong: object


@dataclass
class DemoBank:
    practice: dict[str, Assessment]
    check: dict[str, Assessment]
    keys: dict[int, _Key]


def _bank(district: District, staff: User, leaves: list[Competency]) -> DemoBank:
    """Six items per leaf, a practice and a mastery check per leaf, everything active. Bulk inserts."""
    by_code = {_short_code(competency): competency for competency in leaves}
    specs = [(code, spec) for code in PATH for spec in BANK[code]]
    items = [
        Item(
            district=district,
            type=ITEM_TYPES[spec[0]],
            stem=spec[1],
            status=Item.Status.ACTIVE,
            max_points=Decimal(ITEM_POINTS[spec[0]]),
            partial_credit=spec[0] == "multiple",
            answer_value=Decimal(spec[2]) if spec[0] == "numeric" else None,
            answer_tolerance=Decimal(spec[3]) if spec[0] == "numeric" else Decimal(0),
            accepted_answers=list(spec[2]) if spec[0] == "short" else [],
        )
        for _, spec in specs
    ]
    history = {"default_user": staff, "default_change_reason": "Demo item bank"}
    items = bulk_create_with_history(items, Item, **history)
    choices = [
        ItemChoice(item=item, text=text, position=position, is_correct=_is_right(spec, position - 1))
        for item, (_, spec) in zip(items, specs, strict=True)
        if spec[0] in ("single", "multiple")
        for position, text in enumerate(spec[2], start=1)
    ]
    choices = bulk_create_with_history(choices, ItemChoice, **history)
    bulk_create_with_history(
        [
            RubricLevel(item=item, points=Decimal(points), description=description)
            for item, (_, spec) in zip(items, specs, strict=True)
            if spec[0] == "extended"
            for points, description in spec[2]
        ],
        RubricLevel,
        **history,
    )
    bulk_create_with_history(
        [
            ItemAlignment(item=item, competency=by_code[code], points=item.max_points)
            for item, (code, _) in zip(items, specs, strict=True)
        ],
        ItemAlignment,
        **history,
    )

    choices_of: dict[int, list[ItemChoice]] = {}
    for choice in choices:
        choices_of.setdefault(choice.item_id, []).append(choice)
    keys: dict[int, _Key] = {}
    for item, (_, spec) in zip(items, specs, strict=True):
        kind = spec[0]
        if kind == "single":
            right = next(choice.pk for choice in choices_of[item.pk] if choice.is_correct)
            wrong = next(choice.pk for choice in choices_of[item.pk] if not choice.is_correct)
        elif kind == "multiple":
            correct = [choice.pk for choice in choices_of[item.pk] if choice.is_correct]
            incorrect = [choice.pk for choice in choices_of[item.pk] if not choice.is_correct]
            right, wrong = correct, sorted([correct[0], incorrect[0]])
        elif kind == "numeric":
            right, wrong = spec[2], str(Decimal(spec[2]) * 2 + 1)
        elif kind == "short":
            right, wrong = spec[2][0], "I am not sure"
        else:
            right = "For every 2 of the first quantity there is 1 of the second; I checked it with a table."
            wrong = "I think you add them."
        keys[item.pk] = _Key(type=kind, points=ITEM_POINTS[kind], right=right, wrong=wrong)

    assessments = []
    for index, code in enumerate(PATH):
        competency = by_code[code]
        assessments += [
            Assessment(
                district=district,
                title=f"Practice: {code}",
                kind=Assessment.Kind.PRACTICE,
                competency=competency,
                status=Assessment.Status.ACTIVE,
            ),
            Assessment(
                district=district,
                title=f"Mastery check: {code}",
                kind=Assessment.Kind.MASTERY_CHECK,
                competency=competency,
                time_limit_minutes=20,
                cooldown_hours=12,
                remediation=(
                    Assessment.Remediation.VIEW_RESOURCES
                    if index >= VIEW_RESOURCES_FROM
                    else Assessment.Remediation.PASS_PRACTICE
                ),
                status=Assessment.Status.ACTIVE,
            ),
        ]
    assessments = bulk_create_with_history(assessments, Assessment, **history)
    rules = BlueprintRule.objects.bulk_create(
        BlueprintRule(
            assessment=assessment,
            competency_id=assessment.competency_id,
            draw_count=3 if assessment.kind == Assessment.Kind.PRACTICE else 4,
            position=1,
        )
        for assessment in assessments
    )
    # Practice gives feedback at once: its pool is the five auto-scored items. A mastery check draws
    # from every active item aligned to the competency, the rubric item included.
    auto_items: dict[int, list[int]] = {}
    for item, (code, spec) in zip(items, specs, strict=True):
        if spec[0] != "extended":
            auto_items.setdefault(by_code[code].pk, []).append(item.pk)
    BlueprintRule.items.through.objects.bulk_create(
        BlueprintRule.items.through(blueprintrule_id=rule.pk, item_id=item_id)
        for rule in rules
        if rule.draw_count == 3
        for item_id in auto_items[rule.competency_id]
    )
    practice = {_short_code(a.competency): a for a in assessments if a.kind == Assessment.Kind.PRACTICE}
    check = {_short_code(a.competency): a for a in assessments if a.kind == Assessment.Kind.MASTERY_CHECK}
    return DemoBank(practice=practice, check=check, keys=keys)


def _is_right(spec: tuple, index: int) -> bool:
    return index == spec[3] if spec[0] == "single" else index in spec[3]


# --- the history of attempts ----------------------------------------------------------------------


@dataclass
class _Plan:
    """One student's story: ``mastered`` leaves in path order (a first failure on the leaves in
    ``retry``), then ``stuck`` failed checks on the next leaf; one leaf every ``pace`` days from
    ``start`` days ago. ``practise_next``: a practice on the next leaf two days ago."""

    mastered: int
    start: int
    pace: int
    stuck: int = 0
    retry: frozenset[int] = frozenset()
    practise_next: bool = False


def _plan(index: int) -> _Plan:
    """index 0 is demo-student; the rest cycle through strong, steady, stuck, inactive, behind."""
    if index == 0:
        return _Plan(mastered=3, start=35, pace=9, retry=frozenset({1}), practise_next=True)
    variant = index // 5
    return [
        _Plan(
            mastered=5 + variant % 3,
            start=63,
            pace=8,
            retry=frozenset({2} if variant % 2 else ()),
            practise_next=True,
        ),
        _Plan(mastered=3 + variant % 2, start=60, pace=14, retry=frozenset({1}), practise_next=True),
        _Plan(mastered=1 + variant % 2, start=24, pace=7, stuck=2 + variant % 2),
        _Plan(mastered=variant % 2, start=56, pace=7, stuck=1 - variant % 2),
        _Plan(mastered=1 + variant % 2, start=20, pace=9, practise_next=True),
    ][index % 5]


class _History:
    def __init__(self, bank: DemoBank, teacher: User, today: datetime.datetime) -> None:
        self.bank = bank
        self.teacher = teacher
        self.today = today
        self.refused = 0
        # The start gate reads stored mastery, which the worker refreshes after commit; the whole seed
        # is one transaction, so a student's mastery is refreshed here before a gated competency.
        self.gated = set(Prerequisite.objects.values_list("competency_id", flat=True))
        self.refreshed: set[tuple[int, int]] = set()

    def take(self, assessment: Assessment, student: User, *, day: int, minute: int, passing: bool, seed: int):
        """One attempt ``day`` days ago, answered to pass or to fail; rubric items graded the next day
        (except yesterday's and today's: they wait in the teacher's grading queue)."""
        started = self.today - datetime.timedelta(days=day) + datetime.timedelta(hours=9, minutes=minute)
        gate = (student.pk, assessment.competency_id)
        if assessment.competency_id in self.gated and gate not in self.refreshed:
            progress_services.evidence_reconcile_for_student(student_id=student.pk)
            progress_services.mastery_recompute(
                student_id=student.pk, competency_ids=[assessment.competency_id], now=started
            )
            self.refreshed.add(gate)
        try:
            attempt = services.attempt_start(assessment=assessment, student=student, now=started, seed=seed)
        except services.AttemptRefused:
            self.refused += 1
            return None
        form = list(attempt.attempt_items.select_related("item").order_by("position"))
        keys = [self.bank.keys[attempt_item.item_id] for attempt_item in form]
        right = self._right_answers(keys, passing=passing, seed=seed)
        for offset, (attempt_item, key, is_right) in enumerate(zip(form, keys, right, strict=True)):
            services.response_save(
                attempt=attempt,
                item=attempt_item.item,
                answer=key.right if is_right else key.wrong,
                now=started + datetime.timedelta(minutes=2 + 2 * offset),
            )
        submitted = services.attempt_submit(attempt=attempt, now=started + datetime.timedelta(minutes=12))
        if submitted.status == Attempt.Status.SUBMITTED and (day > 1 or student.username == "demo-student"):
            graded_at = started + datetime.timedelta(days=1, hours=6)
            for response in submitted.responses.filter(needs_grading=True):
                points = 3 if passing else 1
                services.response_grade(response=response, points=points, grader=self.teacher, now=graded_at)
        return submitted

    @staticmethod
    def _right_answers(keys: list[_Key], *, passing: bool, seed: int) -> list[bool]:
        if not passing:
            # Only the first one-point item right: far below the mastery level.
            first = next(
                (i for i, key in enumerate(keys) if key.points == 1 and key.type != "extended"), None
            )
            return [i == first for i in range(len(keys))]
        right = [True] * len(keys)
        possible = sum(key.points for key in keys)
        if seed % 3 == 0:
            # Now and then one slip on a one-point item, when the rest still reaches the mastery level.
            slip = next((i for i, key in enumerate(keys) if key.points == 1 and key.type != "extended"), None)
            if slip is not None and (possible - 1) * 4 >= 3 * possible:
                right[slip] = False
        return right

    def live(self, student: User, index: int) -> None:
        plan = _plan(index)
        seed = 10_000 + 100 * index
        minute = index % 40
        day = plan.start
        for leaf in range(plan.mastered):
            code = PATH[leaf]
            seed += 1
            if plan.pace >= 10 or leaf in plan.retry:
                # Slower students practise first; the others go straight to the check.
                self.take(self.bank.practice[code], student, day=day, minute=minute, passing=True, seed=seed)
                day -= 1
            seed += 1
            if leaf in plan.retry:
                self.take(self.bank.check[code], student, day=day, minute=minute, passing=False, seed=seed)
                day -= 1
                seed += 1
                self.take(self.bank.practice[code], student, day=day, minute=minute, passing=True, seed=seed)
                day -= 1
                seed += 1
            self.take(self.bank.check[code], student, day=day, minute=minute, passing=True, seed=seed)
            day = max(day - plan.pace + 1, 2)
        if plan.stuck:
            code = PATH[plan.mastered]
            for _ in range(plan.stuck):
                seed += 1
                self.take(self.bank.practice[code], student, day=day, minute=minute, passing=True, seed=seed)
                day = max(day - 1, 1)
                seed += 1
                self.take(self.bank.check[code], student, day=day, minute=minute, passing=False, seed=seed)
                day = max(day - 3, 1)
        if plan.practise_next:
            code = PATH[plan.mastered]
            if index == 0:
                # demo-student tried the next leaf's practice eight days ago and has not got it yet:
                # the stuck flag the contract promises, with its mastery check still open to start.
                self.take(
                    self.bank.practice[code], student, day=8, minute=minute, passing=False, seed=seed + 1
                )
            else:
                self.take(
                    self.bank.practice[code], student, day=2, minute=minute, passing=True, seed=seed + 1
                )


def _history(bank: DemoBank, teacher: User, students: list[User], today: datetime.datetime) -> int:
    history = _History(bank, teacher, today)
    for index, student in enumerate(students):
        history.live(student, index)
    return history.refused
