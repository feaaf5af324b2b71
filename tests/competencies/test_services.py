"""Catalog write services: prerequisites stay acyclic, the framework life cycle, the import report."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from competencies.case_format import find_cycle
from competencies.models import Framework, Prerequisite
from competencies.services import (
    ImportReport,
    framework_publish,
    framework_retire,
    prerequisite_add,
    prerequisite_graph_has_cycle,
    prerequisite_remove,
)
from tests.factories import CompetencyFactory, FrameworkFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain():
    framework = FrameworkFactory()
    first = CompetencyFactory(framework=framework, code="A.1")
    second = CompetencyFactory(framework=framework, code="A.2")
    third = CompetencyFactory(framework=framework, code="A.3")
    return first, second, third


def test_prerequisite_add_records_the_edge_with_history(chain):
    first, second, _ = chain
    staff = StaffFactory()
    edge = prerequisite_add(prerequisite=first, competency=second, user=staff)
    assert (edge.prerequisite, edge.competency) == (first, second)
    assert Prerequisite.history.get().history_user == staff


def test_prerequisite_add_refuses_a_two_cycle_with_the_codes(chain):
    first, second, _ = chain
    prerequisite_add(prerequisite=first, competency=second)
    with pytest.raises(ValidationError) as error:
        prerequisite_add(prerequisite=second, competency=first)
    assert error.value.messages == ["A.2 -> A.1 -> A.2 would form a cycle"]
    assert Prerequisite.objects.count() == 1


def test_prerequisite_add_refuses_a_longer_cycle(chain):
    first, second, third = chain
    prerequisite_add(prerequisite=first, competency=second)
    prerequisite_add(prerequisite=second, competency=third)
    with pytest.raises(ValidationError) as error:
        prerequisite_add(prerequisite=third, competency=first)
    assert error.value.messages == ["A.3 -> A.1 -> A.2 -> A.3 would form a cycle"]
    # A shortcut in the same direction is fine.
    prerequisite_add(prerequisite=first, competency=third)
    assert Prerequisite.objects.count() == 3
    assert prerequisite_graph_has_cycle(framework=first.framework) is False


def test_prerequisite_add_refuses_self_edges_and_duplicates(chain):
    first, second, _ = chain
    with pytest.raises(ValidationError, match=r"A\.1 cannot be its own prerequisite"):
        prerequisite_add(prerequisite=first, competency=first)
    prerequisite_add(prerequisite=first, competency=second)
    with pytest.raises(ValidationError, match=r"A\.1 is already a prerequisite of A\.2"):
        prerequisite_add(prerequisite=first, competency=second)


def test_prerequisite_remove(chain):
    first, second, _ = chain
    edge = prerequisite_add(prerequisite=first, competency=second)
    prerequisite_remove(edge=edge)
    assert Prerequisite.objects.count() == 0
    assert Prerequisite.history.filter(history_type="-").count() == 1


def test_find_cycle_pure():
    assert find_cycle([(1, 2), (2, 3)]) is None
    assert find_cycle([(1, 2), (2, 3), (3, 1)]) == [1, 2, 3, 1]
    assert find_cycle([("a", "a")]) == ["a", "a"]


def test_publish_and_retire():
    framework = FrameworkFactory(status=Framework.Status.DRAFT)
    with pytest.raises(ValidationError, match="without competencies"):
        framework_publish(framework=framework)
    CompetencyFactory(framework=framework)
    staff = StaffFactory()
    assert framework_publish(framework=framework, user=staff).status == Framework.Status.PUBLISHED
    assert framework.history.first().history_user == staff
    assert framework_retire(framework=framework).status == Framework.Status.RETIRED
    framework.refresh_from_db()
    assert framework.status == Framework.Status.RETIRED


def test_import_report_totals_and_summary():
    report = ImportReport(framework=None, dry_run=False)
    report.count("competencies", "created", 16)
    report.count("prerequisites", "created", 3)
    report.count("framework", "unchanged")
    assert (report.created, report.updated, report.unchanged) == (19, 0, 1)
    assert report.summary() == (
        "framework: 0 created, 0 updated, 1 unchanged; competencies: 16 created, 0 updated, 0 unchanged; "
        "prerequisites: 3 created, 0 updated, 0 unchanged; associations: 0 created, 0 updated, 0 unchanged"
    )
