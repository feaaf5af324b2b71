import datetime

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from assessments import services
from assessments.models import (
    Assessment,
    Attempt,
    BlueprintRule,
    Item,
    ItemAlignment,
    ItemChoice,
    Response,
    RubricLevel,
)
from competencies.models import Competency, Framework, LearningResource, PacingTarget, Prerequisite
from mastery import demo
from progress.models import InterventionFlag
from roster.models import Enrollment, Section, User

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_the_demo_district_and_prints_the_logins(capsys):
    call_command("seed_demo")

    output = capsys.readouterr().out
    assert "demo-staff" in output
    assert "demo-teacher" in output
    assert "demo-student" in output
    assert "password mastery-demo" in output
    framework = Framework.objects.get()
    assert framework.status == Framework.Status.PUBLISHED
    assert framework.mastery_scale.levels.get(is_mastery=True).name == "Mastery"
    assert Competency.objects.count() == 16
    assert Prerequisite.objects.count() == 2
    assert LearningResource.objects.count() == 24
    assert Section.objects.count() == 2
    assert User.objects.filter(role=User.Role.STUDENT).count() == 40
    assert Enrollment.objects.filter(role=Enrollment.Role.STUDENT).count() == 40
    assert Enrollment.objects.filter(user__username="demo-teacher").count() == 2
    assert PacingTarget.objects.count() == 24
    staff = authenticate(username="demo-staff", password="mastery-demo")
    assert staff is not None and staff.is_staff and staff.role == User.Role.DISTRICT_STAFF
    assert authenticate(username="demo-student", password="mastery-demo").role == User.Role.STUDENT


def test_seed_demo_twice_changes_nothing_and_reset_rebuilds(capsys):
    call_command("seed_demo")
    first_ids = sorted(User.objects.values_list("pk", flat=True))

    call_command("seed_demo")
    assert "exists already" in capsys.readouterr().out
    assert sorted(User.objects.values_list("pk", flat=True)) == first_ids

    call_command("seed_demo", "--reset")
    assert User.objects.count() == 42
    assert Competency.objects.count() == 16
    assert Item.objects.count() == 72
    assert Attempt.objects.count() == ATTEMPTS
    assert not set(User.objects.values_list("pk", flat=True)) & set(first_ids)


def test_production_settings_refuse_to_seed(settings):
    settings.IS_PRODUCTION = True
    with pytest.raises(CommandError, match="refuses to run with MASTERY_ENV=production"):
        call_command("seed_demo")
    assert User.objects.count() == 0


ATTEMPTS = 232  # 94 practices + 138 mastery checks (101 passed, 37 failed)


def test_seed_demo_builds_an_item_bank_and_a_history_of_attempts():
    # One seed for every assertion below: seeding takes seconds.
    demo.demo_seed()

    leaves = Competency.objects.filter(children__isnull=True)
    assert leaves.count() == 12
    assert Item.objects.filter(status=Item.Status.ACTIVE).count() == 72
    assert dict(Item.objects.values_list("type").annotate(n=Count("pk"))) == {
        Item.Type.SINGLE_CHOICE: 24,
        Item.Type.MULTIPLE_CHOICE: 12,
        Item.Type.NUMERIC: 12,
        Item.Type.SHORT_TEXT: 12,
        Item.Type.EXTENDED_TEXT: 12,
    }
    assert ItemChoice.objects.count() == 144
    assert ItemChoice.objects.filter(is_correct=True).count() == 24 + 32  # singles + multiples
    assert RubricLevel.objects.count() == 48
    assert ItemAlignment.objects.count() == 72
    for leaf in leaves:
        types = list(Item.objects.filter(alignments__competency=leaf).values_list("type", flat=True))
        assert len(types) == 6 and types.count(Item.Type.EXTENDED_TEXT) == 1, leaf.code
        practice = Assessment.objects.get(competency=leaf, kind=Assessment.Kind.PRACTICE)
        check = Assessment.objects.get(competency=leaf, kind=Assessment.Kind.MASTERY_CHECK)
        assert practice.status == check.status == Assessment.Status.ACTIVE
        assert (check.time_limit_minutes, check.cooldown_hours) == (20, 12)
        assert check.remediation in (
            Assessment.Remediation.PASS_PRACTICE,
            Assessment.Remediation.VIEW_RESOURCES,
        )
        assert BlueprintRule.objects.get(assessment=practice).draw_count == 3
        assert BlueprintRule.objects.get(assessment=check).draw_count == 4
        assert BlueprintRule.objects.get(assessment=practice).items.count() == 5  # the auto-scored ones
    assert Assessment.objects.count() == 24
    # Every item got its "created" history row, by the demo staff member.
    assert Item.history.filter(history_type="+", history_user__username="demo-staff").count() == 72

    # The history, written through attempt_start / response_save / attempt_submit / response_grade.
    assert Attempt.objects.count() == ATTEMPTS
    assert Attempt.objects.filter(assessment__kind=Assessment.Kind.PRACTICE).count() == 94
    checks = Attempt.objects.filter(assessment__kind=Assessment.Kind.MASTERY_CHECK)
    assert checks.filter(is_passed=True).count() == 101
    assert checks.filter(is_passed=False).count() == 37
    assert not Attempt.objects.filter(status=Attempt.Status.IN_PROGRESS).exists()
    assert Response.objects.filter(attempt__isnull=False).count() == 834
    # Stuck students: two or more failed checks on one competency.
    repeated_failures = (
        checks.filter(is_passed=False)
        .values("student", "assessment")
        .annotate(n=Count("pk"))
        .filter(n__gte=2)
        .count()
    )
    assert repeated_failures == 8
    # Inactive students: nothing in the last three weeks.
    three_weeks_ago = timezone.now() - datetime.timedelta(weeks=3)
    active = set(Attempt.objects.filter(started_at__gte=three_weeks_ago).values_list("student", flat=True))
    assert User.objects.filter(role=User.Role.STUDENT).exclude(pk__in=active).count() == 8

    # demo-student mastered three competencies (one at the second try) and may start a check now.
    student = User.objects.get(username="demo-student")
    attempts = Attempt.objects.filter(student=student)
    assert attempts.count() == 7
    assert not attempts.filter(status=Attempt.Status.IN_PROGRESS).exists()
    passed = attempts.filter(assessment__kind=Assessment.Kind.MASTERY_CHECK, is_passed=True)
    assert sorted(passed.values_list("assessment__title", flat=True)) == [
        "Mastery check: 6.RP.A.1",
        "Mastery check: 6.RP.A.2",
        "Mastery check: 6.RP.A.3a",
    ]
    assert attempts.filter(assessment__title="Mastery check: 6.RP.A.2", is_passed=False).count() == 1
    # ... and has the open flag the contract promises: stuck on the next leaf, whose practice failed.
    stuck = InterventionFlag.objects.get(student=student, kind=InterventionFlag.Kind.STUCK)
    assert (stuck.status, stuck.competency.code) == ("open", "CCSS.Math.Content.6.RP.A.3b")
    assert stuck.reason == "has been on CCSS.Math.Content.6.RP.A.3b for 8 days without mastering it"
    ready = Assessment.objects.get(title="Mastery check: 6.RP.A.3c")
    attempt = services.attempt_start(assessment=ready, student=student)
    assert attempt.status == Attempt.Status.IN_PROGRESS
    assert attempt.attempt_items.count() == 4
