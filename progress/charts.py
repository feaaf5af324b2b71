"""Server-side SVG charts for the teacher's pages: markup only, no JavaScript, no inline styles (the
strict CSP forbids them; colours come from classes in ``progress/static/progress/teacher.css``).

A mastery timeline plots one student's evidence on one competency over time: each piece of evidence
as a marker (a filled circle when it met the mastery level, a hollow one when it did not, a diamond for
a teacher's override, so shape tells what colour tells), the mastery score as the competency's method
computed it after each piece (a line), and the mastery threshold as a dashed line. The chart carries
``<title>`` and ``<desc>``, and a visually hidden table gives screen readers every point.

Pure Python (the standard library's ``html.escape``), so it is tested without a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from html import escape

WIDTH = 560
HEIGHT = 220
LEFT = 96  # room for the level names on the y axis
RIGHT = 16
TOP = 16
BOTTOM = 40


@dataclass(frozen=True)
class TimelinePoint:
    """One piece of evidence: when, its score, whether it met the mastery level, and its kind."""

    when: datetime
    score: Decimal
    is_met: bool
    label: str  # "Mastery check", "Practice", "Teacher observation", "Teacher override"
    mastery_after: Decimal | None  # the mastery score after this piece (None: no score yet)
    is_override: bool = False


@dataclass(frozen=True)
class Gridline:
    value: Decimal
    label: str


def _number(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _day(when: datetime) -> str:
    return f"{when.day} {when.strftime('%b %Y')}"


def _coordinate(value: float) -> str:
    return f"{value:.1f}"


def mastery_timeline(
    *,
    chart_id: str,
    title: str,
    points: Sequence[TimelinePoint],
    threshold: Decimal | None,
    threshold_label: str,
    y_max: Decimal,
    gridlines: Sequence[Gridline] = (),
    score_label: str = "Score",
) -> str:
    """A ``<figure>`` with the SVG and its hidden data table. ``points`` oldest first; ``y_max`` is
    the top of the scale (the highest level's points, or 1 for knowledge tracing)."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    top = float(y_max) if y_max > 0 else 1.0

    def y_of(value: Decimal) -> float:
        clamped = max(0.0, min(float(value), top))
        return TOP + plot_height - clamped / top * plot_height

    if points:
        start = points[0].when.timestamp()
        span = points[-1].when.timestamp() - start
    else:
        start, span = 0.0, 0.0

    def x_of(when: datetime) -> float:
        if span <= 0:
            return LEFT + plot_width / 2
        return LEFT + (when.timestamp() - start) / span * plot_width

    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    met = sum(1 for point in points if point.is_met and not point.is_override)
    counted = sum(1 for point in points if not point.is_override)
    latest = next(
        (point.mastery_after for point in reversed(points) if point.mastery_after is not None), None
    )
    description = (
        f"{counted} piece{'s' if counted != 1 else ''} of evidence, {met} at or above the mastery level"
    )
    if points:
        description += f", from {_day(points[0].when)} to {_day(points[-1].when)}"
    description += f". Mastery score now: {_number(latest) if latest is not None else 'none yet'}."
    if threshold is not None:
        description += f" {threshold_label}: {_number(threshold)}."

    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(description)}</desc>',
        f'<rect class="tl-frame" x="{LEFT}" y="{TOP}" width="{plot_width}" height="{plot_height}"/>',
    ]
    for line in gridlines:
        y = _coordinate(y_of(line.value))
        parts.append(f'<line class="tl-grid" x1="{LEFT}" x2="{LEFT + plot_width}" y1="{y}" y2="{y}"/>')
        parts.append(
            f'<text class="tl-axis" x="{LEFT - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(line.label)}</text>"
        )
    if threshold is not None:
        y = _coordinate(y_of(threshold))
        parts.append(
            f'<line class="tl-threshold" x1="{LEFT}" x2="{LEFT + plot_width}" y1="{y}" y2="{y}" '
            f'stroke-dasharray="6 4"/>'
        )
    if points:
        parts.append(
            f'<text class="tl-axis" x="{LEFT}" y="{HEIGHT - 12}" text-anchor="start">'
            f"{escape(_day(points[0].when))}</text>"
        )
        if span > 0:
            parts.append(
                f'<text class="tl-axis" x="{LEFT + plot_width}" y="{HEIGHT - 12}" text-anchor="end">'
                f"{escape(_day(points[-1].when))}</text>"
            )
    line_points = [
        f"{_coordinate(x_of(point.when))},{_coordinate(y_of(point.mastery_after))}"
        for point in points
        if point.mastery_after is not None
    ]
    if len(line_points) > 1:
        parts.append(f'<polyline class="tl-mastery" fill="none" points="{" ".join(line_points)}"/>')
    elif line_points:
        x, y = line_points[0].split(",")
        parts.append(f'<circle class="tl-mastery-dot" cx="{x}" cy="{y}" r="3"/>')
    for point in points:
        x, y = x_of(point.when), y_of(point.score)
        tip = f"{point.label}, {_day(point.when)}: {_number(point.score)}"
        if point.is_override:
            size = 6
            shape = (
                f'<polygon class="tl-point tl-override" points="{_coordinate(x)},{_coordinate(y - size)} '
                f"{_coordinate(x + size)},{_coordinate(y)} {_coordinate(x)},{_coordinate(y + size)} "
                f'{_coordinate(x - size)},{_coordinate(y)}">'
            )
            end = "</polygon>"
        else:
            kind = "tl-met" if point.is_met else "tl-not-met"
            shape = f'<circle class="tl-point {kind}" cx="{_coordinate(x)}" cy="{_coordinate(y)}" r="5">'
            end = "</circle>"
        parts.append(f"{shape}<title>{escape(tip)}</title>{end}")
    parts.append("</svg>")

    rows = []
    for point in points:
        after = _number(point.mastery_after) if point.mastery_after is not None else "no score yet"
        rows.append(
            "<tr>"
            f"<td>{escape(_day(point.when))}</td>"
            f"<td>{escape(point.label)}</td>"
            f"<td>{_number(point.score)}</td>"
            f"<td>{'yes' if point.is_met else 'no'}</td>"
            f"<td>{escape(after)}</td>"
            "</tr>"
        )
    table = (
        '<table class="visually-hidden">'
        f"<caption>{escape(title)}: the evidence and the mastery score after each piece</caption>"
        '<thead><tr><th scope="col">Date</th><th scope="col">Kind</th>'
        f'<th scope="col">{escape(score_label)}</th><th scope="col">Met the mastery level</th>'
        '<th scope="col">Mastery score after</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return f'<figure class="timeline-figure mb-2" id="{chart_id}">{"".join(parts)}{table}</figure>'
