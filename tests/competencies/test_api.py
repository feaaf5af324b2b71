import itertools

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import (
    CompetencyFactory,
    DistrictFactory,
    FrameworkFactory,
    PrerequisiteFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = pytest.mark.django_db


def api_client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def build_framework(*, district, leaves: int):
    framework = FrameworkFactory(district=district, title="Grade 7 Math")
    domain = CompetencyFactory(framework=framework, code="7.RP", position=1)
    children = [
        CompetencyFactory(framework=framework, parent=domain, code=f"7.RP.{i}", position=i)
        for i in range(1, leaves + 1)
    ]
    for before, after in itertools.pairwise(children):
        PrerequisiteFactory(prerequisite=before, competency=after)
    return framework, domain, children


def test_staff_lists_frameworks_of_their_district_and_shared_ones_only():
    district = DistrictFactory()
    staff = StaffFactory(district=district)
    own, _, _ = build_framework(district=district, leaves=2)
    shared = FrameworkFactory(district=None, title="Shared framework")
    FrameworkFactory(district=DistrictFactory(), title="Other district")

    response = api_client_for(staff).get(reverse("framework-list"))

    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == [own.pk, shared.pk]
    assert response.json()[0]["competency_count"] == 3


@pytest.mark.parametrize("leaves", [3, 30])
def test_framework_competencies_in_tree_order_with_flat_query_count(django_assert_num_queries, leaves):
    district = DistrictFactory()
    staff = StaffFactory(district=district)
    framework, domain, children = build_framework(district=district, leaves=leaves)
    client = api_client_for(staff)
    url = reverse("framework-competencies", args=[framework.pk])

    # framework lookup, competencies (one recursive CTE), prerequisite edges
    with django_assert_num_queries(3):
        response = client.get(url)

    assert response.status_code == 200
    rows = response.json()
    assert [row["code"] for row in rows] == ["7.RP"] + [f"7.RP.{i}" for i in range(1, leaves + 1)]
    assert rows[0]["parent"] is None
    assert rows[0]["depth"] == 0
    assert rows[1]["parent"] == domain.pk
    assert rows[1]["depth"] == 1
    assert rows[1]["prerequisites"] == []
    assert rows[2]["prerequisites"] == [children[0].pk]
    assert rows[1]["identifier"] == str(children[0].identifier)


def test_framework_of_another_district_is_not_found():
    staff = StaffFactory(district=DistrictFactory())
    other, _, _ = build_framework(district=DistrictFactory(), leaves=1)

    response = api_client_for(staff).get(reverse("framework-competencies", args=[other.pk]))

    assert response.status_code == 404
    assert response.json() == {"detail": "No Framework matches the given query."}


@pytest.mark.parametrize("factory", [StudentFactory, TeacherFactory])
def test_catalog_api_refuses_students_and_teachers(factory):
    response = api_client_for(factory()).get(reverse("framework-list"))
    assert response.status_code == 403


def test_catalog_api_asks_anonymous_callers_to_authenticate():
    response = APIClient().get(reverse("framework-list"))
    assert response.status_code in (401, 403)
    assert "detail" in response.json()


def test_token_endpoint_issues_a_token_that_authenticates():
    StaffFactory(username="curator")
    client = APIClient()
    response = client.post(
        reverse("api-token"), {"username": "curator", "password": "correct-horse-battery"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(reverse("framework-list")).status_code == 200


def test_token_endpoint_refuses_a_wrong_password_with_400():
    StaffFactory(username="curator")
    response = APIClient().post(
        reverse("api-token"), {"username": "curator", "password": "wrong"}, format="json"
    )
    assert response.status_code == 400
