"""The teacher's grading queue for rubric items (included from ``mastery.urls`` at the root)."""

from django.urls import path

from assessments import grading_views

app_name = "grading"

urlpatterns = [
    path("teach/sections/<int:section_pk>/grading/", grading_views.grading_queue, name="queue"),
    path("teach/grading/<int:response_pk>/", grading_views.grade_response, name="grade"),
]
