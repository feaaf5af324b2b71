"""The teacher's dashboard pages and the student's path, server-rendered over the same selectors as the
API (``dashboard_selectors``, ``groups``, ``selectors.student_path``), so a page and its JSON agree.

Flag actions work without JavaScript (plain POST, then a redirect back) and in place with htmx (the
same POST answers the updated flag's partial). Teachers see only their own sections and students;
anyone else gets 404, as the API does.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import date
from html import escape  # what django.utils.html.escape does, without its lazy-string wrapper
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.defaultfilters import date as date_filter
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from assessments import grading_selectors
from progress import charts, dashboard_selectors, flag_services
from progress import services as progress_services
from progress.dashboard_selectors import QueueFlag
from progress.models import CompetencyMastery, InterventionFlag
from progress.page_access import student_page, teacher_page  # noqa: F401
from progress.teacher_forms import HeatmapQueryForm, OverrideForm
from roster.models import Enrollment, Section, User

State = CompetencyMastery.State

# The text shown with every heatmap colour: a cell is never colour alone.
STATE_ABBREVIATIONS = {
    State.MASTERED: "M",
    State.IN_PROGRESS: "IP",
    State.READY: "R",
    State.LOCKED: "L",
}
STATE_LABELS = dict(State.choices)
FLAG_KIND_LABELS = dict(InterventionFlag.Kind.choices)
FLAG_STATUS_LABELS = dict(InterventionFlag.Status.choices)


# --- the heatmap as a table: what the page shows and the CSV exports ----------------------------------


def _score_text(value: Any) -> str:
    if value is None:
        return ""
    text = f"{value:.2f}" if not isinstance(value, str) else value
    return text.rstrip("0").rstrip(".") if "." in text else text


def _level_class(cell: dict[str, Any], scale_classes: dict[Any, str]) -> str:
    """A colour class by level on the mastery scale: the scale's own colour (``hm-lv-<level id>``,
    from ``section_scale_css``) when its levels have colours, else fixed classes for 0..4 points;
    by state when there is no level."""
    if cell["level"] is not None and cell["level"] in scale_classes:
        return scale_classes[cell["level"]]
    if cell["state"] == State.MASTERED:
        return "hm-mastered"
    if cell["level"] is not None:
        return f"hm-level-{max(0, min(4, int(cell['level'])))}"
    return f"hm-{cell['state'].replace('_', '-')}"


def _percent_text(count: int, total: int) -> str:
    return f"{round(count * 100 / total)}%" if total else "-"


def _pacing(heatmap: dict[str, Any], targets: dict[int, date], today: date) -> dict[str, Any]:
    """The pacing guide's expected position today: the competency with the latest target date on or
    before today (a leaf without its own target takes its nearest unit's), and the next one due."""
    due: list[tuple[date, int, dict[str, Any]]] = []
    for index, competency in enumerate(heatmap["competencies"]):
        target = targets.get(competency["id"])
        if target is None:
            target = next(
                (
                    targets[ancestor]
                    for ancestor in reversed(competency["ancestor_ids"])
                    if ancestor in targets
                ),
                None,
            )
        if target is not None:
            due.append((target, index, competency))
    reached = [entry for entry in due if entry[0] <= today]
    upcoming = [entry for entry in due if entry[0] > today]
    expected = max(reached, key=lambda entry: (entry[0], entry[1])) if reached else None
    following = min(upcoming, key=lambda entry: (entry[0], entry[1])) if upcoming else None
    return {
        "has_targets": bool(due),
        "expected": (
            {"id": expected[2]["id"], "code": expected[2]["code"], "date": expected[0]} if expected else None
        ),
        "next": (
            {"id": following[2]["id"], "code": following[2]["code"], "date": following[0]}
            if following
            else None
        ),
    }


EXPECTED_TEXT = "expected by today"


def _cell_keys(heatmap: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
    """Each student's cells as (state, level, level name, score): as ``section_board`` gives them, or
    from ``section_heatmap``'s cell dicts."""
    if heatmap.get("cells_are_keys"):
        return [student["cells"] for student in heatmap["students"]]
    return [
        [(cell["state"], cell["level"], cell["level_name"], cell["score"]) for cell in student["cells"]]
        for student in heatmap["students"]
    ]


def _render_cell(
    key: tuple[Any, ...], competency: dict[str, Any], is_expected: bool, scale_classes: dict[Any, str]
) -> tuple[str, str, bool]:
    """One cell: its markup (state letters with the colour class, the title for hover and screen
    readers, all escaped), its text (what the CSV writes) and whether it is mastered."""
    state, level, level_name, score_value = key
    abbreviation = STATE_ABBREVIATIONS.get(state, state)
    score = _score_text(score_value)
    title = f"{competency['code']}: {STATE_LABELS.get(state, state)}"
    if score:
        title += f"; score {score}"
    if level_name:
        title += f"; level {level_name}"
    text = f"{abbreviation} {score}".strip()
    css = _level_class({"state": state, "level": level}, scale_classes)
    if is_expected:
        css += " hm-pace-col"
    title = escape(title)
    markup = (
        f'<td class="hm-cell {escape(css)}" title="{title}"><span class="hm-text">{escape(text)}</span>'
        f'<span class="visually-hidden"> ({title})</span></td>'
    )
    return markup, text, state == State.MASTERED


def heatmap_table(
    heatmap: dict[str, Any],
    scale: dict[str, Any] | None = None,
    *,
    sort: str = "name",
    order: str = "pacing",
    unit: int | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """The heatmap as the page shows it, sorted and filtered: the header, each student's row (name,
    the cells' markup, the mastered count) and the class's mastery per competency. ``header``, each
    row's ``texts`` and ``footer`` are the words on the page, and the CSV export writes exactly them.

    The cells (students x competencies, 6,000 in a class of 40 over 150 competencies) are rendered
    here, not by the template engine: each distinct (competency, state, level, score) once, then
    joined per row (``cells_html``); ``head_html`` and ``foot_html`` likewise."""
    scale = scale or {"levels": [], "has_colors": False, "targets": {}}
    today = today or timezone.localdate()
    scale_classes = (
        {level["points"]: f"hm-lv-{level['id']}" for level in scale["levels"]} if scale["has_colors"] else {}
    )
    pacing = _pacing(heatmap, scale["targets"], today)
    expected_id = pacing["expected"]["id"] if pacing["expected"] else None
    columns = [
        (index, competency)
        for index, competency in enumerate(heatmap["competencies"])
        if unit is None or competency["unit_id"] == unit
    ]
    students = heatmap["students"]
    keys = _cell_keys(heatmap)
    is_mastered = str(State.MASTERED)  # a plain str: compared with every cell
    mastered_by_column = {
        index: sum(1 for student_keys in keys if student_keys[index][0] == is_mastered)
        for index, _ in columns
    }
    if order in ("code", "-code"):
        columns.sort(key=lambda column: (column[1]["code"], column[0]), reverse=order == "-code")
    elif order in ("mastery", "-mastery"):
        sign = -1 if order == "-mastery" else 1
        columns.sort(key=lambda column: (sign * mastered_by_column[column[0]], column[0]))

    rendered: list[tuple[int, dict[tuple[Any, ...], tuple[str, str, bool]], dict[str, Any], bool]] = [
        (index, {}, competency, competency["id"] == expected_id) for index, competency in columns
    ]
    rows = []
    for position, (student, student_keys) in enumerate(zip(students, keys, strict=True)):
        markup: list[str] = []
        texts = [student["name"]]
        mastered = 0
        for index, cache, competency, is_expected in rendered:
            key = student_keys[index]
            cell = cache.get(key)
            if cell is None:
                cell = cache[key] = _render_cell(key, competency, is_expected, scale_classes)
            markup.append(cell[0])
            texts.append(cell[1])
            mastered += cell[2]
        mastered_text = f"{mastered} of {len(columns)}"
        texts.append(mastered_text)
        rows.append(
            {
                "id": student["id"],
                "name": student["name"],
                "open_flags": student["open_flags"],
                "cells_html": mark_safe("".join(markup)),  # every text escaped in _render_cell
                "mastered": mastered,
                "mastered_text": mastered_text,
                "position": position,
                "texts": texts,
            }
        )
    if sort in ("mastered", "-mastered"):
        sign = -1 if sort == "-mastered" else 1
        rows.sort(key=lambda row: (sign * row["mastered"], row["position"]))
    elif sort == "-name":
        rows.reverse()

    heads = []
    for index, competency in columns:
        is_expected = competency["id"] == expected_id
        heads.append(
            {
                "id": competency["id"],
                "code": competency["code"],
                "statement": competency["statement"],
                "is_expected": is_expected,
                "text": f"{competency['code']} ({EXPECTED_TEXT})" if is_expected else competency["code"],
                "percent_text": _percent_text(mastered_by_column[index], len(students)),
            }
        )
    badge = f' <span class="hm-pace-badge hm-pace-mark">{EXPECTED_TEXT}</span>'
    head_html = mark_safe(  # every text escaped here
        "".join(
            f'<th scope="col" class="hm-code{" hm-pace-col" if head["is_expected"] else ""}" '
            f'data-competency="{head["id"]}"><span class="hm-head" title="{escape(head["statement"])}">'
            f"{escape(head['code'])}</span>{badge if head['is_expected'] else ''}</th>"
            for head in heads
        )
    )
    foot_html = mark_safe(  # every text escaped here
        "".join(
            f'<td class="hm-percent{" hm-pace-col" if head["is_expected"] else ""}">'
            f'<span class="hm-foot">{escape(head["percent_text"])}</span></td>'
            for head in heads
        )
    )
    return {
        "codes": [head["code"] for head in heads],
        "columns": heads,
        "head_html": head_html,
        "foot_html": foot_html,
        "header": ["Student", *(head["text"] for head in heads), "Mastered"],
        "rows": rows,
        "footer": ["Class mastered", *(head["percent_text"] for head in heads), ""],
        "pacing": pacing,
        "levels": scale["levels"],
        "has_colors": scale["has_colors"],
    }


# --- teacher pages --------------------------------------------------------------------------------


@teacher_page
@require_GET
def teacher_home(request: HttpRequest) -> HttpResponse:
    """The teacher's sections with their open flags and rubric answers to grade, and the flags open
    now: the ``FLAG_PAGE`` newest with a link to all of them (``?flags=all``; a teacher of five
    sections can have hundreds open, and every one counts in its section's badge). Six queries."""
    sections = list(dashboard_selectors.section_list_for_teacher(user=request.user))
    open_flags = dashboard_selectors.queue_flags(
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
    show_all = request.GET.get("flags") == "all"
    shown = [
        {
            "pk": flag.pk,
            "kind_label": FLAG_KIND_LABELS.get(flag.kind, flag.kind),
            "student_id": flag.student_id,
            "student_name": flag.student_name,
            "competency_code": flag.competency_code,
            "reason": flag.reason,
            "suggestion": flag.suggestion,
            # the student's page lives under a section: the first of the teacher's the student is in
            "section_id": min(sections_of[flag.student_id]) if sections_of.get(flag.student_id) else None,
        }
        for flag in (open_flags if show_all else open_flags[:FLAG_PAGE])
    ]
    to_grade = grading_selectors.pending_counts_for_teacher(user=request.user)
    for section in sections:
        section.open_flag_count = counts.get(section.pk, 0)
        section.to_grade_count = to_grade.get(section.pk, 0)
    return render(
        request,
        "progress/teacher_home.html",
        {
            "sections": sections,
            "open_flags": shown,
            "open_flags_total": len(open_flags),
            "today": timezone.localdate(),
        },
    )


def _heatmap_for_request(
    request: HttpRequest, section: Section, *, with_queue: bool = False
) -> dict[str, Any] | HttpResponse:
    """The sorted, filtered heatmap table the GET parameters ask for (a 400 naming the parameter
    when one is not valid), read with ``dashboard_selectors.section_board``: with the flag queue and
    the groups when ``with_queue``. The section comes from ``access_section(with_levels=True)``, so
    the scale's levels are read already: five queries with the queue (with a pacing guide or not),
    four without it."""
    board = dashboard_selectors.section_board(
        section=section, with_queue=with_queue, levels=section.scale_levels
    )
    heatmap = board["heatmap"]
    form = HeatmapQueryForm(request.GET or None, units=heatmap["units"])
    if request.GET and not form.is_valid():
        return HttpResponseBadRequest(
            f"The heatmap cannot be shown this way: {form.error_text()}", content_type="text/plain"
        )
    query = form.cleaned_data if request.GET else {"sort": "name", "order": "pacing", "unit": None}
    table = heatmap_table(
        heatmap, board["scale"], sort=query["sort"], order=query["order"], unit=query["unit"]
    )
    unit = next((each for each in heatmap["units"] if each["id"] == query["unit"]), None)
    names = {student["id"]: student["name"] for student in heatmap["students"]}
    return {
        "table": table,
        "form": form,
        "query": query,
        "unit": unit,
        "flags": board.get("flags", []),
        "groups": [
            {
                "group": group,
                "names": [names.get(student_id, str(student_id)) for student_id in group.students],
            }
            for group in board.get("groups", [])
        ],
    }


def heatmap_body_html(table: dict[str, Any], section: Section) -> str:
    """The heatmap's rows: each student's name (a link to their page, with their open flags), the
    cells (``heatmap_table``) and the mastered count, escaped, as the template wrote them."""
    link = reverse("progress:student", args=[section.pk, 0])
    prefix, suffix = link[: link.rindex("/0/")], link[link.rindex("/0/") + 3 :]
    out = []
    for row in table["rows"]:
        flags = row["open_flags"]
        badge = (
            f' <span class="badge text-bg-warning">{flags} flag{"" if flags == 1 else "s"}</span>'
            if flags
            else ""
        )
        out.append(
            f'\n          <tr data-student="{row["id"]}">\n'
            f'            <th scope="row" class="hm-student"><a href="{prefix}/{row["id"]}/{suffix}" '
            f'class="hm-name">{escape(row["name"])}</a>{badge}</th>\n'
            f"            {row['cells_html']}\n"
            f'            <td class="hm-count"><span class="hm-text">{escape(row["mastered_text"])}</span></td>\n'
            "          </tr>\n        "
        )
    return mark_safe("".join(out))  # every text escaped above


def groups_html(groups: list[dict[str, Any]]) -> str:
    """The suggested groups' items, as the template wrote them: a class of 40 can have dozens of
    groups of a dozen names each, and the template's ``join`` escapes every name through Django's
    lazy-string machinery. Every text is escaped."""
    out = []
    for entry in groups:
        group = entry["group"]
        stuck = group.kind == "stuck"
        out.append(
            f'\n          <li class="mb-3" data-competency="{group.competency_id}">\n'
            f'            <span class="badge {"text-bg-warning" if stuck else "text-bg-info"}">'
            f"{'Stuck' if stuck else 'Ready'}</span>\n"
            f"            <strong>{escape(group.code)}</strong>: {', '.join(map(escape, entry['names']))}\n"
            f'            <span class="d-block small">{escape(group.reason)}</span>\n'
            "          </li>\n          "
        )
    return mark_safe("".join(out))  # every text escaped above


def flag_rows_html(
    flags: list[QueueFlag] | list[InterventionFlag],
    *,
    next_url: str,
    tomorrow: date,
    csrf_token: str,
    error: str | None = None,
) -> str:
    """The flag queue's rows: exactly what ``progress/_flag_row.html`` renders for each flag (the htmx
    actions answer with that template; a test holds the two equal), written here because the queue
    of a class of 40 can hold hundreds of flags and the template engine takes about a millisecond for
    each. Every text is escaped."""
    acknowledge_url, snooze_url, resolve_url = (
        reverse("progress:flag-action", args=[0, action]) for action in FLAG_ACTIONS
    )
    csrf = format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', csrf_token)
    hidden = format_html('{}<input type="hidden" name="next" value="{}">', csrf, next_url)
    error_html = (
        format_html('<p class="alert alert-danger py-1 mb-2" role="alert">{}</p>', error) if error else ""
    )
    minimum = date_filter(tomorrow, "Y-m-d")
    out: list[str] = []
    for flag in flags:
        if isinstance(flag, InterventionFlag):
            flag = QueueFlag.of(flag)
        pk = flag.pk
        status = flag.status
        student = escape(flag.student_name)
        status_text = escape(FLAG_STATUS_LABELS.get(status, status))
        until = (
            f" until {escape(date_filter(flag.snoozed_until, 'j M Y'))}"
            if status == "snoozed" and flag.snoozed_until
            else ""
        )
        competency = f" · {escape(flag.competency_code)}" if flag.competency_code is not None else ""
        note = f": {escape(flag.resolution_note)}" if flag.resolution_note else ""
        out.append(
            f'<li class="list-group-item flag-row flag-{escape(status)}" id="flag-{pk}" data-flag="{pk}" '
            f'data-status="{escape(status)}">\n'
            '  <div class="d-flex flex-wrap justify-content-between gap-2">\n'
            "    <div>\n"
            f'      <span class="badge text-bg-secondary">{escape(FLAG_KIND_LABELS.get(flag.kind, flag.kind))}</span>\n'
            f"      <strong>{student}</strong>{competency}\n"
            "    </div>\n"
            f'    <span class="status flag-status">Status: {status_text}{until}</span>\n'
            "  </div>\n"
            f'  <p class="mb-1"><span class="fw-semibold">Why:</span> {escape(flag.reason)}</p>\n'
            f'  <p class="mb-2"><span class="fw-semibold">Next step:</span> {escape(flag.suggestion)}</p>\n'
            f"  {error_html}\n"
        )
        if status == "resolved":
            by = f" by {escape(flag.resolved_by_name)}" if flag.resolved_by_name is not None else ""
            out.append(f'  \n  <p class="mb-0 small" role="status">Resolved{by}{note}</p>\n  \n</li>\n')
            continue
        acted = (
            f'<p class="mb-2 small">{status_text} by {escape(flag.resolved_by_name)}{note}</p>'
            if flag.resolved_by_name is not None and status != "open"
            else ""
        )
        out.append(
            f'  \n  {acted}\n  <div class="d-flex flex-wrap gap-3 align-items-end flag-actions">\n    '
        )
        if status != "acknowledged":
            url = acknowledge_url.replace("/0/", f"/{pk}/", 1)
            out.append(
                f'\n    <form method="post" action="{url}" hx-post="{url}" hx-target="#flag-{pk}" '
                'hx-swap="outerHTML">\n'
                f"      {hidden}\n"
                '      <button type="submit" class="btn btn-sm btn-outline-primary">Acknowledge<span '
                f'class="visually-hidden"> flag for {student}</span></button>\n'
                "    </form>\n    "
            )
        url = snooze_url.replace("/0/", f"/{pk}/", 1)
        resolve = resolve_url.replace("/0/", f"/{pk}/", 1)
        out.append(
            f'\n    <form method="post" action="{url}" hx-post="{url}" hx-target="#flag-{pk}" '
            'hx-swap="outerHTML" class="d-flex gap-2 align-items-end">\n'
            f"      {hidden}\n"
            "      <div>\n"
            f'        <label class="form-label small mb-0" for="until-{pk}">Snooze until</label>\n'
            f'        <input class="form-control form-control-sm" type="date" id="until-{pk}" name="until" '
            f'min="{minimum}" required>\n'
            "      </div>\n"
            '      <button type="submit" class="btn btn-sm btn-outline-secondary">Snooze</button>\n'
            "    </form>\n"
            f'    <form method="post" action="{resolve}" hx-post="{resolve}" hx-target="#flag-{pk}" '
            'hx-swap="outerHTML" class="d-flex gap-2 align-items-end">\n'
            f"      {hidden}\n"
            "      <div>\n"
            f'        <label class="form-label small mb-0" for="note-{pk}">Note</label>\n'
            f'        <input class="form-control form-control-sm" type="text" id="note-{pk}" name="note" '
            'maxlength="5000">\n'
            "      </div>\n"
            '      <button type="submit" class="btn btn-sm btn-success">Resolve</button>\n'
            "    </form>\n"
            "  </div>\n"
            "  \n"
            "</li>\n"
        )
    return mark_safe("".join(out))  # every text escaped above


@teacher_page
@require_GET
def section_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Heatmap, flag queue and suggested groups of one section. Eight queries whatever the class size:
    session, user, the section with its pacing guide, answers to grade and scale levels, then
    ``section_board``'s five (competencies with their target dates, students with their mastery
    rows, flags, and ``progress.grid.blank_states``'s two for the cells without a stored row).

    The queue shows the ``FLAG_PAGE`` newest flags that are not resolved, with the count of all of
    them and a link to the whole queue (``?flags=all``); the badges and groups count every flag."""
    section = dashboard_selectors.access_section(
        user=request.user, section_id=pk, with_to_grade=True, with_levels=True
    )
    page = _heatmap_for_request(request, section, with_queue=True)
    if isinstance(page, HttpResponse):
        return page
    # The queue lists the FLAG_PAGE newest flags, all of them with ?flags=all; the heatmap's own query
    # (the CSV link, Reset) leaves that parameter out.
    heatmap_query = request.GET.copy()
    show_all = heatmap_query.pop("flags", None) == ["all"]
    flags = page["flags"] if show_all else page["flags"][:FLAG_PAGE]
    query_string = heatmap_query.urlencode()
    heatmap_query["flags"] = "all"
    next_url = request.get_full_path()
    return render(
        request,
        "progress/section_detail.html",
        {
            "section": section,
            **page,
            "to_grade_count": section.to_grade_count,
            "legend": [(abbr, STATE_LABELS[state]) for state, abbr in STATE_ABBREVIATIONS.items()],
            "today": timezone.localdate(),
            "body_html": heatmap_body_html(page["table"], section),
            "groups_html": groups_html(page["groups"]),
            "flags_html": flag_rows_html(
                flags, next_url=next_url, tomorrow=_tomorrow(), csrf_token=get_token(request)
            ),
            "flags_shown": len(flags),
            "flags_total": len(page["flags"]),
            "all_flags_url": f"?{heatmap_query.urlencode()}#flag-queue",
            "query_string": f"?{query_string}" if query_string else "",
        },
    )


@teacher_page
@require_GET
def section_heatmap_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """Exactly the table the section page shows with the same sort and filter: header, one row per
    student, the class's mastery per competency."""
    section = dashboard_selectors.access_section(user=request.user, section_id=pk, with_levels=True)
    heatmap = _heatmap_for_request(request, section)
    if isinstance(heatmap, HttpResponse):
        return heatmap
    table = heatmap["table"]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="section-{section.pk}-heatmap.csv"'
    writer = csv.writer(response)
    writer.writerow(table["header"])
    writer.writerows(row["texts"] for row in table["rows"])
    writer.writerow(table["footer"])
    return response


HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _relative_luminance(color: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (int(color[index : index + 2], 16) for index in (1, 3, 5))
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def text_color_for(background: str) -> str:
    """Black or white, whichever contrasts more with the background (so at least 4.5:1 where any can)."""
    luminance = _relative_luminance(background)
    on_black = (luminance + 0.05) / 0.05
    on_white = 1.05 / (luminance + 0.05)
    return "#000000" if on_black >= on_white else "#ffffff"


@teacher_page
@require_GET
def section_scale_css(request: HttpRequest, pk: int) -> HttpResponse:
    """The section's mastery scale colours as CSS classes (``hm-lv-<level id>``): a stylesheet, because
    the strict CSP forbids style attributes. Each colour comes with the text colour that contrasts most."""
    section = dashboard_selectors.access_section(user=request.user, section_id=pk)
    scale = dashboard_selectors.section_scale_and_pacing(section=section)
    lines = ["/* The mastery scale's colours for this section's heatmap. */"]
    for level in scale["levels"]:
        color = level["color"]
        if not HEX_COLOR.match(color):
            continue
        text = text_color_for(color)
        lines.append(
            f".hm-lv-{level['id']} {{ --bs-table-bg: {color}; --bs-table-color: {text}; "
            f"background-color: {color}; color: {text}; }}"
        )
    response = HttpResponse("\n".join(lines) + "\n", content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response


# --- one student, for the teacher -------------------------------------------------------------------


def _override_choices(detail: dict[str, Any]) -> list[tuple[int, str]]:
    """The same choices as ``override_competency_choices``, from the page's data (no query)."""
    return sorted(
        (
            (
                entry["competency"].pk,
                f"{entry['competency'].code} {entry['competency'].statement}".strip()[:120],
            )
            for entry in detail["competencies"]
        ),
        key=lambda choice: (choice[1], choice[0]),
    )


def _student_page(
    request: HttpRequest, section: Section, student: User, form: OverrideForm | None = None, status: int = 200
) -> HttpResponse:
    detail = dashboard_selectors.student_detail(section=section, student=student)
    for entry in detail["competencies"]:
        timeline = entry["timeline"]
        if timeline is not None:
            competency = entry["competency"]
            entry["chart"] = mark_safe(  # charts.py escapes every text it writes
                charts.mastery_timeline(
                    chart_id=f"timeline-{competency.pk}",
                    title=f"{competency.code}: mastery over time",
                    **timeline,
                )
            )
        entry["state_label"] = STATE_LABELS.get(entry["state"], entry["state"])
    if form is None:
        initial = {}
        if request.GET.get("competency", "").isdigit():
            initial["competency"] = int(request.GET["competency"])
        form = OverrideForm(competencies=_override_choices(detail), initial=initial)
    name = student.get_full_name() or student.username
    return render(
        request,
        "progress/teacher_student.html",
        {"section": section, "student": student, "student_name": name, "form": form, **detail},
        status=status,
    )


@teacher_page
@require_GET
def student_detail(request: HttpRequest, pk: int, student_pk: int) -> HttpResponse:
    """One student of the section: mastery per competency with its timeline and calculation, the
    attempts with their forms, the flags, and the override form. A constant number of queries."""
    section = dashboard_selectors.access_section(user=request.user, section_id=pk)
    student = dashboard_selectors.access_section_student(section=section, student_id=student_pk)
    return _student_page(request, section, student)


@teacher_page
@require_POST
def student_override(request: HttpRequest, pk: int, student_pk: int) -> HttpResponse:
    """Mark a competency mastered, or unlock it, for the student, with the required note. A refused
    decision answers 400 with the page and the form's errors; nothing is written."""
    section = dashboard_selectors.access_section(user=request.user, section_id=pk)
    student = dashboard_selectors.access_section_student(section=section, student_id=student_pk)
    choices = dashboard_selectors.override_competency_choices(section=section, student=student)
    form = OverrideForm(request.POST, competencies=choices)
    if not form.is_valid():
        return _student_page(request, section, student, form=form, status=400)
    competency = dashboard_selectors.access_override_competency(
        section=section, student=student, competency_id=form.cleaned_data["competency"]
    )
    try:
        progress_services.mastery_override(
            student=student,
            competency=competency,
            state=form.cleaned_data["action"],
            author=request.user,
            note=form.cleaned_data["note"],
        )
    except ValidationError as exc:
        form.add_error(None, " ".join(exc.messages))
        return _student_page(request, section, student, form=form, status=400)
    action = "marked mastered" if form.cleaned_data["action"] == "mastered" else "unlocked"
    messages.success(
        request, f"{competency.code} {action} for {student.get_full_name() or student.username}."
    )
    return redirect(
        reverse("progress:student", args=[section.pk, student.pk]) + f"#competency-{competency.pk}"
    )


FLAG_ACTIONS = ("acknowledge", "snooze", "resolve")
#: Flags a page lists before its "show all" link: the newest first, and the count of all of them.
FLAG_PAGE = 50


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
