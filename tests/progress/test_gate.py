"""The start gate: prerequisites and view_resources remediation, through the attempts API."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments import services as assessment_services
from assessments.models import Assessment
from progress import gates, services
from tests.assessments.conftest import api_client_for
from tests.factories import LearningResourceFactory, PrerequisiteFactory, TeacherFactory
from tests.progress.test_services import check_for, make_world, take

pytestmark = pytest.mark.django_db


def start(client, assessment):
    return client.post(reverse("attempt-start", args=[assessment.pk]))


def test_409_with_the_prerequisite_until_it_is_mastered_then_201(django_capture_on_commit_callbacks):
    world = make_world()
    PrerequisiteFactory(prerequisite=world.first, competency=world.second)
    client = api_client_for(world.student)

    refused = start(client, world.second_check)
    assert refused.status_code == 409
    assert refused.json() == {"detail": "Master 6.RP.A.1 first: Understand ratios."}

    with django_capture_on_commit_callbacks(execute=True):  # a passing mastery check, then the recompute
        take(world.first_check, world.student, right=4, now=timezone.now() - datetime.timedelta(hours=1))

    assert start(client, world.second_check).status_code == 201


def test_a_teacher_unlock_opens_the_gate():
    world = make_world()
    PrerequisiteFactory(prerequisite=world.first, competency=world.second)
    assert gates.start_gate(world.second_check, world.student) == "Master 6.RP.A.1 first: Understand ratios."
    services.mastery_override(
        student=world.student,
        competency=world.second,
        state="unlocked",
        author=TeacherFactory(),
        note="Ready",
    )
    assert gates.start_gate(world.second_check, world.student) is None


def test_several_missing_prerequisites_are_named():
    world = make_world()
    PrerequisiteFactory(prerequisite=world.first, competency=world.second)
    other = PrerequisiteFactory(
        competency=world.second, prerequisite__code="5.NF.1", prerequisite__position=9
    )
    assert gates.start_gate(world.second_check, world.student) == (
        f"Master 6.RP.A.1 first: Understand ratios. Then also {other.prerequisite.code}."
    )


def test_view_resources_remediation_needs_the_lesson_reopened_after_a_failed_attempt():
    world = make_world()
    check = check_for(world.first, remediation=Assessment.Remediation.VIEW_RESOURCES)
    video = LearningResourceFactory(competency=world.first, title="Ratios in 6 minutes")
    LearningResourceFactory(competency=world.first, title="Practice set", kind="practice")  # not required
    now = timezone.now()
    services.lesson_resource_viewed(
        student=world.student, resource=video, now=now - datetime.timedelta(hours=3)
    )
    take(check, world.student, right=1, now=now - datetime.timedelta(hours=2))  # failed

    client = api_client_for(world.student)
    refused = start(client, check)
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": "Remediation not done: review the lesson before retaking: “Ratios in 6 minutes”."
    }

    viewed = client.post(reverse("resource-viewed", args=[video.pk]))
    assert viewed.status_code == 200
    assert start(client, check).status_code == 201


def test_the_gate_does_not_apply_after_a_passed_attempt():
    world = make_world()
    check = check_for(world.first, remediation=Assessment.Remediation.VIEW_RESOURCES)
    LearningResourceFactory(competency=world.first)
    take(check, world.student, right=4, now=timezone.now() - datetime.timedelta(hours=2))
    attempt = assessment_services.attempt_start(assessment=check, student=world.student)
    assert attempt.number == 2
