"""The student's pages: the path, the lesson page with its "mark as watched" action."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from competencies.models import Competency, LearningResource, PacingTarget
from progress import selectors, services
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
        item["is_due"] = item["id"] in due and item["state"] != State.MASTERED
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


# --- one lesson -----------------------------------------------------------------------------------


def _competency_or_404(request: HttpRequest, competency_pk: int) -> Competency:
    try:
        return selectors.access_lesson_competency(student=request.user, competency_id=competency_pk)
    except Competency.DoesNotExist:
        raise Http404 from None


@student_page
@require_GET
def lesson(request: HttpRequest, competency_pk: int) -> HttpResponse:
    """The lesson of one competency on my path: watch or read it, practise, then the mastery check."""
    competency = _competency_or_404(request, competency_pk)
    context = selectors.student_lesson(student=request.user, competency=competency)
    context["state_label"] = STATE_LABELS.get(context["state"], context["state"])
    context["score_text"] = _score_text(context["score"])
    return render(request, "progress/student/lesson.html", context)


@student_page
@require_POST
def resource_watched(request: HttpRequest, competency_pk: int, resource_pk: int) -> HttpResponse:
    """Mark one lesson resource as watched (or read): in place with htmx, else back to the lesson."""
    competency = _competency_or_404(request, competency_pk)
    try:
        resource = LearningResource.objects.get(pk=resource_pk, competency=competency)
    except LearningResource.DoesNotExist:
        raise Http404 from None
    view = services.lesson_resource_viewed(student=request.user, resource=resource)
    if request.htmx:
        return render(
            request,
            "progress/student/_watched.html",
            {
                "competency": competency,
                "resource": {"id": resource.pk, "title": resource.title, "kind": resource.kind},
                "last_viewed_at": view.last_viewed_at,
                "just_marked": True,
            },
        )
    messages.success(request, f"Marked “{resource.title}” as done.")
    return redirect(reverse("learn:lesson", args=[competency.pk]) + f"#resource-{resource.pk}")
