"""The teacher's dashboard pages and the student's path (the JSON lives in ``api_urls``)."""

from django.urls import path

from progress import student_views, views

app_name = "progress"

urlpatterns = [
    path("teach/", views.teacher_home, name="teacher-home"),
    path("teach/sections/<int:pk>/", views.section_detail, name="section"),
    path("teach/sections/<int:pk>/heatmap.csv", views.section_heatmap_csv, name="section-csv"),
    path("teach/sections/<int:pk>/scale.css", views.section_scale_css, name="section-scale-css"),
    path("teach/sections/<int:pk>/students/<int:student_pk>/", views.student_detail, name="student"),
    path(
        "teach/sections/<int:pk>/students/<int:student_pk>/override/",
        views.student_override,
        name="student-override",
    ),
    path("teach/flags/<int:pk>/<slug:action>/", views.flag_action, name="flag-action"),
    path("path/", student_views.student_path, name="path"),
]
