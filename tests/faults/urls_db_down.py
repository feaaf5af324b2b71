"""URLs for ``test_fail_fast``: the project's, plus views whose database has gone away."""

from django.db import InterfaceError, OperationalError
from django.urls import include, path
from rest_framework.views import APIView


def page_db_down(request):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


class ApiDbDown(APIView):
    permission_classes = []

    def get(self, request):
        raise InterfaceError("connection already closed")


urlpatterns = [
    path("db-down/", page_db_down),
    path("api/v1/db-down/", ApiDbDown.as_view()),
    path("", include("mastery.urls")),
]
