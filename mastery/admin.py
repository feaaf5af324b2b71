"""The admin site of the project: only district staff (and superusers) may use it.

``MasteryAdminConfig`` replaces ``django.contrib.admin`` in INSTALLED_APPS so that ``admin.site`` is a
``MasteryAdminSite``. After every app registered its models, it adds the privacy actions (export,
anonymise, delete a student: ``mastery.privacy``) to the user admin, which lives in roster and cannot
import this top layer. Also here: the two hooks of the login throttle (django-axes), the client address
behind the proxy and the lockout answer.
"""

from __future__ import annotations

from functools import update_wrapper

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

LOCKOUT_MESSAGE = (
    "Too many failed sign-ins for this username from this address. Sign-in is blocked for {minutes} "
    "minutes; try again after that, or ask district staff to unlock the account."
)


def may_use_admin(user) -> bool:
    """A superuser, or an active staff account with the district staff role in a district."""
    if not (user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    return getattr(user, "role", None) == "district_staff" and getattr(user, "district_id", None) is not None


def _authentication_form():
    """The admin login refuses a teacher or student even when their account is marked staff. (Built on
    first use: this module is imported while the app registry loads, before auth's forms can be.)"""
    from django import forms
    from django.contrib.admin.forms import AdminAuthenticationForm

    class MasteryAdminAuthenticationForm(AdminAuthenticationForm):
        def confirm_login_allowed(self, user) -> None:
            super().confirm_login_allowed(user)
            if not may_use_admin(user):
                raise forms.ValidationError(
                    self.error_messages["invalid_login"],
                    code="invalid_login",
                    params={"username": self.username_field.verbose_name},
                )

    return MasteryAdminAuthenticationForm


class MasteryAdminSite(admin.AdminSite):
    @property
    def login_form(self):
        return _authentication_form()

    def has_permission(self, request: HttpRequest) -> bool:
        return may_use_admin(request.user)

    def admin_view(self, view, cacheable: bool = False):
        """A signed-in account marked staff without the district staff role gets 403, not a login loop;
        anyone else without permission is sent to the login page as usual."""
        wrapped = super().admin_view(view, cacheable)

        def inner(request: HttpRequest, *args, **kwargs):
            user = request.user
            signing_out = request.path == reverse("admin:logout", current_app=self.name)
            if user.is_authenticated and user.is_staff and not may_use_admin(user) and not signing_out:
                raise PermissionDenied("The admin is for district staff.")
            return wrapped(request, *args, **kwargs)

        return update_wrapper(inner, wrapped)


class MasteryAdminConfig(AdminConfig):
    default_site = "mastery.admin.MasteryAdminSite"

    def ready(self) -> None:
        super().ready()
        add_privacy_actions(admin.site)
        from axes import signals as axes_signals  # noqa: F401  (connects axes' receivers first)
        from django.contrib.auth.signals import user_login_failed

        user_login_failed.connect(_lockout_through_drf, dispatch_uid="mastery-axes-lockout-through-drf")


# --- django-axes hooks ----------------------------------------------------------------------------


def _lockout_through_drf(sender, credentials=None, request=None, **kwargs) -> None:
    """The API token endpoint hands authenticate() DRF's Request wrapper: axes marks the lockout on the
    wrapper, where AxesMiddleware (which sees the Django request inside) would miss it. Copy it inward.
    Connected after axes' own receiver, so it sees what axes decided."""
    inner = getattr(request, "_request", None)
    if inner is not None and getattr(request, "axes_locked_out", False):
        inner.axes_locked_out = True
        inner.axes_credentials = getattr(request, "axes_credentials", credentials)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: behind ``MASTERY_PROXY_COUNT`` proxies, the entry the outermost proxy
    appended to X-Forwarded-For (entries before it are the client's word, not to be trusted)."""
    proxies = getattr(settings, "MASTERY_PROXY_COUNT", 0)
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """429 with a clear message: JSON (``{"detail"}``, like every API error) under /api/, text otherwise."""
    cooloff = settings.AXES_COOLOFF_TIME
    minutes = int(cooloff.total_seconds() // 60) if cooloff else 0
    message = LOCKOUT_MESSAGE.format(minutes=minutes)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    if minutes:
        response["Retry-After"] = str(minutes * 60)
    return response


# --- privacy actions on the user admin --------------------------------------------------------------


def add_privacy_actions(site: admin.AdminSite) -> None:
    """Give the registered user admin the export, anonymise and delete-with-data actions."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    model_admin = site._registry.get(user_model)
    if model_admin is None:
        return
    model_admin.actions = [
        *(model_admin.actions or []),
        export_student_data,
        anonymise_students,
        delete_students_and_data,
    ]


def _students_in_scope(request: HttpRequest, queryset):
    """Students only, and of the acting staff member's own district unless a superuser acts."""
    students = queryset.filter(role="student")
    if not request.user.is_superuser:
        students = students.filter(district_id=request.user.district_id)
    return students


@admin.action(description="Export all data held about the selected students (zip)")
def export_student_data(model_admin, request: HttpRequest, queryset):
    from django.contrib import messages

    from mastery import privacy

    students = list(_students_in_scope(request, queryset))
    if not students:
        model_admin.message_user(request, "Select at least one student of your district.", messages.ERROR)
        return None
    data = privacy.students_export_zip(students=students, actor=request.user)
    response = HttpResponse(data, content_type="application/zip")
    name = students[0].username if len(students) == 1 else f"{len(students)}-students"
    response["Content-Disposition"] = f'attachment; filename="student-data-{name}.zip"'
    return response


@admin.action(description="Anonymise the selected students (keeps their learning records, no identity)")
def anonymise_students(model_admin, request: HttpRequest, queryset):
    from django.contrib import messages

    from mastery import privacy

    students = list(_students_in_scope(request, queryset))
    for student in students:
        privacy.student_forget(student=student, actor=request.user, delete=False)
    model_admin.message_user(request, f"Anonymised {len(students)} student(s).", messages.SUCCESS)


@admin.action(description="Delete the selected students and everything held about them")
def delete_students_and_data(model_admin, request: HttpRequest, queryset):
    from django.contrib import messages

    from mastery import privacy

    students = list(_students_in_scope(request, queryset))
    for student in students:
        privacy.student_forget(student=student, actor=request.user, delete=True)
    model_admin.message_user(request, f"Deleted {len(students)} student(s) and their data.", messages.SUCCESS)
