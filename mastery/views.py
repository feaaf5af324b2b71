"""Project-level pages: the home page sends each role where its work is (staff to the overview, or admin
when there is none; teachers to their sections; students to their path); a health check for deployments."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_staff and user.role == user.Role.DISTRICT_STAFF:
        try:
            return redirect(reverse("staff:overview"))
        except NoReverseMatch:  # no staff overview in this deployment: admin is staff's home
            return redirect("admin:index")
    if user.role == user.Role.TEACHER:
        return redirect("progress:teacher-home")
    if user.role == user.Role.STUDENT:
        return redirect("progress:path")
    return render(request, "mastery/home.html", {"user": user})


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise (used by docker-compose and load balancers)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"database": "unavailable"}, status=503)
    return JsonResponse({"database": "ok"})
