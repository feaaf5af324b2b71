"""One world for the authorization matrix and the API fuzzing: two districts, three sections, their
teachers and students, a catalog per district, attempts (open and submitted), responses, flags,
mastery rows, rescoring jobs and lessons.

Owners. Every object that belongs to a person is owned by ``a1`` (the student of section A1, taught by
``teacher``), ``a2`` (a student of section A2 in the same district, taught by ``other_teacher``) or
``b`` (a student of section B1 in district B). Catalog objects are owned by a district, ``A`` or ``B``.
``missing`` is an id no object has. The CASE provider's objects are ``A`` and ``B`` (published) or
``draft`` (district A's unpublished framework).

Roles: ``anonymous``, ``student`` (owns a1), ``other_student`` (owns a2), ``teacher`` (teaches A1),
``other_teacher`` (teaches A2), ``staff`` (district A) and ``other_staff`` (district B).

Leak tokens. Text that only the people allowed to see an object may read carries a token: ``Zqa1q``,
``Zqa2q``, ``Zqbq`` on people's objects (student names, flag reasons, saved answers); ``ZdAd`` and
``ZdBd`` on catalog objects (framework titles, statements, item stems, assessment titles, lessons);
``Zkey`` in every answer key (accepted answers, correct choices, rubric descriptions).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from assessments import services as assessment_services
from assessments.models import Assessment, Attempt, Item, ItemChoice, RescoreJob, Response, RubricLevel
from competencies.models import Framework, PacingGuide, Prerequisite
from progress.models import CompetencyMastery, InterventionFlag
from roster.models import Enrollment, Section, User
from tests.factories import (
    AssessmentFactory,
    BlueprintRuleFactory,
    CompetencyFactory,
    DistrictFactory,
    FrameworkFactory,
    ItemAlignmentFactory,
    ItemFactory,
    LearningResourceFactory,
    SchoolFactory,
    SectionFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
    TermFactory,
)

PERSON_OWNERS = ("a1", "a2", "b")
DISTRICT_OWNERS = ("A", "B")
MISSING_ID = 987_654_321
MISSING_UUID = "00000000-0000-4000-8000-000000000000"
KEY_TOKEN = "Zkey"
ROLES = ("anonymous", "student", "other_student", "teacher", "other_teacher", "staff", "other_staff")


def person_token(owner: str) -> str:
    return f"Zq{owner}q"


def district_token(district: str) -> str:
    return f"Zd{district}d"


def district_of(owner: str) -> str:
    return "B" if owner in ("b", "B") else "A"


@dataclass(frozen=True)
class Role:
    """Who the role is and what it may see."""

    name: str
    kind: str  # anonymous, student, teacher, staff
    username: str | None = None
    own: frozenset[str] = frozenset()  # person owners that are the caller themself
    taught: frozenset[str] = frozenset()  # person owners in the caller's sections
    district: str | None = None

    def sees_person(self, owner: str) -> bool:
        """Whether people's data of ``owner`` may appear in anything the role reads."""
        if self.kind == "student":
            return owner in self.own
        if self.kind == "teacher":
            return owner in self.taught
        if self.kind == "staff":
            return district_of(owner) == self.district
        return False

    def sees_district(self, district: str) -> bool:
        return self.district == district


ROLE_TABLE: dict[str, Role] = {
    "anonymous": Role("anonymous", "anonymous"),
    "student": Role("student", "student", "zz-student-a1", own=frozenset({"a1"}), district="A"),
    "other_student": Role("other_student", "student", "zz-student-a2", own=frozenset({"a2"}), district="A"),
    "teacher": Role("teacher", "teacher", "zz-teacher-a1", taught=frozenset({"a1"}), district="A"),
    "other_teacher": Role(
        "other_teacher", "teacher", "zz-teacher-a2", taught=frozenset({"a2"}), district="A"
    ),
    "staff": Role("staff", "staff", "zz-staff-a", district="A"),
    "other_staff": Role("other_staff", "staff", "zz-staff-b", district="B"),
}


@dataclass
class World:
    users: dict[str, User] = field(default_factory=dict)  # role name -> user
    cookies: dict[str, str] = field(default_factory=dict)  # role name -> a signed-in session's key
    # kind -> owner -> object
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, kind: str, owner: str, obj: Any) -> None:
        self.objects.setdefault(kind, {})[owner] = obj

    def get(self, kind: str, owner: str) -> Any:
        return self.objects[kind][owner]


def _catalog(world: World, district_name: str, district) -> None:
    token = district_token(district_name)
    framework = FrameworkFactory(district=district, title=f"Framework {token}")
    first = CompetencyFactory(framework=framework, code=f"{district_name}.1", statement=f"Ratios {token}")
    second = CompetencyFactory(framework=framework, code=f"{district_name}.2", statement=f"Rates {token}")
    Prerequisite.objects.create(prerequisite=first, competency=second)
    resource = LearningResourceFactory(competency=first, title=f"Lesson {token}")
    short = ItemFactory(
        district=district,
        stem=f"Plants take in what? {token}",
        accepted_answers=[f"{KEY_TOKEN}-{district_name}-short"],
        aligned_to=first,
    )
    single = ItemFactory(
        district=district, type=Item.Type.SINGLE_CHOICE, stem=f"Pick one {token}", accepted_answers=[]
    )
    ItemChoice.objects.create(item=single, text="right one", is_correct=True, position=1)
    ItemChoice.objects.create(item=single, text="wrong one", is_correct=False, position=2)
    ItemAlignmentFactory(item=single, competency=first)
    extended = ItemFactory(
        district=district, type=Item.Type.EXTENDED_TEXT, stem=f"Explain {token}", accepted_answers=[]
    )
    RubricLevel.objects.create(item=extended, points=Decimal(1), description=f"{KEY_TOKEN} rubric full")
    ItemAlignmentFactory(item=extended, competency=first)
    items = [short, single]
    open_check = AssessmentFactory(district=district, competency=first, title=f"Open check {token}")
    BlueprintRuleFactory(assessment=open_check, competency=first, items=items, draw_count=len(items))
    done_check = AssessmentFactory(district=district, competency=first, title=f"Done check {token}")
    BlueprintRuleFactory(assessment=done_check, competency=first, items=[short], draw_count=1)
    graded_check = AssessmentFactory(district=district, competency=first, title=f"Essay {token}")
    BlueprintRuleFactory(assessment=graded_check, competency=first, items=[extended], draw_count=1)
    draft = FrameworkFactory(district=district, title=f"Draft {token}", status=Framework.Status.DRAFT)
    draft_competency = CompetencyFactory(
        framework=draft, code=f"{district_name}.D", statement=f"Draft {token}"
    )
    draft_edge = Prerequisite.objects.create(
        prerequisite=draft_competency,
        competency=CompetencyFactory(framework=draft, code=f"{district_name}.E", statement=f"Draft {token}"),
    )
    job = RescoreJob.objects.create(reason=f"Key fix {token}")
    job.items.set([short])

    world.put("framework", district_name, framework)
    world.put("competency", district_name, first)
    world.put("second_competency", district_name, second)
    world.put("resource", district_name, resource)
    world.put("item", district_name, short)
    world.put("extended_item", district_name, extended)
    world.put("assessment", district_name, open_check)
    world.put("done_assessment", district_name, done_check)
    world.put("graded_assessment", district_name, graded_check)
    world.put("rescore_job", district_name, job)
    world.put("case_document", district_name, framework)
    world.put("case_item", district_name, first)
    world.put("case_association", district_name, Prerequisite.objects.get(competency=second))
    if district_name == "A":
        world.put("case_document", "draft", draft)
        world.put("case_item", "draft", draft_competency)
        world.put("case_association", "draft", draft_edge)
    for section_owner in [owner for owner in PERSON_OWNERS if district_of(owner) == district_name]:
        section = world.get("section", section_owner)
        PacingGuide.objects.create(section=section, framework=framework)


def _person(world: World, owner: str, section: Section, now: datetime.datetime) -> None:
    district = section.school.district
    token = person_token(owner)
    student = world.get("student", owner)
    district_name = district_of(owner)
    competency = world.get("competency", district_name)
    open_attempt = assessment_services.attempt_start(
        assessment=world.get("assessment", district_name), student=student, now=now, seed=1
    )
    short = world.get("item", district_name)
    assessment_services.response_save(attempt=open_attempt, item=short, answer=f"saved {token}", now=now)
    done_attempt = assessment_services.attempt_start(
        assessment=world.get("done_assessment", district_name), student=student, now=now, seed=1
    )
    assessment_services.response_save(attempt=done_attempt, item=short, answer=f"done {token}", now=now)
    done_attempt = assessment_services.attempt_submit(attempt=done_attempt, now=now)
    essay = assessment_services.attempt_start(
        assessment=world.get("graded_assessment", district_name), student=student, now=now, seed=1
    )
    extended = world.get("extended_item", district_name)
    assessment_services.response_save(attempt=essay, item=extended, answer=f"essay {token}", now=now)
    assessment_services.attempt_submit(attempt=essay, now=now)
    flag = InterventionFlag.objects.create(
        student=student,
        competency=competency,
        kind=InterventionFlag.Kind.STUCK,
        reason=f"Failed twice {token}",
        suggestion="Re-watch the lesson",
        opened_at=now,
    )
    CompetencyMastery.objects.update_or_create(
        student=student, competency=competency, defaults={"state": CompetencyMastery.State.IN_PROGRESS}
    )
    world.put("attempt", owner, open_attempt)
    world.put("submitted_attempt", owner, done_attempt)
    world.put("open_response", owner, Response.objects.get(attempt=open_attempt, item=short))
    world.put("response", owner, Response.objects.get(attempt=essay, item=extended))
    world.put("flag", owner, flag)
    world.put("form_item", owner, short)
    world.put("district", owner, district)


def build_world() -> World:
    """Everything above, built through the services where a service exists."""
    world = World()
    now = timezone.now() - datetime.timedelta(hours=1)
    districts = {"A": DistrictFactory(name="District A"), "B": DistrictFactory(name="District B")}
    schools = {name: SchoolFactory(district=district) for name, district in districts.items()}
    terms = {name: TermFactory(district=district) for name, district in districts.items()}
    for owner in PERSON_OWNERS:
        name = district_of(owner)
        section = SectionFactory(school=schools[name], term=terms[name], title=f"Section {owner.upper()}")
        student = StudentFactory(
            district=districts[name],
            username=f"zz-student-{owner}",
            first_name=person_token(owner),
            last_name="Pupil",
        )
        teacher = TeacherFactory(district=districts[name], username=f"zz-teacher-{owner}")
        Enrollment.objects.create(section=section, user=student, role=Enrollment.Role.STUDENT)
        Enrollment.objects.create(section=section, user=teacher, role=Enrollment.Role.TEACHER)
        world.put("section", owner, section)
        world.put("student", owner, student)
        world.put("teacher", owner, teacher)
    for name, district in districts.items():
        _catalog(world, name, district)
        world.put("staff", name, StaffFactory(district=district, username=f"zz-staff-{name.lower()}"))
    for owner in PERSON_OWNERS:
        _person(world, owner, world.get("section", owner), now)
    world.users = {
        "student": world.get("student", "a1"),
        "other_student": world.get("student", "a2"),
        "teacher": world.get("teacher", "a1"),
        "other_teacher": world.get("teacher", "a2"),
        "staff": world.get("staff", "A"),
        "other_staff": world.get("staff", "B"),
    }
    return world


def identifier_of(kind: str, obj: Any) -> str:
    """What goes into the URL for an object of ``kind``."""
    if kind in ("case_document", "case_item", "case_association"):
        return str(obj.identifier)
    return str(obj.pk)


def missing_value(kind: str) -> str:
    if kind.startswith("case_"):
        return MISSING_UUID
    return str(MISSING_ID)


def new_uuid() -> str:
    return str(uuid.uuid4())


__all__ = [
    "DISTRICT_OWNERS",
    "KEY_TOKEN",
    "MISSING_ID",
    "PERSON_OWNERS",
    "ROLES",
    "ROLE_TABLE",
    "Assessment",
    "Attempt",
    "World",
    "build_world",
    "district_of",
    "district_token",
    "identifier_of",
    "missing_value",
    "person_token",
]
