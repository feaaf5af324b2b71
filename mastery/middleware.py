"""Request middleware of the project (the database-unavailable answer is filled in by issue #7)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class DatabaseUnavailableMiddleware:
    """Answers 503 with Retry-After when the database cannot be reached (see issue #7)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
