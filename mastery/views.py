"""Project-level pages: the home page sends each role where its work is."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_staff and getattr(user, "is_district_staff", False):
        return redirect("admin:index")
    return render(request, "mastery/home.html", {"user": user})
