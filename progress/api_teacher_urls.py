from django.urls import path

from progress import api_teacher

urlpatterns = [
    path("sections/", api_teacher.SectionListView.as_view(), name="teacher-section-list"),
    path(
        "sections/<int:pk>/heatmap/", api_teacher.SectionHeatmapView.as_view(), name="teacher-section-heatmap"
    ),
    path("sections/<int:pk>/groups/", api_teacher.SectionGroupsView.as_view(), name="teacher-section-groups"),
    path("flags/", api_teacher.FlagListView.as_view(), name="teacher-flag-list"),
    path(
        "flags/<int:pk>/acknowledge/",
        api_teacher.FlagAcknowledgeView.as_view(),
        name="teacher-flag-acknowledge",
    ),
    path("flags/<int:pk>/resolve/", api_teacher.FlagResolveView.as_view(), name="teacher-flag-resolve"),
    path("flags/<int:pk>/snooze/", api_teacher.FlagSnoozeView.as_view(), name="teacher-flag-snooze"),
]
