"""The student's lesson pages (the path itself is ``progress:path``)."""

from django.urls import path

from progress import student_views

app_name = "learn"

urlpatterns = [
    path("learn/<int:competency_pk>/", student_views.lesson, name="lesson"),
    path(
        "learn/<int:competency_pk>/resources/<int:resource_pk>/watched/",
        student_views.resource_watched,
        name="watched",
    ),
]
