"""District staff keep the item bank and assessments here; attempts are shown read-only."""

from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

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


class ItemChoiceInline(admin.TabularInline):
    model = ItemChoice
    extra = 0
    fields = ["position", "text", "is_correct"]


class RubricLevelInline(admin.TabularInline):
    model = RubricLevel
    extra = 0


class ItemAlignmentInline(admin.TabularInline):
    model = ItemAlignment
    extra = 0
    autocomplete_fields: list[str] = []
    raw_id_fields = ["competency"]


@admin.register(Item)
class ItemAdmin(SimpleHistoryAdmin):
    list_display = ["pk", "__str__", "type", "status", "max_points", "key_version", "district"]
    list_filter = ["type", "status", "district"]
    search_fields = ["stem"]
    readonly_fields = ["key_version", "created_at", "updated_at"]
    inlines = [ItemChoiceInline, RubricLevelInline, ItemAlignmentInline]


class BlueprintRuleInline(admin.TabularInline):
    model = BlueprintRule
    extra = 0
    raw_id_fields = ["competency"]
    filter_horizontal = ["items"]


@admin.register(Assessment)
class AssessmentAdmin(SimpleHistoryAdmin):
    list_display = ["title", "kind", "competency", "status", "max_attempts", "cooldown_hours", "remediation"]
    list_filter = ["kind", "status", "remediation", "district"]
    search_fields = ["title"]
    raw_id_fields = ["competency"]
    inlines = [BlueprintRuleInline]


class AttemptItemInline(admin.TabularInline):
    model = AttemptItem
    extra = 0
    can_delete = False
    readonly_fields = ["position", "item", "key_version_seen"]


class ResponseInline(admin.TabularInline):
    model = Response
    extra = 0
    can_delete = False
    readonly_fields = ["item", "answer", "saved_at", "score", "scored_key_version", "needs_grading"]
    fields = readonly_fields


class AttemptCompetencyScoreInline(admin.TabularInline):
    model = AttemptCompetencyScore
    extra = 0
    can_delete = False
    readonly_fields = ["competency", "earned", "possible", "score", "level_points", "is_met"]


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ["pk", "student", "assessment", "number", "status", "score", "max_score", "is_passed"]
    list_filter = ["status", "assessment"]
    search_fields = ["student__username", "assessment__title"]
    readonly_fields = [
        "assessment",
        "student",
        "number",
        "seed",
        "status",
        "started_at",
        "deadline",
        "submitted_at",
        "completed_at",
        "score",
        "max_score",
        "is_passed",
    ]
    inlines = [AttemptItemInline, ResponseInline, AttemptCompetencyScoreInline]

    def has_add_permission(self, request) -> bool:
        return False


from assessments import admin_rescoring  # noqa: E402, F401  (registers the rescoring job admin)
