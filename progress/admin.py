"""Admin for district staff: evidence and stored mastery to inspect (read-only: they are computed or
come from attempts), BKT parameters and flag thresholds to tune, and the flags to look through."""

from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from progress.models import BKTParameters, CompetencyMastery, Evidence, FlagThresholds, InterventionFlag


class ReadOnlyMixin:
    """Rows written by services only: an admin edit would bypass the recompute and the audit."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("student", "competency", "source", "score", "is_correct", "is_summative", "observed_at")
    list_filter = ("source", "is_summative", "is_correct")
    search_fields = ("student__username", "student__last_name", "competency__code", "note")
    list_select_related = ("student", "competency")
    date_hierarchy = "observed_at"
    raw_id_fields = ("student", "competency", "author")


@admin.register(CompetencyMastery)
class CompetencyMasteryAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("student", "competency", "state", "score", "level_name", "method", "computed_at")
    list_filter = ("state", "method", "is_overridden")
    search_fields = ("student__username", "student__last_name", "competency__code")
    list_select_related = ("student", "competency")
    raw_id_fields = ("student", "competency")
    fields = (
        "student",
        "competency",
        "state",
        "score",
        "level_points",
        "level_name",
        "p_known",
        "method",
        "explanation",
        "evidence_count",
        "failed_checks",
        "mastered_at",
        "first_activity_at",
        "last_activity_at",
        "is_overridden",
        "is_unlocked_by_teacher",
        "computed_at",
    )


@admin.register(BKTParameters)
class BKTParametersAdmin(admin.ModelAdmin):
    list_display = ("competency", "prior", "learn", "guess", "slip", "forget", "sequence_count", "fitted_at")
    list_select_related = ("competency",)
    search_fields = ("competency__code",)
    raw_id_fields = ("competency",)


@admin.register(FlagThresholds)
class FlagThresholdsAdmin(SimpleHistoryAdmin):
    list_display = (
        "district",
        "stuck_failed_checks",
        "stuck_days",
        "inactive_school_days",
        "behind_pace_margin",
        "weak_prerequisite_score_margin",
        "prerequisite_stale_days",
    )
    list_select_related = ("district",)


@admin.register(InterventionFlag)
class InterventionFlagAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("student", "kind", "competency", "status", "opened_at", "resolved_at", "is_auto_resolved")
    list_filter = ("kind", "status", "is_auto_resolved")
    search_fields = ("student__username", "student__last_name", "competency__code", "reason")
    list_select_related = ("student", "competency")
    date_hierarchy = "opened_at"
    raw_id_fields = ("student", "competency", "resolved_by")
