"""The district staff overview (reachable from the admin header)."""

from django.urls import path

from mastery import staff_views

app_name = "staff"

urlpatterns = [
    path("", staff_views.overview, name="overview"),
    path("rescoring/", staff_views.rescoring, name="rescoring"),
]
