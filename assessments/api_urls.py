from django.urls import path

from assessments import api

urlpatterns = [
    path("assessments/<int:pk>/attempts/", api.AttemptStartView.as_view(), name="attempt-start"),
    path("attempts/<int:pk>/", api.AttemptDetailView.as_view(), name="attempt-detail"),
    path(
        "attempts/<int:pk>/responses/<int:item_id>/",
        api.ResponseSaveView.as_view(),
        name="attempt-response",
    ),
    path("attempts/<int:pk>/submit/", api.AttemptSubmitView.as_view(), name="attempt-submit"),
    path("items/", api.ItemListView.as_view(), name="item-list"),
    path("items/<int:pk>/", api.ItemDetailView.as_view(), name="item-detail"),
    path("rescore-jobs/<int:pk>/", api.RescoreJobDetailView.as_view(), name="rescore-job-detail"),
]
