from django.urls import path

from progress import api

urlpatterns = [
    path("me/path/", api.MyPathView.as_view(), name="my-path"),
    path("students/<int:pk>/progress/", api.StudentProgressView.as_view(), name="student-progress"),
    path("resources/<int:pk>/viewed/", api.ResourceViewedView.as_view(), name="resource-viewed"),
]
