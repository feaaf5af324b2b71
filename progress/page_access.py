"""Who may open a page: each page belongs to one role, and anyone else gets the same 404 as a
missing page (no hint that it exists)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse

from roster.models import User


def _role_page(role: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.user.role != role or not request.user.is_active:
                raise Http404
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


teacher_page = _role_page(User.Role.TEACHER)
student_page = _role_page(User.Role.STUDENT)
