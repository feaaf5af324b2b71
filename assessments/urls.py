"""The student's attempt pages (the API lives in ``api_urls``)."""

from django.urls import path

from assessments import views

app_name = "assessments"

urlpatterns = [
    path("assessments/<int:pk>/", views.assessment_detail, name="assessment"),
    path("assessments/<int:pk>/start/", views.attempt_start, name="start"),
    path("attempts/<int:pk>/", views.attempt_take, name="attempt"),
    path("attempts/<int:pk>/submit/", views.attempt_submit, name="attempt-submit"),
    path("attempts/<int:pk>/result/", views.attempt_result, name="result"),
    path("results/", views.results, name="results"),
]
