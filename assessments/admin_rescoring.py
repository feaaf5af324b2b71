"""Admin for rescoring jobs (registered from assessments/admin.py): read-only, because a job is a
record of what happened. The list shows each job's progress as a bar; the page shows who asked, why,
what changed in the key, and the score changes (the first ones inline, all of them linked)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from assessments.models import RescoreJob, ResponseScoreChange

SCORE_CHANGES_SHOWN = 50


class ReadOnlyAdminMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RescoreJob)
class RescoreJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "pk",
        "status",
        "progress",
        "total",
        "done",
        "changed",
        "requested_by",
        "reason_short",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["reason", "items__stem"]
    list_select_related = ["requested_by"]
    date_hierarchy = "created_at"
    fields = [
        "status",
        "progress",
        ("total", "done", "changed"),
        "requested_by",
        "reason",
        "items_changed",
        "assessment",
        "what_changed",
        "error",
        ("created_at", "started_at", "finished_at"),
        "score_changes",
    ]
    readonly_fields = [
        "status",
        "progress",
        "total",
        "done",
        "changed",
        "requested_by",
        "reason",
        "items_changed",
        "assessment",
        "what_changed",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "score_changes",
    ]

    @admin.display(description="progress")
    def progress(self, job: RescoreJob) -> str:
        percent = round(100 * job.done / job.total) if job.total else 100
        colour = {"failed": "#ba2121", "completed": "#417690"}.get(job.status, "#79aec8")
        return format_html(
            '<div title="{} of {} responses rescored, {} changed" style="width:10em;background:#eee;'
            'border-radius:3px;display:inline-block;vertical-align:middle">'
            '<div style="width:{}%;background:{};height:0.9em;border-radius:3px"></div></div> {}%',
            job.done,
            job.total,
            job.changed,
            percent,
            colour,
            percent,
        )

    @admin.display(description="reason")
    def reason_short(self, job: RescoreJob) -> str:
        return job.reason[:80]

    @admin.display(description="items")
    def items_changed(self, job: RescoreJob) -> str:
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:assessments_item_change", args=[item.pk]), str(item))
                for item in job.items.order_by("pk")
            ),
        )

    @admin.display(description="what changed")
    def what_changed(self, job: RescoreJob) -> str:
        if not job.changes:
            return "-"
        return format_html(
            '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
            json.dumps(job.changes, indent=2, sort_keys=True, ensure_ascii=False),
        )

    @admin.display(description="score changes")
    def score_changes(self, job: RescoreJob) -> str:
        changes = list(
            ResponseScoreChange.objects.filter(job=job)
            .select_related("response__attempt__student")
            .order_by("response_id")[:SCORE_CHANGES_SHOWN]
        )
        if not changes:
            return "None."
        count = ResponseScoreChange.objects.filter(job=job).count()
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} &rarr; {}</td><td>v{} &rarr; v{}</td></tr>",
            (
                (
                    change.response_id,
                    change.response.attempt.student,
                    change.response.item_id,
                    change.old_score,
                    change.new_score,
                    change.old_key_version,
                    change.new_key_version,
                )
                for change in changes
            ),
        )
        link = reverse("admin:assessments_responsescorechange_changelist") + f"?job__id__exact={job.pk}"
        return format_html(
            "<table><thead><tr><th>response</th><th>student</th><th>item</th><th>score</th>"
            "<th>key version</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">All {} score changes of this job</a></p>',
            rows,
            link,
            count,
        )


@admin.register(ResponseScoreChange)
class ResponseScoreChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "response",
        "job",
        "old_score",
        "new_score",
        "old_key_version",
        "new_key_version",
        "created_at",
    ]
    list_filter = ["job"]
    list_select_related = ["job", "response"]
    raw_id_fields = ["job", "response"]
    readonly_fields = [
        "job",
        "response",
        "old_score",
        "new_score",
        "old_key_version",
        "new_key_version",
        "created_at",
    ]
    show_full_result_count = False
