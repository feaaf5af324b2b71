"""Django admin for the roster: districts, schools, terms, courses, sections, people, enrollments, and
the import runs, with an "Import OneRoster" page (upload a zip, preview the dry run, apply)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
import time
from pathlib import Path

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from simple_history.admin import SimpleHistoryAdmin

from roster import oneroster
from roster.audit import audit_record
from roster.forms import OneRosterApplyForm, OneRosterUploadForm
from roster.models import AuditEvent, Course, District, Enrollment, ImportRun, School, Section, Term, User
from roster.services import ENTITIES, OUTCOMES, RosterImportError, RosterImportReport, oneroster_import

UPLOAD_SESSION_KEY = "roster_oneroster_upload"
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
UPLOAD_MAX_AGE_SECONDS = 24 * 60 * 60


@admin.register(User)
class UserAdmin(SimpleHistoryAdmin, DjangoUserAdmin):
    """Django's user admin with the roster's columns; SimpleHistoryAdmin first so History shows."""

    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Roster", {"fields": ("role", "district", "sourced_id", "grades")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Roster", {"classes": ("wide",), "fields": ("role", "district")}),
    )
    list_display = (
        "username",
        "first_name",
        "last_name",
        "email",
        "role",
        "district",
        "is_active",
        "is_staff",
    )
    list_filter = ("role", "district", "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "first_name", "last_name", "email", "sourced_id")
    list_select_related = ("district",)
    autocomplete_fields = ("district",)

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        """Save, and append a role change (role, staff or superuser status) to the audit log."""
        changed = [name for name in ROLE_FIELDS if name in form.changed_data]
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if change and changed:
                audit_record(
                    actor=request.user,
                    action=AuditEvent.Action.ROLE_CHANGE,
                    target=obj,
                    before={name: form.initial.get(name) for name in changed},
                    after={name: getattr(obj, name) for name in changed},
                    district=obj.district_id,
                )


ROLE_FIELDS = ("role", "is_staff", "is_superuser")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: nobody adds, changes or deletes an event here."""

    list_display = ("created_at", "action", "actor_username", "target_repr", "subject_id", "district_id")
    list_filter = ("action", "created_at", "actor_username")
    search_fields = ("actor_username", "target_repr", "target_type", "target_id", "note")
    date_hierarchy = "created_at"
    readonly_fields = (
        "created_at",
        "action",
        "actor_id",
        "actor_username",
        "district_id",
        "target_type",
        "target_id",
        "target_repr",
        "subject_id",
        "before",
        "after",
        "note",
    )
    actions = None

    def get_queryset(self, request: HttpRequest):
        """District staff see their own district's events; a superuser sees all."""
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(district_id=request.user.district_id)

    def has_view_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        """Every district staff member may read their district's log, without a model permission."""
        user = request.user
        return bool(user.is_active and user.is_staff and (user.is_superuser or user.is_district_staff))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


@admin.register(District)
class DistrictAdmin(admin.ModelAdmin):
    list_display = ("name", "sourced_id", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("name", "sourced_id")


@admin.register(School)
class SchoolAdmin(admin.ModelAdmin):
    list_display = ("name", "identifier", "district", "sourced_id", "is_active")
    list_filter = ("district", "is_active")
    search_fields = ("name", "identifier", "sourced_id")
    list_select_related = ("district",)
    autocomplete_fields = ("district",)


@admin.register(Term)
class TermAdmin(admin.ModelAdmin):
    list_display = ("title", "kind", "start_date", "end_date", "parent", "district", "is_active")
    list_filter = ("kind", "district", "is_active")
    search_fields = ("title", "sourced_id")
    list_select_related = ("district", "parent")
    autocomplete_fields = ("district", "parent")
    date_hierarchy = "start_date"


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("title", "code", "district", "school", "is_active")
    list_filter = ("district", "school", "is_active")
    search_fields = ("title", "code", "sourced_id")
    list_select_related = ("district", "school")
    autocomplete_fields = ("district", "school")


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    fields = ("user", "role", "is_primary", "begin_date", "end_date", "is_active", "sourced_id")
    autocomplete_fields = ("user",)
    show_change_link = True

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("user")


@admin.register(Section)
class SectionAdmin(admin.ModelAdmin):
    list_display = ("title", "code", "school", "term", "course", "is_active")
    list_filter = ("school", "term", "is_active")
    search_fields = ("title", "code", "sourced_id")
    list_select_related = ("school", "term", "course")
    autocomplete_fields = ("school", "term", "course")
    inlines = (EnrollmentInline,)


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ("user", "section", "role", "is_primary", "begin_date", "end_date", "is_active")
    list_filter = ("role", "is_active", "is_primary", "section__school")
    search_fields = ("user__username", "user__first_name", "user__last_name", "section__title", "sourced_id")
    list_select_related = ("user", "section")
    autocomplete_fields = ("user", "section")


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    """Read-only history of the importers' runs, and the "Import OneRoster" page."""

    list_display = ("created_at", "kind", "status", "source_name", "started_by", "district", "counts_summary")
    list_filter = ("kind", "status", "district")
    search_fields = ("source_name", "started_by__username")
    list_select_related = ("started_by", "district")
    date_hierarchy = "created_at"
    readonly_fields = (
        "kind",
        "status",
        "source_name",
        "started_by",
        "district",
        "created_at",
        "counts",
        "warnings",
        "errors",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ImportRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ImportRun | None = None) -> bool:
        return False

    @admin.display(description="counts")
    def counts_summary(self, run: ImportRun) -> str:
        totals = dict.fromkeys(OUTCOMES, 0)
        for entity_counts in (run.counts or {}).values():
            if isinstance(entity_counts, dict):
                for outcome in OUTCOMES:
                    totals[outcome] += int(entity_counts.get(outcome, 0) or 0)
        return ", ".join(f"{totals[outcome]} {outcome}" for outcome in OUTCOMES)

    def get_urls(self):
        return [
            path(
                "import-oneroster/",
                self.admin_site.admin_view(self.import_oneroster_view),
                name="roster_importrun_import_oneroster",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {**(extra_context or {}), "can_import_oneroster": _can_import(request)}
        return super().changelist_view(request, extra_context=extra_context)

    # The upload page ------------------------------------------------------------------------------

    def import_oneroster_view(self, request: HttpRequest) -> HttpResponse:
        """Step 1 (upload) shows the dry run; step 2 (apply) imports the same bytes for real."""
        if not _can_import(request):
            raise PermissionDenied
        context: dict = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import OneRoster",
            "entities": ENTITIES,
            "outcomes": OUTCOMES,
            "row_convention": oneroster.ROW_CONVENTION,
        }
        upload_form = OneRosterUploadForm()
        if request.method == "GET":
            _discard_upload(request)  # a fresh visit (or Cancel) abandons a previewed upload
        elif "apply" in request.POST:
            response = self._apply(request, context)
            if response is not None:
                return response
        else:
            upload_form = OneRosterUploadForm(request.POST, request.FILES)
            if upload_form.is_valid():
                self._preview(request, context, upload_form.cleaned_data["package"])
        context["upload_form"] = upload_form
        return TemplateResponse(request, "admin/roster/importrun/import_oneroster.html", context)

    def _preview(self, request: HttpRequest, context: dict, package) -> None:
        data = b"".join(package.chunks())
        _discard_upload(request)
        try:
            report = oneroster_import(source=data, dry_run=True, user=request.user, source_name=package.name)
        except RosterImportError as error:
            context.update(errors=error.messages, source_name=package.name)
            return
        token = _store_upload(data)
        request.session[UPLOAD_SESSION_KEY] = {"token": token, "name": package.name}
        context.update(
            report=report,
            rows=_report_rows(report),
            source_name=package.name,
            apply_form=OneRosterApplyForm(initial={"token": token}),
        )

    def _apply(self, request: HttpRequest, context: dict) -> HttpResponse | None:
        form = OneRosterApplyForm(request.POST)
        stored = request.session.get(UPLOAD_SESSION_KEY) or {}
        if not form.is_valid() or not secrets.compare_digest(
            str(stored.get("token", "")), form.cleaned_data["token"]
        ):
            messages.error(request, "That upload is no longer available: upload the zip again.")
            return HttpResponseRedirect(request.path)
        token, name = stored["token"], stored.get("name", "")
        upload = _upload_path(token)
        try:
            data = upload.read_bytes()
        except OSError:
            request.session.pop(UPLOAD_SESSION_KEY, None)
            messages.error(request, "That upload is no longer available: upload the zip again.")
            return HttpResponseRedirect(request.path)
        try:
            report = oneroster_import(source=data, user=request.user, source_name=name)
        except RosterImportError as error:
            _discard_upload(request)
            context.update(errors=error.messages, source_name=name)
            return None
        _discard_upload(request)
        messages.success(request, f"Imported {name}: {_short_counts(report)}.")
        if report.import_run is not None:
            return HttpResponseRedirect(reverse("admin:roster_importrun_change", args=[report.import_run.pk]))
        return HttpResponseRedirect(reverse("admin:roster_importrun_changelist"))


def _can_import(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_perm("roster.add_importrun"))


def _upload_path(token: str) -> Path:
    if not TOKEN_PATTERN.match(token):
        raise ValueError("invalid upload token")
    return Path(tempfile.gettempdir()) / f"mastery-oneroster-{token}.zip"


def _store_upload(data: bytes) -> str:
    """Keep the uploaded bytes between preview and apply, readable by this process's user only."""
    stale_before = time.time() - UPLOAD_MAX_AGE_SECONDS
    for stale in Path(tempfile.gettempdir()).glob("mastery-oneroster-*.zip"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < stale_before:
                stale.unlink()  # previews that were never applied nor cancelled
    token = secrets.token_urlsafe(32)
    descriptor = os.open(_upload_path(token), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return token


def _discard_upload(request: HttpRequest) -> None:
    stored = request.session.pop(UPLOAD_SESSION_KEY, None) or {}
    token = str(stored.get("token", ""))
    if TOKEN_PATTERN.match(token):
        with contextlib.suppress(OSError):
            _upload_path(token).unlink()


def _report_rows(report: RosterImportReport) -> list[tuple[str, list[int]]]:
    return [(entity, [report.counts[entity][outcome] for outcome in OUTCOMES]) for entity in ENTITIES]


def _short_counts(report: RosterImportReport) -> str:
    totals = {outcome: sum(report.counts[entity][outcome] for entity in ENTITIES) for outcome in OUTCOMES}
    return ", ".join(f"{totals[outcome]} {outcome}" for outcome in OUTCOMES)
