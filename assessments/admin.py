"""District staff keep the item bank and assessments here; attempts are shown read-only.

The item editor records every change to a key, points or alignments through the rescoring service:
the key is snapshotted when the change form is posted, before anything is saved, and compared after
the inlines are saved; a difference raises the key version and starts a rescoring job.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from simple_history.admin import SimpleHistoryAdmin

from assessments import rescoring
from assessments.markdown import render_stem
from assessments.models import (
    Assessment,
    Attempt,
    AttemptCompetencyScore,
    AttemptItem,
    BlueprintRule,
    Item,
    ItemAlignment,
    ItemChoice,
    Response,
    RubricLevel,
)

# --- items ----------------------------------------------------------------------------------------


class ItemChoiceFormSet(BaseInlineFormSet):
    """The key must make sense for the item's type (the type comes from the parent form, unsaved)."""

    def clean(self) -> None:
        super().clean()
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        correct = sum(1 for data in kept if data.get("is_correct"))
        item_type = self.instance.type
        if item_type == Item.Type.SINGLE_CHOICE and (len(kept) < 2 or correct != 1):
            raise forms.ValidationError(
                "A single-choice item needs at least two choices, exactly one of them correct."
            )
        if item_type == Item.Type.MULTIPLE_CHOICE and (len(kept) < 2 or correct < 1):
            raise forms.ValidationError(
                "A multiple-choice item needs at least two choices, at least one of them correct."
            )
        if item_type not in (Item.Type.SINGLE_CHOICE, Item.Type.MULTIPLE_CHOICE) and kept:
            raise forms.ValidationError("Only choice items have choices: delete them or change the type.")


class ItemChoiceInline(admin.TabularInline):
    model = ItemChoice
    formset = ItemChoiceFormSet
    extra = 0
    fields = ["position", "text", "is_correct"]
    verbose_name_plural = "Choices (the key: tick the correct ones)"


class RubricLevelInline(admin.TabularInline):
    model = RubricLevel
    extra = 0
    fields = ["points", "description"]
    verbose_name_plural = "Rubric levels (extended-text items)"


class ItemAlignmentInline(admin.TabularInline):
    model = ItemAlignment
    extra = 0
    fields = ["competency", "points"]
    autocomplete_fields = ["competency"]
    verbose_name_plural = "Alignments (competencies this item measures, and its points for each)"


class ItemAdminForm(forms.ModelForm):
    change_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the key, points or alignments change: kept in the history and on the rescoring job.",
    )

    class Meta:
        model = Item
        fields = [
            "district",
            "type",
            "status",
            "stem",
            "max_points",
            "partial_credit",
            "answer_value",
            "answer_tolerance",
            "accepted_answers",
        ]


class SuspectItemFilter(admin.SimpleListFilter):
    title = "suspect items"
    parameter_name = "suspect"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Suspect"), ("no", "Not suspect"), ("unknown", "No statistics yet")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(statistics__is_suspect=True)
        if self.value() == "no":
            return queryset.filter(statistics__is_suspect=False)
        if self.value() == "unknown":
            return queryset.filter(statistics__isnull=True)
        return queryset


@admin.register(Item)
class ItemAdmin(SimpleHistoryAdmin):
    form = ItemAdminForm
    list_display = [
        "pk",
        "short_stem",
        "type",
        "status",
        "key_version",
        "max_points",
        "facility",
        "discrimination",
        "is_suspect",
    ]
    list_display_links = ["pk", "short_stem"]
    list_filter = [SuspectItemFilter, "type", "status", "district"]
    search_fields = ["stem"]
    readonly_fields = ["key_version", "created_at", "updated_at", "preview", "statistics_summary"]
    inlines = [ItemChoiceInline, RubricLevelInline, ItemAlignmentInline]
    history_list_display = ["key_version", "status"]
    fieldsets = [
        (None, {"fields": ["district", "type", "status", "stem"]}),
        (
            "Key and points",
            {
                "fields": [
                    "max_points",
                    "partial_credit",
                    "answer_value",
                    "answer_tolerance",
                    "accepted_answers",
                    "key_version",
                    "change_reason",
                ],
                "description": "Choices and rubric levels are below. A change to the key, the points "
                "or the alignments raises the key version and rescores every affected response.",
            },
        ),
        ("Preview: what the student sees", {"fields": ["preview"]}),
        ("Statistics (nightly)", {"fields": ["statistics_summary"], "classes": ["collapse"]}),
        ("Dates", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                stat_facility=F("statistics__facility"),
                stat_discrimination=F("statistics__discrimination"),
                stat_is_suspect=F("statistics__is_suspect"),
            )
        )

    @admin.display(description="stem")
    def short_stem(self, item: Item) -> str:
        stem = " ".join(item.stem.split())
        return stem if len(stem) <= 70 else stem[:69] + "…"

    @admin.display(description="facility", ordering="stat_facility")
    def facility(self, item: Item) -> Any:
        return getattr(item, "stat_facility", None)

    @admin.display(description="discrimination", ordering="stat_discrimination")
    def discrimination(self, item: Item) -> Any:
        return getattr(item, "stat_discrimination", None)

    @admin.display(description="suspect", boolean=True, ordering="stat_is_suspect")
    def is_suspect(self, item: Item) -> bool | None:
        return getattr(item, "stat_is_suspect", None)

    @admin.display(description="Preview: what the student sees")
    def preview(self, item: Item) -> SafeString | str:
        if item.pk is None:
            return "Save the item to see the preview."
        return render_to_string(
            "admin/assessments/item/preview.html",
            {
                "item": item,
                "stem_html": mark_safe(render_stem(item.stem)),
                # Only the text and order of the choices: never whether one is correct.
                "choices": list(item.choices.order_by("position", "pk").values_list("text", flat=True)),
            },
        )

    @admin.display(description="Statistics")
    def statistics_summary(self, item: Item) -> SafeString | str:
        statistics = getattr(item, "statistics", None) if item.pk else None
        if statistics is None:
            return "Not computed yet (the statistics are recomputed every night)."
        reasons = "".join(format_html("<li>{}</li>", reason) for reason in statistics.suspect_reasons)
        return format_html(
            "{} scored responses; facility {}, discrimination {} (computed {}).{}",
            statistics.response_count,
            statistics.facility if statistics.facility is not None else "—",
            statistics.discrimination if statistics.discrimination is not None else "—",
            statistics.computed_at.strftime("%Y-%m-%d %H:%M"),
            mark_safe(f"<ul>{reasons}</ul>") if reasons else "",
        )

    # -- recording key changes --

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Item | None:
        item = super().get_object(request, object_id, from_field)
        if item is not None and request.method == "POST" and not hasattr(request, "_item_key_before"):
            # Before the form touches the instance: the key as it stands in the database.
            request._item_key_before = rescoring.item_key_snapshot(item)  # type: ignore[attr-defined]
        return item

    def save_model(self, request: HttpRequest, obj: Item, form: forms.ModelForm, change: bool) -> None:
        reason = form.cleaned_data.get("change_reason", "")
        if reason:
            obj._change_reason = reason  # recorded by django-simple-history
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        before = getattr(request, "_item_key_before", None)
        if not change or before is None:
            return
        item = form.instance
        after = rescoring.item_key_snapshot(item)
        if after == before:
            return
        job = rescoring.item_key_change_record(
            item=item,
            before=before,
            after=after,
            user=request.user,
            reason=form.cleaned_data.get("change_reason", ""),
        )
        if job is not None:
            self.message_user(
                request,
                f"Key changed: rescoring job #{job.pk} started for {job.total} responses.",
                messages.WARNING,
            )
        else:
            self.message_user(
                request,
                f"Key changed (now version {item.key_version}); no scored responses needed rescoring.",
                messages.INFO,
            )


# --- assessments ----------------------------------------------------------------------------------


class BlueprintRuleInline(admin.TabularInline):
    model = BlueprintRule
    extra = 0
    fields = ["position", "competency", "draw_count", "items"]
    autocomplete_fields = ["competency", "items"]
    verbose_name_plural = (
        "Blueprint (per competency: how many items to draw, and from which pool; "
        "an empty pool draws from every active item aligned to the competency)"
    )


@admin.register(Assessment)
class AssessmentAdmin(SimpleHistoryAdmin):
    list_display = [
        "title",
        "kind",
        "competency",
        "status",
        "time_limit_minutes",
        "max_attempts",
        "cooldown_hours",
        "remediation",
    ]
    list_filter = ["kind", "status", "remediation", "district"]
    search_fields = ["title", "competency__code", "competency__statement"]
    autocomplete_fields = ["competency"]
    list_select_related = ["competency"]
    inlines = [BlueprintRuleInline]
    fieldsets = [
        (None, {"fields": ["district", "title", "kind", "competency", "status"]}),
        (
            "Attempts and retakes",
            {"fields": ["time_limit_minutes", "max_attempts", "cooldown_hours", "remediation"]},
        ),
    ]


# --- attempts (read-only) -------------------------------------------------------------------------


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AttemptItemInline(ReadOnlyInline):
    model = AttemptItem
    fields = ["position", "item", "key_version_seen"]
    readonly_fields = fields
    verbose_name_plural = "Form (the items drawn for this attempt)"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("item")


class ResponseInline(ReadOnlyInline):
    model = Response
    fields = ["item", "answer", "saved_at", "score", "scored_key_version", "needs_grading", "grader"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("item", "grader")


class AttemptCompetencyScoreInline(ReadOnlyInline):
    model = AttemptCompetencyScore
    fields = ["competency", "earned", "possible", "score", "level_points", "is_met"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("competency")


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    """Attempts are evidence: staff look, nobody edits here (rescoring and grading have services)."""

    list_display = ["pk", "student", "assessment", "number", "status", "score", "max_score", "is_passed"]
    list_filter = ["status", "is_passed", "assessment__kind"]
    search_fields = ["student__username", "student__last_name", "assessment__title"]
    list_select_related = ["student", "assessment"]
    date_hierarchy = "started_at"
    inlines = [AttemptItemInline, ResponseInline, AttemptCompetencyScoreInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


from assessments import admin_rescoring  # noqa: E402, F401  (registers the rescoring job admin)
