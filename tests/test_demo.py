import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from competencies.models import Competency, Framework, LearningResource, PacingTarget, Prerequisite
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
    assert not set(User.objects.values_list("pk", flat=True)) & set(first_ids)


def test_production_settings_refuse_to_seed(settings):
    settings.IS_PRODUCTION = True
    with pytest.raises(CommandError, match="refuses to run with MASTERY_ENV=production"):
        call_command("seed_demo")
    assert User.objects.count() == 0
