"""The CASE provider: read-only CASE 1.0/1.1 JSON for published frameworks, no login.

Each view parses the identifier, calls one selector and answers; anything unknown, unpublished or
malformed is a 404 with ``{"detail": ...}``, the same answer as for a framework that does not exist.
"""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from competencies import selectors
from competencies.case_format import link
from roster.permissions import ErrorAnswersSchema

TAGS = ["CASE provider"]
IDENTIFIER_PARAMETER = OpenApiParameter(
    "identifier", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The CASE identifier (a UUID)."
)


def _not_found(what: str) -> Response:
    return Response({"detail": f"No published {what} with this identifier."}, status=404)


def _parse_identifier(identifier: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(identifier)
    except ValueError:
        return None


class CaseView(APIView):
    permission_classes = [AllowAny]
    schema = ErrorAnswersSchema()
    authentication_classes: list = []


class CFDocumentListView(CaseView):
    @extend_schema(
        tags=TAGS,
        summary="Published frameworks as CASE CFDocuments",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        documents = [
            _document_with_package_link(framework) for framework in selectors.framework_list_published()
        ]
        return Response({"CFDocuments": documents})


def _document_with_package_link(framework) -> dict:
    document = selectors.case_document_json(framework)
    document["CFPackageURI"] = link(
        framework.identifier,
        f"{selectors.case_base_uri()}/CFPackages/{framework.identifier}",
        framework.title,
    )
    return document


class CFDocumentView(CaseView):
    @extend_schema(
        tags=TAGS,
        summary="One CASE CFDocument",
        parameters=[IDENTIFIER_PARAMETER],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, identifier: str) -> Response:
        parsed = _parse_identifier(identifier)
        framework = selectors.framework_get_published(identifier=parsed) if parsed else None
        if framework is None:
            return _not_found("CFDocument")
        return Response(_document_with_package_link(framework))


class CFPackageView(CaseView):
    @extend_schema(
        tags=TAGS,
        summary="A whole framework as a CASE CFPackage",
        parameters=[IDENTIFIER_PARAMETER],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, identifier: str) -> Response:
        parsed = _parse_identifier(identifier)
        framework = selectors.framework_get_published(identifier=parsed) if parsed else None
        if framework is None:
            return _not_found("CFPackage")
        # Served as built: the schema check belongs to export_case and publishing, not to every request.
        return Response(selectors.case_package_build(framework=framework))


class CFItemView(CaseView):
    @extend_schema(
        tags=TAGS,
        summary="One CASE CFItem",
        parameters=[IDENTIFIER_PARAMETER],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, identifier: str) -> Response:
        parsed = _parse_identifier(identifier)
        competency = selectors.competency_get_published(identifier=parsed) if parsed else None
        if competency is None:
            return _not_found("CFItem")
        item = selectors.case_item_json(competency)
        framework = competency.framework
        item["CFDocumentURI"] = link(
            framework.identifier,
            framework.uri or f"{selectors.case_base_uri()}/CFDocuments/{framework.identifier}",
            framework.title,
        )
        return Response(item)


class CFAssociationView(CaseView):
    @extend_schema(
        tags=TAGS,
        summary="One CASE CFAssociation",
        parameters=[IDENTIFIER_PARAMETER],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, identifier: str) -> Response:
        parsed = _parse_identifier(identifier)
        association = selectors.case_association_get_published(identifier=parsed) if parsed else None
        if association is None:
            return _not_found("CFAssociation")
        return Response(association)


class CFItemAssociationsView(CaseView):
    @extend_schema(
        tags=TAGS,
        summary="A CASE CFItem with every association that starts or ends at it",
        parameters=[IDENTIFIER_PARAMETER],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, identifier: str) -> Response:
        parsed = _parse_identifier(identifier)
        found = selectors.case_item_associations_get_published(identifier=parsed) if parsed else None
        if found is None:
            return _not_found("CFItem")
        return Response(found)
