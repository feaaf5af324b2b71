"""The CASE provider, served identically under the 1.0 and 1.1 base paths (mounted at /ims/case/)."""

from django.urls import include, path

from competencies import case_views

case_endpoints = [
    path("CFDocuments", case_views.CFDocumentListView.as_view(), name="documents"),
    path("CFDocuments/<str:identifier>", case_views.CFDocumentView.as_view(), name="document"),
    path("CFPackages/<str:identifier>", case_views.CFPackageView.as_view(), name="package"),
    path("CFItems/<str:identifier>", case_views.CFItemView.as_view(), name="item"),
    path("CFAssociations/<str:identifier>", case_views.CFAssociationView.as_view(), name="association"),
    path(
        "CFItemAssociations/<str:identifier>",
        case_views.CFItemAssociationsView.as_view(),
        name="item-associations",
    ),
]

urlpatterns = [
    path("v1p0/", include((case_endpoints, "case"), namespace="case-v1p0")),
    path("v1p1/", include((case_endpoints, "case"), namespace="case-v1p1")),
]
