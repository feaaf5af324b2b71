"""The CASE provider: JSON shapes, published frameworks only, 404s, flat query counts."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from competencies.case_format import validate_package
from competencies.models import Competency, Framework
from competencies.services import framework_import_case, framework_publish, prerequisite_add
from tests.competencies.test_case_import import SAMPLE_16, fixture_bytes
from tests.factories import CompetencyFactory, FrameworkFactory

pytestmark = pytest.mark.django_db
VERSIONS = ["v1p0", "v1p1"]


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def sample() -> Framework:
    framework = framework_import_case(source=fixture_bytes(SAMPLE_16)).framework
    return framework_publish(framework=framework)


@pytest.mark.parametrize("version", VERSIONS)
def test_documents_lists_published_frameworks_only(client, sample, version):
    FrameworkFactory(status=Framework.Status.DRAFT, title="Draft")
    response = client.get(f"/ims/case/{version}/CFDocuments")
    assert response.status_code == 200
    documents = response.json()["CFDocuments"]
    assert [document["identifier"] for document in documents] == [str(sample.identifier)]
    assert documents[0]["title"] == "What Standards Could Be"
    assert documents[0]["CFPackageURI"]["identifier"] == str(sample.identifier)


@pytest.mark.parametrize("version", VERSIONS)
def test_document_package_item_association_shapes(client, sample, version):
    base = f"/ims/case/{version}"
    document = client.get(f"{base}/CFDocuments/{sample.identifier}").json()
    assert document["identifier"] == str(sample.identifier)
    assert document["lastChangeDateTime"] == "2017-05-25T18:05:33Z"

    package = client.get(f"{base}/CFPackages/{sample.identifier}").json()
    validate_package(package)
    assert len(package["CFItems"]) == 16
    assert len(package["CFAssociations"]) == 16 + 3 + 16 + 2 + 2

    item = client.get(f"{base}/CFItems/d83a65ed-770c-4dbe-a505-11e5e17a9a79").json()
    assert item["humanCodingScheme"] == "CCSS.Math.Content.6.RP.A.3"
    assert item["CFDocumentURI"]["identifier"] == str(sample.identifier)

    precedes = client.get(f"{base}/CFAssociations/a8710e99-67e8-4516-85b6-4ae8cc6dfc24").json()
    assert precedes["associationType"] == "precedes"
    child_of = client.get(f"{base}/CFAssociations/a7364b9e-91e7-4b09-875f-5eab0d3e6f7c").json()
    assert (child_of["associationType"], child_of["sequenceNumber"]) == ("isChildOf", 1)
    exemplar = client.get(f"{base}/CFAssociations/02b65381-825f-4515-9f99-b757a6c770b9").json()
    assert exemplar["associationType"] == "exemplar"

    with_associations = client.get(f"{base}/CFItemAssociations/d83a65ed-770c-4dbe-a505-11e5e17a9a79").json()
    assert with_associations["CFItem"]["identifier"] == "d83a65ed-770c-4dbe-a505-11e5e17a9a79"
    types = sorted(association["associationType"] for association in with_associations["CFAssociations"])
    # its own isChildOf, four children, precedes 7.RP.A.3, and its exactMatchOf
    assert types == [
        "exactMatchOf",
        "isChildOf",
        "isChildOf",
        "isChildOf",
        "isChildOf",
        "isChildOf",
        "precedes",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "CFDocuments/{unknown}",
        "CFPackages/{unknown}",
        "CFItems/{unknown}",
        "CFAssociations/{unknown}",
        "CFItemAssociations/{unknown}",
        "CFDocuments/not-a-uuid",
        "CFItems/not-a-uuid",
        "CFDocuments/{draft}",
        "CFPackages/{draft}",
        "CFItems/{draft_item}",
        "CFItemAssociations/{draft_item}",
    ],
)
def test_unknown_or_unpublished_is_a_json_404(client, sample, path):
    draft = FrameworkFactory(status=Framework.Status.DRAFT)
    draft_item = CompetencyFactory(framework=draft)
    url = "/ims/case/v1p0/" + path.format(
        unknown=uuid.uuid4(), draft=draft.identifier, draft_item=draft_item.identifier
    )
    response = client.get(url)
    assert response.status_code == 404
    assert "detail" in response.json()


def test_no_login_needed_even_with_bad_credentials(client, sample):
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/ims/case/v1p1/CFDocuments").status_code == 200


def _published_framework(size: int) -> Framework:
    framework = FrameworkFactory(status=Framework.Status.PUBLISHED)
    parent = CompetencyFactory(framework=framework, code="ROOT")
    previous = None
    for index in range(size):
        competency = CompetencyFactory(
            framework=framework, parent=parent, code=f"ROOT.{index}", position=index
        )
        if previous is not None:
            prerequisite_add(prerequisite=previous, competency=competency)
        previous = competency
    return framework


@pytest.mark.parametrize("size", [3, 30])
def test_query_counts_are_flat(client, django_assert_num_queries, size):
    framework = _published_framework(size)
    FrameworkFactory.create_batch(size // 3 + 1, status=Framework.Status.PUBLISHED)
    root = Competency.objects.get(framework=framework, code="ROOT")
    middle = Competency.objects.get(framework=framework, code="ROOT.1")
    with django_assert_num_queries(1):
        assert client.get("/ims/case/v1p0/CFDocuments").status_code == 200
    with django_assert_num_queries(4):  # framework, competencies, prerequisites, other associations
        assert client.get(f"/ims/case/v1p0/CFPackages/{framework.identifier}").status_code == 200
    with django_assert_num_queries(1):
        assert client.get(f"/ims/case/v1p0/CFItems/{middle.identifier}").status_code == 200
    with django_assert_num_queries(4):  # item, children, prerequisites, other associations
        assert client.get(f"/ims/case/v1p0/CFItemAssociations/{root.identifier}").status_code == 200
    with django_assert_num_queries(1):  # found as an isChildOf on the first lookup
        assert (
            client.get(f"/ims/case/v1p0/CFAssociations/{middle.child_association_identifier}").status_code
            == 200
        )
