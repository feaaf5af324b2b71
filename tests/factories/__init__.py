"""factory_boy factories for every app, importable as ``from tests.factories import ...``."""

from tests.factories.competencies import (
    CompetencyFactory,
    FrameworkFactory,
    LearningResourceFactory,
    MasteryLevelFactory,
    MasteryScaleFactory,
    PrerequisiteFactory,
)
from tests.factories.roster import (
    DistrictFactory,
    EnrollmentFactory,
    SchoolFactory,
    SectionFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
    TermFactory,
    UserFactory,
)

__all__ = [
    "CompetencyFactory",
    "DistrictFactory",
    "EnrollmentFactory",
    "FrameworkFactory",
    "LearningResourceFactory",
    "MasteryLevelFactory",
    "MasteryScaleFactory",
    "PrerequisiteFactory",
    "SchoolFactory",
    "SectionFactory",
    "StaffFactory",
    "StudentFactory",
    "TeacherFactory",
    "TermFactory",
    "UserFactory",
]
from tests.factories.assessments import (
    AssessmentFactory,
    AttemptFactory,
    BlueprintRuleFactory,
    ItemAlignmentFactory,
    ItemChoiceFactory,
    ItemFactory,
    RubricLevelFactory,
)

__all__ += [
    "AssessmentFactory",
    "AttemptFactory",
    "BlueprintRuleFactory",
    "ItemAlignmentFactory",
    "ItemChoiceFactory",
    "ItemFactory",
    "RubricLevelFactory",
]
from tests.factories.progress import (  # noqa: E402  (appended after the lists above)
    BKTParametersFactory,
    CompetencyMasteryFactory,
    EvidenceFactory,
)

__all__ += [
    "BKTParametersFactory",
    "CompetencyMasteryFactory",
    "EvidenceFactory",
]
