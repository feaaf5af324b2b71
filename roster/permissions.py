"""Role gates for the API. Scoping of rows happens again inside each selector."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission

from roster.models import User

#: The body of every error answer: ``{"detail": ...}`` (a message, or for invalid input the messages
#: per field), or DRF's validation errors keyed by field.
ERROR_ANSWER = inline_serializer(
    "ErrorAnswer",
    fields={
        "detail": serializers.JSONField(
            required=False, help_text="What went wrong: a message, or the messages per field."
        )
    },
)


class HasRole(BasePermission):
    """Allows signed-in users whose role is one of ``roles``."""

    roles: tuple[str, ...] = ()

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.role in self.roles)


class IsDistrictStaff(HasRole):
    roles = (User.Role.DISTRICT_STAFF,)


class IsTeacher(HasRole):
    roles = (User.Role.TEACHER,)


class IsStudent(HasRole):
    roles = (User.Role.STUDENT,)


class ErrorAnswersSchema(AutoSchema):
    """The OpenAPI description of a view, with the error answers every API view may give added to
    what the view declares: 401 and 403 unless anyone may call it (DRF answers 403 to a missing or
    wrong role, 401 when only token authentication is offered), 404 when the path names an object
    (also for one the caller may not see), 400 for a write or a query with parameters, and 409 for a
    write that conflicts with the current state (``mastery.api.exception_handler``)."""

    def get_operation_id(self) -> str:
        """A GET on a path without parameters lists (so the CASE ``CFDocuments`` list and the document
        it names do not share an id)."""
        operation_id = super().get_operation_id()
        if "{" not in self.path and operation_id.endswith("_retrieve"):
            operation_id = operation_id.removesuffix("_retrieve") + "_list"
        return operation_id

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        wanted: list[str] = []
        if not all(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            wanted += ["401", "403"]
        if "{" in path:
            wanted.append("404")
        is_write = method.upper() in ("POST", "PUT", "PATCH", "DELETE")
        has_query = any(parameter.get("in") == "query" for parameter in operation.get("parameters", []))
        if is_write or has_query:
            wanted.append("400")
        if is_write:
            wanted.append("409")
        for parameter in operation.get("parameters", []):
            # Django's int converter matches digits only: anything else never reaches the view.
            if parameter.get("in") == "path" and parameter.get("schema", {}).get("type") == "integer":
                parameter["schema"].setdefault("minimum", 0)
        responses = operation.setdefault("responses", {})
        for code in wanted:
            if code not in responses:
                responses[code] = self._get_response_for_code(ERROR_ANSWER, code)
        operation["responses"] = dict(sorted(responses.items()))
        return operation


class ObtainAuthTokenErrors(OpenApiViewExtension):
    """``POST /api/v1/auth/token/`` (DRF's view, mounted in ``mastery.urls``) documented with its 400
    for wrong credentials, like every other API view."""

    target_class = "rest_framework.authtoken.views.ObtainAuthToken"
    match_subclasses = True
    priority = 1

    def view_replacement(self):
        class ObtainAuthTokenWithErrors(self.target):
            schema = ErrorAnswersSchema()

        return ObtainAuthTokenWithErrors
