"""The teacher's grading queue: extended-text answers waiting for a rubric grade, per section, and
the grading of one of them with a rubric level and feedback for the student.

Grading goes through ``services.response_grade``: when the attempt has nothing left to grade it is
scored and ``attempt_scored`` announces it, so the student's mastery is recomputed. A teacher sees only
the students of their own sections; anyone else gets 404, the same as for a missing object.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from assessments import grading_selectors, services
from assessments.grading_forms import GradeForm
from assessments.markdown import render_stem
from roster.models import User


def _teacher(request: HttpRequest) -> None:
    if request.user.role != User.Role.TEACHER or not request.user.is_active:
        raise Http404


def _student_name(user: User) -> str:
    return user.get_full_name() or user.username


@login_required
@require_GET
def grading_queue(request: HttpRequest, section_pk: int) -> HttpResponse:
    """The section's answers waiting for a rubric grade, oldest first, each with its grading form.
    Five queries whatever the class size: session, user, section, responses, rubric levels."""
    _teacher(request)
    section = grading_selectors.access_grading_section(user=request.user, section_id=section_pk)
    responses = grading_selectors.response_list_awaiting_grade(section=section)
    entries = [
        {
            "response": response,
            "form": GradeForm(response=response),
            "student_name": _student_name(response.attempt.student),
            "stem_html": render_stem(response.item.stem),
        }
        for response in responses
    ]
    return render(
        request,
        "assessments/grading/queue.html",
        {"section": section, "entries": entries},
    )


@login_required
@require_http_methods(["GET", "POST"])
def grade_response(request: HttpRequest, response_pk: int) -> HttpResponse:
    """Grade one answer (GET shows the form alone). A refused grade answers 400 with the form's
    errors and changes nothing; a grade goes back to the section's queue."""
    _teacher(request)
    response = grading_selectors.access_response_for_grading(user=request.user, response_id=response_pk)
    section_param = request.POST.get("section") or request.GET.get("section") or ""
    section_id = grading_selectors.grading_section_for_response(
        user=request.user,
        response=response,
        section_id=int(section_param) if section_param.isdigit() else None,
    )
    status = 200
    if request.method == "POST":
        form = GradeForm(request.POST, response=response)
        if form.is_valid():
            try:
                services.response_grade(
                    response=response,
                    points=form.chosen_points(),
                    grader=request.user,
                    feedback=form.cleaned_data["feedback"].strip(),
                )
            except ValidationError as exc:
                form.add_error(None, " ".join(exc.messages))
            else:
                messages.success(
                    request,
                    f"Graded {_student_name(response.attempt.student)}'s answer on "
                    f"{response.attempt.assessment.title}.",
                )
                if section_id is None:
                    return redirect("progress:teacher-home")
                return redirect(reverse("grading:queue", args=[section_id]))
        status = 400
    else:
        form = GradeForm(response=response)
    return render(
        request,
        "assessments/grading/grade.html",
        {
            "response": response,
            "form": form,
            "section_id": section_id,
            "student_name": _student_name(response.attempt.student),
            "stem_html": render_stem(response.item.stem),
        },
        status=status,
    )
