from django.urls import path

from competencies import api

urlpatterns = [
    path("frameworks/", api.FrameworkListView.as_view(), name="framework-list"),
    path(
        "frameworks/<int:pk>/competencies/",
        api.FrameworkCompetencyListView.as_view(),
        name="framework-competencies",
    ),
]
