"""Request middleware of the project: a clean 503 while the database cannot be reached (issue #7)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

#: Seconds a client should wait before retrying: a database restart or fail-over takes about this long.
RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)
_MARK = "_database_unavailable_error"
MESSAGE = "The service is briefly unavailable (the database cannot be reached). Please retry shortly."


def _is_api(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return request.path.startswith("/api/") or "application/json" in accept


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with ``Retry-After``: JSON for the API, a short plain page otherwise (no template: rendering
    one could touch the database again, e.g. through a context processor reading the session)."""
    if _is_api(request):
        response: HttpResponse = JsonResponse({"detail": MESSAGE}, status=503)
    else:
        response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


@receiver(got_request_exception, dispatch_uid="mastery.middleware.mark_database_unavailable")
def mark_database_unavailable(*, request: HttpRequest | None = None, **_: object) -> None:
    """Django turns an exception raised *inside* a later middleware (the session middleware saving
    the session, say) into a 500 before it can reach us, and announces it with this signal while the
    exception is being handled: note a database error on the request so ``__call__`` answers 503."""
    error = sys.exc_info()[1]
    if request is not None and isinstance(error, DATABASE_ERRORS):
        setattr(request, _MARK, error)


class DatabaseUnavailableMiddleware:
    """Answers 503 with ``Retry-After`` when the database cannot be reached.

    A view's exception reaches ``process_exception`` (DRF's handler returns ``None`` for database
    errors and re-raises them, so API views land here too). An error in a later middleware is
    converted to a 500 response before it propagates: ``mark_database_unavailable`` notes it and
    ``__call__`` replaces that response. Atomic blocks have rolled back by then, so a request
    interrupted mid-transaction wrote nothing, and Django closes the broken connection when the
    request finishes (``close_if_unusable_or_obsolete``), so the next request connects afresh.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except DATABASE_ERRORS as error:  # only when exceptions propagate (e.g. the test client)
            return self._unavailable(request, error)
        error = getattr(request, _MARK, None)
        if error is not None and response.status_code >= 500:
            return self._unavailable(request, error)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_ERRORS):
            return self._unavailable(request, exception)
        return None

    def _unavailable(self, request: HttpRequest, error: BaseException) -> HttpResponse:
        first_line = (str(error).strip().splitlines() or [""])[0]
        logger.warning(
            "database unavailable: %s %s answered 503 (%s: %s)",
            request.method,
            request.path,
            type(error).__name__,
            first_line,
        )
        return database_unavailable_response(request)
