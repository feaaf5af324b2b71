"""Role gates for the API. Scoping of rows happens again inside each selector."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from roster.models import User


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
