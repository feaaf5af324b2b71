"""The student's pages: the path (and, from issue #5, the lesson page and results history)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from competencies.models import PacingTarget
from progress import selectors
from progress.models import CompetencyMastery
from progress.page_access import student_page
from progress.views import STATE_LABELS, _score_text
from roster.models import Enrollment

State = CompetencyMastery.State


# --- the student's path ---------------------------------------------------------------------------


@student_page
@require_GET
def student_path(request: HttpRequest) -> HttpResponse:
    """My competencies in order, what to do next first, and progress against the pacing guide."""
    path = selectors.student_path(student=request.user)
    parents = {item["parent"] for item in path if item["parent"] is not None}
    leaves = [item for item in path if item["id"] not in parents]
    today = timezone.localdate()
    due = set(
        PacingTarget.objects.filter(
            guide__section__enrollments__user=request.user,
            guide__section__enrollments__role=Enrollment.Role.STUDENT,
            guide__section__enrollments__is_active=True,
            guide__section__is_active=True,
            competency_id__in=[item["id"] for item in leaves],
            target_date__lte=today,
        ).values_list("competency_id", flat=True)
    )
    mastered = sum(1 for item in leaves if item["state"] == State.MASTERED)
    total = len(leaves)
    next_item = next(
        (item for item in leaves if item["state"] in (State.IN_PROGRESS, State.READY)),
        None,
    )
    for item in path:
        item["state_label"] = STATE_LABELS.get(item["state"], item["state"])
        item["score_text"] = _score_text(item["score"])
    return render(
        request,
        "progress/student_path.html",
        {
            "path": path,
            "next_item": next_item,
            "mastered": mastered,
            "total": total,
            "expected": len(due),
            "mastered_percent": round(100 * mastered / total) if total else 0,
            "behind": max(0, len(due) - mastered),
            "today": today,
        },
    )
