"""The teacher's dashboard pages and the student's path, server-rendered over the same selectors as the
API (``dashboard_selectors``, ``groups``, ``selectors.student_path``), so a page and its JSON agree.

Flag actions work without JavaScript (plain POST, then a redirect back) and in place with htmx (the
same POST answers the updated flag's partial). Teachers see only their own sections and students;
anyone else gets 404, as the API does.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from progress import dashboard_selectors, flag_services
from progress.groups import section_groups
from progress.models import CompetencyMastery, InterventionFlag
from progress.page_access import student_page, teacher_page  # noqa: F401
from roster.models import Enrollment

State = CompetencyMastery.State

# The text shown with every heatmap colour: a cell is never colour alone.
STATE_ABBREVIATIONS = {
    State.MASTERED: "M",
    State.IN_PROGRESS: "IP",
    State.READY: "R",
    State.LOCKED: "L",
}
STATE_LABELS = dict(State.choices)


# --- the heatmap as a table: what the page shows and the CSV exports ----------------------------------


def _score_text(value: Any) -> str:
    if value is None:
        return ""
    text = f"{value:.2f}" if not isinstance(value, str) else value
    return text.rstrip("0").rstrip(".") if "." in text else text


def _level_class(cell: dict[str, Any]) -> str:
    """A colour class by level on the mastery scale (0..4 points); by state when there is no level."""
    if cell["state"] == State.MASTERED:
        return "hm-mastered"
    if cell["level"] is not None:
        return f"hm-level-{max(0, min(4, int(cell['level'])))}"
    return f"hm-{cell['state'].replace('_', '-')}"


def heatmap_table(heatmap: dict[str, Any]) -> dict[str, Any]:
    """Header and rows of the heatmap, each cell with the text shown (abbreviation and score), its
    colour class and a title (state, score, level). The CSV export writes exactly the shown text."""
    rows = []
    for student in heatmap["students"]:
        cells = []
        for cell in student["cells"]:
            abbreviation = STATE_ABBREVIATIONS.get(cell["state"], cell["state"])
            score = _score_text(cell["score"])
            state = STATE_LABELS.get(cell["state"], cell["state"])
            title = state
            if score:
                title += f"; score {score}"
            if cell["level_name"]:
                title += f"; level {cell['level_name']}"
            cells.append(
                {
                    "text": f"{abbreviation} {score}".strip(),
                    "abbreviation": abbreviation,
                    "score": score,
                    "title": title,
                    "css": _level_class(cell),
                }
            )
        rows.append(
            {
                "id": student["id"],
                "name": student["name"],
                "open_flags": student["open_flags"],
                "cells": cells,
            }
        )
    return {"codes": [competency["code"] for competency in heatmap["competencies"]], "rows": rows}


# --- teacher pages --------------------------------------------------------------------------------


@teacher_page
@require_GET
def teacher_home(request: HttpRequest) -> HttpResponse:
    """The teacher's sections with their open flags, and the flags open now. Four queries."""
    sections = list(dashboard_selectors.section_list_for_teacher(user=request.user))
    open_flags = list(
        dashboard_selectors.flag_list_for_teacher(user=request.user, status=InterventionFlag.Status.OPEN)
    )
    sections_of: dict[int, set[int]] = defaultdict(set)
    for student_id, section_id in Enrollment.objects.filter(
        section_id__in=[section.pk for section in sections],
        role=Enrollment.Role.STUDENT,
        is_active=True,
        user__is_active=True,
    ).values_list("user_id", "section_id"):
        sections_of[student_id].add(section_id)
    counts: Counter[int] = Counter()
    for flag in open_flags:
        counts.update(sections_of.get(flag.student_id, ()))
    for section in sections:
        section.open_flag_count = counts.get(section.pk, 0)
    return render(
        request,
        "progress/teacher_home.html",
        {"sections": sections, "open_flags": open_flags, "today": timezone.localdate()},
    )


@teacher_page
@require_GET
def section_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Heatmap, flag queue and suggested groups of one section. A constant number of queries."""
    section = dashboard_selectors.access_section(user=request.user, section_id=pk)
    table = heatmap_table(dashboard_selectors.section_heatmap(section=section))
    flags = list(
        dashboard_selectors.flag_list_for_teacher(user=request.user, section_id=section.pk)
        .exclude(status=InterventionFlag.Status.RESOLVED)
        .select_related("resolved_by")
    )
    names = {row["id"]: row["name"] for row in table["rows"]}
    groups = [
        {"group": group, "names": [names.get(student_id, str(student_id)) for student_id in group.students]}
        for group in section_groups(section=section)
    ]
    return render(
        request,
        "progress/section_detail.html",
        {
            "section": section,
            "table": table,
            "flags": flags,
            "groups": groups,
            "legend": [(abbr, STATE_LABELS[state]) for state, abbr in STATE_ABBREVIATIONS.items()],
            "tomorrow": _tomorrow(),
            "next_url": request.get_full_path(),
        },
    )


@teacher_page
@require_GET
def section_heatmap_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """Exactly the cells the section page shows, one row per student."""
    section = dashboard_selectors.access_section(user=request.user, section_id=pk)
    table = heatmap_table(dashboard_selectors.section_heatmap(section=section))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="section-{section.pk}-heatmap.csv"'
    writer = csv.writer(response)
    writer.writerow(["Student", *table["codes"]])
    for row in table["rows"]:
        writer.writerow([row["name"], *(cell["text"] for cell in row["cells"])])
    return response


FLAG_ACTIONS = ("acknowledge", "snooze", "resolve")


@teacher_page
@require_POST
def flag_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in FLAG_ACTIONS:
        raise Http404
    flag = dashboard_selectors.access_flag(user=request.user, flag_id=pk)
    note = request.POST.get("note", "").strip()[:5000]
    error = None
    try:
        if action == "acknowledge":
            flag = flag_services.flag_acknowledge(flag=flag, user=request.user, note=note)
        elif action == "resolve":
            flag = flag_services.flag_resolve(flag=flag, user=request.user, note=note)
        else:
            until = _parse_day(request.POST.get("until", ""))
            if until is None:
                raise ValidationError("Choose a date to snooze until.")
            flag = flag_services.flag_snooze(flag=flag, user=request.user, until=until, note=note)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.htmx:
        flag = dashboard_selectors.access_flag(user=request.user, flag_id=pk)
        return render(
            request,
            "progress/_flag_row.html",
            {"flag": flag, "error": error, "next_url": _next_url(request), "tomorrow": _tomorrow()},
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Flag {flag.get_status_display().lower()}.")
    return redirect(_next_url(request))


def _parse_day(value: str) -> date | None:
    try:
        return parse_date(value.strip()) if value else None
    except ValueError:
        return None


def _tomorrow() -> date:
    return date.fromordinal(timezone.localdate().toordinal() + 1)


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next", "")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("progress:teacher-home")
