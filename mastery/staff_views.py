"""The district staff overview: frameworks, import history, rescoring jobs (live), suspect items and open
flags per school, for the caller's own district only.

Only active district staff with a district may open it; anyone else gets 404, the same as a missing page.
The rescoring block is also served alone (an htmx partial) so the page can poll it every two seconds
while a job runs, and stop once none does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from mastery import staff_selectors
from roster.models import User


def district_staff_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Only active district staff of a district; anyone else gets 404."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if user.role != User.Role.DISTRICT_STAFF or not user.is_active or user.district_id is None:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@never_cache
@require_GET
@district_staff_page
def overview(request: HttpRequest) -> HttpResponse:
    context = staff_selectors.staff_overview(district=request.user.district)
    context["district"] = request.user.district
    return render(request, "mastery/staff/overview.html", context)


@never_cache
@require_GET
@district_staff_page
def rescoring(request: HttpRequest) -> HttpResponse:
    """The rescoring block alone: what the overview polls while a job runs."""
    jobs = staff_selectors.rescore_job_list_for_district(district=request.user.district)
    context = {"jobs": jobs, "has_active_jobs": any(job.is_active for job in jobs)}
    return render(request, "mastery/staff/_rescoring.html", context)
