"""Django admin: the catalog curation tool of district staff.

Thin by design: every write that has a rule (imports, prerequisite edges, publish, retire, export) goes
through ``competencies.services``; this module parses, asks, and shows the outcome. Every catalog model has
a change history (who changed what, when) through ``SimpleHistoryAdmin``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, UUIDField
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join, mark_safe
from django.utils.text import Truncator, slugify
from simple_history.admin import SimpleHistoryAdmin
from tree_queries.admin import TreeAdmin

from competencies import forms as catalog_forms
from competencies import services
from competencies.models import (
    CaseAssociation,
    Competency,
    Framework,
    LearningResource,
    MasteryLevel,
    MasteryScale,
    PacingGuide,
    PacingTarget,
    Prerequisite,
)
from roster.models import Section

IMPORT_SESSION_KEY = "competencies_pending_imports"
IMPORT_FILE_PREFIX = "mastery-catalog-import-"
MAX_PENDING_IMPORTS = 5
PENDING_IMPORT_MAX_AGE_SECONDS = 24 * 60 * 60
IMPORT_KINDS = {"case": "CASE", "csv": "CSV"}
COUNT_KINDS = ["framework", "competencies", "prerequisites", "associations"]
COUNT_KIND_LABELS = {
    "framework": "Framework",
    "competencies": "Competencies",
    "prerequisites": "Prerequisites",
    "associations": "Other associations",
}
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


# --- shared pieces -----------------------------------------------------------------------------


class IdentifierSearchMixin:
    """A search term that is a UUID finds the row with that identifier exactly, and nothing else.

    Text search over a UUID column differs between databases (SQLite stores it without hyphens), so a
    pasted identifier is matched exactly instead.
    """

    identifier_search_fields: tuple[str, ...] = ("identifier",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        try:
            value = uuid.UUID(term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        condition = Q()
        for field_name in self.identifier_search_fields:
            field = get_fields_from_path(queryset.model, field_name)[-1]
            if isinstance(field, UUIDField):
                condition |= Q(**{field_name: value})
            else:
                condition |= Q(**{f"{field_name}__iexact": term})
        return queryset.filter(condition), False


class CatalogHistoryAdmin(IdentifierSearchMixin, SimpleHistoryAdmin):
    """Every catalog admin: change history with diffs, exact identifier search."""

    history_list_per_page = 50
    object_history_list_template = "admin/competencies/object_history_list.html"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


def _user_form(form_class: type[forms.BaseForm], request: HttpRequest) -> type[forms.BaseForm]:
    """The form class, knowing who submits it (the services record the user)."""
    return type(form_class.__name__, (form_class,), {"user": request.user})


# --- competencies --------------------------------------------------------------------------------


class LearningResourceInline(admin.TabularInline):
    model = LearningResource
    form = catalog_forms.LearningResourceForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    extra = 1
    fields = ["position", "kind", "title", "url", "duration_minutes", "embed_preview"]
    readonly_fields = ["embed_preview"]
    verbose_name = "lesson resource"
    verbose_name_plural = "Lesson resources (the flipped lesson, in order)"

    @admin.display(description="Embedded player")
    def embed_preview(self, resource: LearningResource) -> str:
        if resource.pk is None:
            return "—"
        embed = resource.embed_url
        if not embed:
            return "Not a YouTube or Vimeo link: opened as a link."
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', embed, embed)


class PrerequisiteInline(admin.TabularInline):
    """The competency's prerequisites; each new edge goes through ``prerequisite_add``."""

    model = Prerequisite
    fk_name = "competency"
    form = catalog_forms.PrerequisiteInlineForm
    extra = 1
    autocomplete_fields = ["prerequisite"]
    fields = ["prerequisite", "prerequisite_framework"]
    readonly_fields = ["prerequisite_framework"]
    verbose_name = "prerequisite"
    verbose_name_plural = "Prerequisites (mastered before this competency)"

    @admin.display(description="Framework")
    def prerequisite_framework(self, edge: Prerequisite) -> str:
        return str(edge.prerequisite.framework) if edge.prerequisite_id else "—"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("prerequisite__framework")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = _user_form(formset.form, request)
        return formset


class EducationLevelFilter(admin.SimpleListFilter):
    title = "education level"
    parameter_name = "education_level"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        levels: set[str] = set()
        for value in Competency.objects.values_list("education_levels", flat=True).distinct():
            if isinstance(value, list):
                levels.update(str(level) for level in value)
        return [(level, level) for level in sorted(levels)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        level = self.value()
        if not level:
            return queryset
        # A JSON list of codes: match the quoted code in its text form, which both databases support.
        return queryset.filter(education_levels__icontains=json.dumps(level))


class FrameworkStatusFilter(admin.SimpleListFilter):
    title = "framework status"
    parameter_name = "framework_status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(Framework.Status.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(framework__status=self.value()) if self.value() else queryset


class ItemTypeFilter(admin.SimpleListFilter):
    title = "item type"
    parameter_name = "item_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        types = (
            Competency.objects.exclude(item_type="")
            .order_by("item_type")
            .values_list("item_type", flat=True)
            .distinct()
        )
        return [(item_type, item_type) for item_type in types]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(item_type=self.value()) if self.value() else queryset


@admin.register(Competency)
class CompetencyAdmin(TreeAdmin, CatalogHistoryAdmin):
    """The framework tree, indented and collapsible, with move controls."""

    form = catalog_forms.CompetencyAdminForm
    position_field = "position"
    list_display = [
        "collapse_column",
        "indented_statement",
        "code",
        "item_type",
        "framework",
        "prerequisite_count",
        "move_column",
    ]
    list_display_links = ["indented_statement"]
    list_filter = ["framework", FrameworkStatusFilter, ItemTypeFilter, EducationLevelFilter]
    list_select_related = ["framework"]
    search_fields = ["code", "statement", "abbreviated_statement"]
    search_help_text = "Search by code or statement; paste an identifier (UUID) to find that competency."
    autocomplete_fields = ["parent", "framework"]
    list_per_page = 250
    inlines = [PrerequisiteInline, LearningResourceInline]
    fieldsets = [
        (None, {"fields": ["framework", "parent", "code", "statement", "abbreviated_statement", "position"]}),
        ("Classification", {"fields": ["item_type", "education_levels", "list_enumeration", "language"]}),
        (
            "Mastery calculation",
            {
                "fields": ["calculation_method", "calculation_parameter"],
                "description": "Leave empty to use the framework's method.",
            },
        ),
        ("Notes", {"fields": ["notes"]}),
        (
            "CASE",
            {
                "classes": ["collapse"],
                "fields": [
                    "identifier",
                    "uri",
                    "child_association_identifier",
                    "last_change_date_time",
                    "case_extra_pretty",
                    "created_at",
                    "updated_at",
                ],
            },
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = ["case_extra_pretty", "created_at", "updated_at"]
        if obj is not None:
            # A node's subtree belongs to one framework; its identifier keys evidence and alignments.
            readonly += ["framework", "identifier", "child_association_identifier"]
        return readonly

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        # A prerequisite edge needs a saved competency at both ends.
        return [PrerequisiteInline, LearningResourceInline] if obj is not None else [LearningResourceInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        edges = (
            Prerequisite.objects.filter(competency=OuterRef("pk"))
            .order_by()
            .values("competency")
            .annotate(total=Count("pk"))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .select_related("framework")
            .annotate(prerequisites_total=Coalesce(Subquery(edges, output_field=IntegerField()), 0))
        )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        return _user_form(super().get_form(request, obj, change=change, **kwargs), request)

    @admin.display(description="Statement")
    def indented_statement(self, competency: Competency) -> str:
        depth = getattr(competency, "tree_depth", 0)
        box_drawing = '<i class="l"></i>' * max(depth - 1, 0) + ('<i class="a"></i>' if depth else "")
        return format_html(
            '<div class="box"><div class="box-drawing">{}</div>'
            '<div class="box-text ellipsize" style="text-indent:{}px" title="{}">{}</div></div>',
            mark_safe(box_drawing),
            depth * 30,
            competency.statement,
            Truncator(competency.statement).chars(120),
        )

    @admin.display(description="Prerequisites", ordering="prerequisites_total")
    def prerequisite_count(self, competency: Competency) -> int:
        return getattr(competency, "prerequisites_total", 0)

    @admin.display(description="Extra CASE fields")
    def case_extra_pretty(self, competency: Competency) -> str:
        return _pretty_json(competency.case_extra)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Prerequisite:
            super().save_formset(request, form, formset, change)
            return
        # New edges were added by prerequisite_add while the form validated; existing ones are read-only.
        formset.save(commit=False)
        for edge in formset.deleted_objects:
            services.prerequisite_remove(edge=edge, user=request.user)

    def is_valid_move(self, request: HttpRequest, node: Competency, *, parent: Any, after: Any) -> bool:
        """A node moves only within its own framework."""
        return parent is None or parent.framework_id == node.framework_id

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # TreeAdmin's own view needs django-js-asset for one <script> tag; Django 5.2's forms.Script does it.
        response = super(TreeAdmin, self).changelist_view(request, extra_context=extra_context)
        if not hasattr(response, "context_data"):
            return response
        response.context_data["media"] += forms.Media(
            css={"all": ["tree_queries/tree_admin.css", "competencies/admin.css"]},
            js=[
                forms.Script(
                    "tree_queries/tree_admin.js",
                    id="tree-admin-context",
                    **{"data-context": json.dumps(self.tree_admin_context(request))},
                )
            ],
        )
        return response


# --- prerequisites, resources, associations ---------------------------------------------------------


@admin.register(Prerequisite)
class PrerequisiteAdmin(CatalogHistoryAdmin):
    """Edges of the prerequisite graph; a new edge goes through ``prerequisite_add`` (refuses cycles)."""

    form = catalog_forms.PrerequisiteAdminForm
    list_display = ["prerequisite", "competency", "framework", "created_at"]
    list_filter = ["competency__framework"]
    list_select_related = ["prerequisite", "competency__framework"]
    search_fields = [
        "prerequisite__code",
        "prerequisite__statement",
        "competency__code",
        "competency__statement",
    ]
    search_help_text = (
        "Search by either end's code or statement, or paste an identifier (the edge's or an end's)."
    )
    identifier_search_fields = ("identifier", "prerequisite__identifier", "competency__identifier")
    autocomplete_fields = ["prerequisite", "competency"]

    @admin.display(description="Framework", ordering="competency__framework__title")
    def framework(self, edge: Prerequisite) -> Framework:
        return edge.competency.framework

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["prerequisite", "competency"]
        return ["prerequisite", "competency", "identifier", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # An edge is added or deleted, never re-pointed: that would bypass the cycle check.
        return [] if obj is None else ["prerequisite", "competency", "identifier", "created_at"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        return _user_form(super().get_form(request, obj, change=change, **kwargs), request)

    def save_model(self, request: HttpRequest, obj: Prerequisite, form: Any, change: bool) -> None:
        if getattr(form, "created_by_service", False):
            return
        super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Prerequisite) -> None:
        services.prerequisite_remove(edge=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for edge in queryset:
            services.prerequisite_remove(edge=edge, user=request.user)


@admin.register(LearningResource)
class LearningResourceAdmin(CatalogHistoryAdmin):
    form = catalog_forms.LearningResourceForm
    list_display = ["title", "kind", "competency", "duration_minutes", "position", "embeddable"]
    list_filter = ["kind", "competency__framework"]
    list_select_related = ["competency"]
    search_fields = ["title", "url", "description", "competency__code", "competency__statement"]
    autocomplete_fields = ["competency"]
    fields = [
        "competency",
        "kind",
        "title",
        "url",
        "embed_url_display",
        "duration_minutes",
        "position",
        "description",
    ]
    readonly_fields = ["embed_url_display"]

    @admin.display(description="Embedded player", boolean=True)
    def embeddable(self, resource: LearningResource) -> bool:
        return resource.embed_url is not None

    @admin.display(description="Embed URL")
    def embed_url_display(self, resource: LearningResource) -> str:
        embed = resource.embed_url if resource.pk else None
        if not embed:
            return "— (shown to students as a link)"
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', embed, embed)


@admin.register(CaseAssociation)
class CaseAssociationAdmin(CatalogHistoryAdmin):
    """CASE associations kept for a faithful export; read-only (the import owns them)."""

    list_display = ["association_type", "origin", "destination", "framework", "sequence_number"]
    list_filter = ["association_type", "framework"]
    list_select_related = ["framework"]
    search_fields = ["association_type", "origin_title", "destination_title", "origin_uri", "destination_uri"]
    identifier_search_fields = ("identifier", "origin_identifier", "destination_identifier")

    @admin.display(description="Origin")
    def origin(self, association: CaseAssociation) -> str:
        return association.origin_title or association.origin_identifier

    @admin.display(description="Destination")
    def destination(self, association: CaseAssociation) -> str:
        return association.destination_title or association.destination_identifier

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- mastery scales and pacing ---------------------------------------------------------------------


class MasteryLevelInline(admin.TabularInline):
    model = MasteryLevel
    formset = catalog_forms.MasteryLevelInlineFormSet
    extra = 0
    min_num = 1
    fields = ["name", "points", "is_mastery", "color"]
    verbose_name_plural = "Levels (highest first; exactly one is the mastery level)"


@admin.register(MasteryScale)
class MasteryScaleAdmin(CatalogHistoryAdmin):
    list_display = ["name", "district", "levels_summary", "framework_count", "updated_at"]
    list_filter = ["district"]
    search_fields = ["name", "description"]
    inlines = [MasteryLevelInline]
    fields = ["name", "district", "description"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .select_related("district")
            .prefetch_related("levels")
            .annotate(frameworks_total=Count("frameworks", distinct=True))
        )

    @admin.display(description="Levels")
    def levels_summary(self, scale: MasteryScale) -> str:
        levels = list(scale.levels.all())
        if not levels:
            return "No levels yet"
        return format_html_join(
            " · ",
            "{}",
            ((f"{level}{' (mastery)' if level.is_mastery else ''}",) for level in levels),
        )

    @admin.display(description="Frameworks", ordering="frameworks_total")
    def framework_count(self, scale: MasteryScale) -> int:
        return scale.frameworks_total

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not MasteryLevel:
            super().save_formset(request, form, formset, change)
            return
        instances = formset.save(commit=False)
        for level in formset.deleted_objects:
            level.delete()
        # One mastery level per scale is a database constraint: unset the old one before setting the new.
        for level in sorted(instances, key=lambda level: level.is_mastery):
            level.save()
        formset.save_m2m()


class PacingTargetInline(admin.TabularInline):
    model = PacingTarget
    formset = catalog_forms.PacingTargetInlineFormSet
    extra = 1
    autocomplete_fields = ["competency"]
    fields = ["competency", "target_date"]
    verbose_name_plural = "Targets (mastered by this date)"


@admin.register(PacingGuide)
class PacingGuideAdmin(CatalogHistoryAdmin):
    list_display = ["section", "framework", "target_count", "updated_at"]
    list_filter = ["framework"]
    list_select_related = ["section", "framework"]
    search_fields = ["section__title", "section__code", "framework__title"]
    inlines = [PacingTargetInline]

    def get_autocomplete_fields(self, request: HttpRequest) -> list[str]:
        # The section widget needs roster's Section admin (with search fields) to be registered.
        return ["section", "framework"] if self.admin_site.is_registered(Section) else ["framework"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(targets_total=Count("targets"))

    @admin.display(description="Targets", ordering="targets_total")
    def target_count(self, guide: PacingGuide) -> int:
        return guide.targets_total


# --- frameworks: publish, retire, export, import -----------------------------------------------


def _pretty_json(value: Any) -> str:
    if not value:
        return "—"
    return format_html('<pre class="catalog-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))


def _export_filename(framework: Framework) -> str:
    return f"{slugify(framework.title) or 'framework'}.json"


@admin.register(Framework)
class FrameworkAdmin(CatalogHistoryAdmin):
    form = catalog_forms.FrameworkAdminForm
    change_list_template = "admin/competencies/framework/change_list.html"
    change_form_template = "admin/competencies/framework/change_form.html"
    list_display = ["title", "status", "version", "competency_count", "district", "updated_at"]
    list_filter = ["status", "district", "calculation_method"]
    search_fields = ["title", "creator", "publisher", "description", "version"]
    search_help_text = (
        "Search by title, creator, publisher or version; paste an identifier (UUID) to find one."
    )
    autocomplete_fields = ["mastery_scale"]
    actions = ["publish_selected", "retire_selected", "export_case_selected"]
    readonly_fields = [
        "status_with_hint",
        "competencies_link",
        "case_extra_pretty",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["title", "status_with_hint", "competencies_link", "district", "description"]}),
        (
            "How mastery is calculated",
            {"fields": ["mastery_scale", "calculation_method", "calculation_parameter"]},
        ),
        (
            "CASE document",
            {
                "classes": ["collapse"],
                "fields": [
                    "identifier",
                    "uri",
                    "creator",
                    "publisher",
                    "subject",
                    "language",
                    "version",
                    "adoption_status",
                    "official_source_url",
                    "status_start_date",
                    "status_end_date",
                    "last_change_date_time",
                    "notes",
                    "case_extra_pretty",
                    "created_at",
                    "updated_at",
                ],
            },
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = list(self.readonly_fields)
        if obj is not None:
            readonly.append("identifier")
        return readonly

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .select_related("district")
            .annotate(competencies_total=Count("competencies"))
        )

    @admin.display(description="Status")
    def status_with_hint(self, framework: Framework) -> str:
        status = framework.get_status_display() if framework.pk else Framework.Status.DRAFT.label
        return format_html(
            '{} <div class="help">A new framework starts as a draft. Publish or retire it with the actions '
            'of the <a href="{}">framework list</a>; every change is kept in its history.</div>',
            status,
            reverse("admin:competencies_framework_changelist"),
        )

    @admin.display(description="Competencies", ordering="competencies_total")
    def competency_count(self, framework: Framework) -> int:
        return framework.competencies_total

    @admin.display(description="Competencies")
    def competencies_link(self, framework: Framework) -> str:
        if framework.pk is None:
            return "Import or add competencies once the framework is saved."
        total = framework.competencies.count()
        url = reverse("admin:competencies_competency_changelist") + f"?framework__id__exact={framework.pk}"
        return format_html(
            '<a href="{}">{} competenc{} — open the tree</a>', url, total, "y" if total == 1 else "ies"
        )

    @admin.display(description="Extra CASE fields")
    def case_extra_pretty(self, framework: Framework) -> str:
        return _pretty_json(framework.case_extra)

    # actions

    @admin.action(description="Publish selected frameworks", permissions=["change"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._change_status(
            request, queryset, Framework.Status.PUBLISHED, services.framework_publish, "published"
        )

    @admin.action(description="Retire selected frameworks", permissions=["change"])
    def retire_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._change_status(request, queryset, Framework.Status.RETIRED, services.framework_retire, "retired")

    def _change_status(
        self, request: HttpRequest, queryset: QuerySet, target: str, service: Any, verb: str
    ) -> None:
        changed = already = 0
        for framework in queryset.order_by("title"):
            if framework.status == target:
                already += 1
                continue
            try:
                service(framework=framework, user=request.user)
            except ValidationError as error:
                self.message_user(
                    request, f"“{framework}” was not {verb}: {' '.join(error.messages)}", messages.ERROR
                )
                continue
            changed += 1
        if changed:
            noun = "framework" if changed == 1 else "frameworks"
            self.message_user(request, f"{changed} {noun} {verb}.", messages.SUCCESS)
        if already:
            self.message_user(
                request,
                f"{already} already {verb}: left unchanged.",
                messages.WARNING if not changed else messages.INFO,
            )

    @admin.action(description="Export selected as CASE JSON", permissions=["view"])
    def export_case_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        frameworks = list(queryset.order_by("title"))
        if len(frameworks) == 1:
            return self._export_response(request, frameworks[0])
        buffer = io.BytesIO()
        used: set[str] = set()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for framework in frameworks:
                name = _export_filename(framework)
                if name in used:
                    name = f"{name.removesuffix('.json')}-{framework.identifier}.json"
                used.add(name)
                try:
                    package = services.framework_export_case(framework=framework)
                except services.CatalogExportError as error:
                    self.message_user(
                        request,
                        f"“{framework}” cannot be exported: {'; '.join(error.messages)}",
                        messages.ERROR,
                    )
                    return None
                archive.writestr(name, json.dumps(package, indent=2, ensure_ascii=False))
        response = HttpResponse(buffer.getvalue(), content_type="application/zip")
        response["Content-Disposition"] = 'attachment; filename="case-frameworks.zip"'
        return response

    def _export_response(self, request: HttpRequest, framework: Framework) -> HttpResponse | None:
        try:
            package = services.framework_export_case(framework=framework)
        except services.CatalogExportError as error:
            self.message_user(
                request, f"“{framework}” cannot be exported: {'; '.join(error.messages)}", messages.ERROR
            )
            return None
        response = HttpResponse(
            json.dumps(package, indent=2, ensure_ascii=False), content_type="application/json; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{_export_filename(framework)}"'
        return response

    # extra pages

    def get_urls(self) -> list[Any]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("import/<str:kind>/", view(self.import_upload_view), name=f"{info}_import"),
            path(
                "import/<str:kind>/<str:token>/",
                view(self.import_preview_view),
                name=f"{info}_import_preview",
            ),
            path("<path:object_id>/export-case/", view(self.export_view), name=f"{info}_export"),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        framework = self.get_object(request, object_id)
        if framework is None or not self.has_view_permission(request, framework):
            raise Http404("No such framework.")
        response = self._export_response(request, framework)
        if response is None:
            return HttpResponseRedirect(reverse("admin:competencies_framework_change", args=[framework.pk]))
        return response

    def _import_context(self, request: HttpRequest, kind: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "kind": kind,
            "kind_label": IMPORT_KINDS[kind],
            "title": f"Import a framework from {IMPORT_KINDS[kind]}",
            "upload_url": reverse("admin:competencies_framework_import", args=[kind]),
            "changelist_url": reverse("admin:competencies_framework_changelist"),
            **extra,
        }

    def _check_import_access(self, request: HttpRequest, kind: str) -> None:
        if kind not in IMPORT_KINDS:
            raise Http404("Unknown import format.")
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied

    def import_upload_view(self, request: HttpRequest, kind: str) -> HttpResponse:
        """Step 1: choose the file (and for CSV the target framework)."""
        self._check_import_access(request, kind)
        form_class = catalog_forms.CaseImportForm if kind == "case" else catalog_forms.CsvImportForm
        form = form_class(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            token = _pending_import_store(
                request,
                kind=kind,
                data=b"".join(upload.chunks()),
                source_name=upload.name,
                framework_id=form.cleaned_data["framework"].pk if kind == "csv" else None,
            )
            return HttpResponseRedirect(
                reverse("admin:competencies_framework_import_preview", args=[kind, token])
            )
        context = self._import_context(
            request,
            kind,
            form=form,
            media=self.media + form.media,
            errors=form.errors,
        )
        return TemplateResponse(request, "admin/competencies/framework/import_upload.html", context)

    def import_preview_view(self, request: HttpRequest, kind: str, token: str) -> HttpResponse:
        """Step 2 (GET): the dry run's counts and warnings, or its errors. Step 3 (POST): apply it."""
        self._check_import_access(request, kind)
        pending = _pending_import_get(request, token)
        if pending is None or pending["kind"] != kind:
            self.message_user(
                request,
                "That upload is no longer available (it was applied or has expired). Upload the file again.",
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:competencies_framework_import", args=[kind]))
        framework = None
        if pending.get("framework_id"):
            framework = Framework.objects.filter(pk=pending["framework_id"]).first()
            if framework is None:
                _pending_import_discard(request, token)
                self.message_user(request, "The target framework no longer exists.", messages.ERROR)
                return HttpResponseRedirect(reverse("admin:competencies_framework_import", args=[kind]))
        apply = request.method == "POST"
        if apply:
            apply_form = catalog_forms.ImportApplyForm(request.POST)
            if not apply_form.is_valid() or apply_form.cleaned_data["token"] != token:
                raise PermissionDenied
        try:
            report = self._run_import(request, pending, framework=framework, dry_run=not apply)
        except services.CatalogImportError as error:
            if apply:
                _pending_import_discard(request, token)
            context = self._import_context(
                request,
                kind,
                title=f"{IMPORT_KINDS[kind]} import: nothing was written",
                source_name=pending["source_name"],
                target_framework=framework,
                import_errors=error.messages or [str(error)],
            )
            return TemplateResponse(request, "admin/competencies/framework/import_preview.html", context)
        if apply:
            _pending_import_discard(request, token)
            self.message_user(
                request, f"Imported “{pending['source_name']}”: {report.summary()}", messages.SUCCESS
            )
            for warning in report.warnings[:20]:
                self.message_user(request, warning, messages.WARNING)
            target = report.framework or framework
            if target is None:
                return HttpResponseRedirect(reverse("admin:competencies_framework_changelist"))
            return HttpResponseRedirect(reverse("admin:competencies_framework_change", args=[target.pk]))
        context = self._import_context(
            request,
            kind,
            title=f"Preview of the {IMPORT_KINDS[kind]} import (dry run: nothing written yet)",
            source_name=pending["source_name"],
            target_framework=framework or report.framework,
            report=report,
            count_rows=_count_rows(report),
            apply_form=catalog_forms.ImportApplyForm(initial={"token": token}),
        )
        return TemplateResponse(request, "admin/competencies/framework/import_preview.html", context)

    def _run_import(
        self, request: HttpRequest, pending: dict[str, Any], *, framework: Framework | None, dry_run: bool
    ) -> Any:
        data = Path(pending["path"]).read_bytes()
        if pending["kind"] == "case":
            return services.framework_import_case(
                source=data,
                dry_run=dry_run,
                user=request.user,
                source_name=pending["source_name"],
                district=getattr(request.user, "district", None),
            )
        return services.framework_import_csv(
            source=data,
            framework=framework,
            dry_run=dry_run,
            user=request.user,
            source_name=pending["source_name"],
        )


def _count_rows(report: Any) -> list[dict[str, Any]]:
    counts = report.counts or {}
    kinds = [kind for kind in COUNT_KINDS if kind in counts] + [
        kind for kind in counts if kind not in COUNT_KINDS
    ]
    rows = []
    for kind in kinds:
        row = counts.get(kind) or {}
        rows.append(
            {
                "kind": COUNT_KIND_LABELS.get(kind, kind.capitalize()),
                "key": kind,
                "created": row.get("created", 0),
                "updated": row.get("updated", 0),
                "unchanged": row.get("unchanged", 0),
            }
        )
    return rows


# --- uploads kept between the preview and the apply step ------------------------------------------


def _pending_import_path(token: str) -> str:
    return os.path.join(tempfile.gettempdir(), f"{IMPORT_FILE_PREFIX}{token}")


def _pending_import_store(
    request: HttpRequest, *, kind: str, data: bytes, source_name: str, framework_id: int | None
) -> str:
    """Keep the uploaded bytes in a private temp file; the session holds the only key to it."""
    _pending_import_sweep()
    token = secrets.token_urlsafe(24)
    file_path = _pending_import_path(token)
    descriptor = os.open(file_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    pending = dict(request.session.get(IMPORT_SESSION_KEY, {}))
    while len(pending) >= MAX_PENDING_IMPORTS:
        _discard_entry(pending.pop(next(iter(pending))))
    pending[token] = {
        "kind": kind,
        "path": file_path,
        "source_name": source_name[:255],
        "framework_id": framework_id,
    }
    request.session[IMPORT_SESSION_KEY] = pending
    return token


def _pending_import_get(request: HttpRequest, token: str) -> dict[str, Any] | None:
    if not _TOKEN.match(token):
        return None
    pending = request.session.get(IMPORT_SESSION_KEY, {}).get(token)
    if pending is None or not os.path.exists(pending["path"]):
        return None
    return pending


def _pending_import_discard(request: HttpRequest, token: str) -> None:
    pending = dict(request.session.get(IMPORT_SESSION_KEY, {}))
    entry = pending.pop(token, None)
    request.session[IMPORT_SESSION_KEY] = pending
    if entry is not None:
        _discard_entry(entry)


def _discard_entry(entry: dict[str, Any]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(entry["path"])


def _pending_import_sweep() -> None:
    """Delete uploads that were previewed but never applied, once they are a day old."""
    cutoff = time.time() - PENDING_IMPORT_MAX_AGE_SECONDS
    for leftover in Path(tempfile.gettempdir()).glob(f"{IMPORT_FILE_PREFIX}*"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
