"""API plumbing shared by every app: errors are JSON, never a 500 for bad input."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus Django's ValidationError as 400 and integrity conflicts as 409."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail={"detail": exc.messages})
    elif isinstance(exc, IntegrityError):
        return Response(
            {"detail": "The request conflicts with the current state."}, status=status.HTTP_409_CONFLICT
        )
    return drf_exception_handler(exc, context)
