"""The student's attempt pages: an assessment with its gate, taking an attempt, the result, and the
history of every submitted attempt.

Server-rendered and usable without JavaScript: the answer form is a plain POST (save, review, submit);
``static/assessments/attempt.js`` adds autosave through the API, the countdown to the server's
deadline and a confirmation dialog. No page before submission carries any part of an answer key:
items reach the templates only as stems, choice ids and texts, and the student's own answers.

Only students see these pages, and only their own attempts and their district's assessments; anyone
else gets 404, as the API does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from assessments import page_selectors, selectors, services
from assessments.forms import AttemptAnswersForm, field_name
from assessments.markdown import render_stem
from assessments.models import (
    Assessment,
    Attempt,
    AttemptItem,
    Item,
    Response,
)
from roster.models import User

# --- access ---------------------------------------------------------------------------------------


def student_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in students only; everyone else signed in gets 404 (these pages are not theirs)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.role != User.Role.STUDENT or not request.user.is_active:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _assessment_or_404(request: HttpRequest, pk: int) -> Assessment:
    try:
        return selectors.assessment_get_for_student(student=request.user, assessment_id=pk)
    except ObjectDoesNotExist:
        raise Http404 from None


def _attempt_or_404(request: HttpRequest, pk: int) -> Attempt:
    try:
        return selectors.access_attempt(user=request.user, attempt_id=pk)
    except ObjectDoesNotExist:
        raise Http404 from None


def _submit(attempt: Attempt, now: datetime) -> Attempt:
    """Submit, at the deadline when it has passed (the time the attempt actually closed)."""
    closed_at = attempt.deadline if page_selectors.attempt_is_expired(attempt, now) else now
    return services.attempt_submit(attempt=attempt, now=closed_at)


# --- the form as the student sees it -------------------------------------------------------------


@dataclass
class ItemView:
    """One item of the form as a page shows it: never with its key."""

    number: int
    item: Item
    field_name: str
    stem_html: str
    choices: list[dict[str, Any]] = field(default_factory=list)
    value: str = ""
    is_answered: bool = False
    error: str = ""
    save_url: str = ""
    # after submit only
    answer_text: str = ""
    answer_list: list[str] = field(default_factory=list)
    response: Response | None = None

    @property
    def type(self) -> str:
        return self.item.type

    @property
    def input_id(self) -> str:
        return f"answer-{self.item.pk}"

    @property
    def result_state(self) -> str:
        """After submit: full, partial, none, unanswered or pending (awaiting a teacher)."""
        response = self.response
        if response is not None and response.needs_grading:
            return "pending"
        if response is None or response.answer is None:
            return "unanswered"
        if response.score is not None and response.score >= self.item.max_points:
            return "full"
        if response.score:
            return "partial"
        return "none"


def _selected_ids(answer: Any) -> set[int]:
    if isinstance(answer, bool):
        return set()
    if isinstance(answer, int):
        return {answer}
    if isinstance(answer, list):
        return {value for value in answer if isinstance(value, int) and not isinstance(value, bool)}
    return set()


def _item_views(
    *,
    attempt: Attempt,
    form_items: list[AttemptItem],
    answers: dict[int, Any],
    errors: dict[int, str] | None = None,
) -> list[ItemView]:
    errors = errors or {}
    views = []
    for attempt_item in form_items:
        item = attempt_item.item
        answer = answers.get(item.pk)
        selected = _selected_ids(answer)
        choices = [
            {
                "id": choice.pk,
                "text": choice.text,
                "input_id": f"choice-{choice.pk}",
                "checked": choice.pk in selected,
            }
            for choice in item.choices.all()
        ]
        value = "" if answer is None or item.has_choices else str(answer)
        views.append(
            ItemView(
                number=attempt_item.position,
                item=item,
                field_name=field_name(item.pk),
                stem_html=render_stem(item.stem),
                choices=choices if item.has_choices else [],
                value=value,
                is_answered=bool(selected) if item.has_choices else bool(value.strip()),
                error=errors.get(item.pk, ""),
                save_url=reverse("attempt-response", args=[attempt.pk, item.pk]),
            )
        )
    return views


# --- the assessment -------------------------------------------------------------------------------


@student_page
@require_http_methods(["GET", "HEAD"])
def assessment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    assessment = _assessment_or_404(request, pk)
    now = timezone.now()
    gate = page_selectors.assessment_gate_for_student(assessment=assessment, student=request.user, now=now)
    competency = assessment.competency
    used = len(gate.attempts)
    context = {
        "assessment": assessment,
        "competency": competency,
        "gate": gate,
        "attempts_used": used,
        "attempts_left": None if assessment.max_attempts is None else max(assessment.max_attempts - used, 0),
        "resources": page_selectors.lesson_resources_for([competency.pk] if competency else []),
        "now": now,
    }
    return render(request, "assessments/assessment_detail.html", context)


@student_page
@require_POST
def attempt_start(request: HttpRequest, pk: int) -> HttpResponse:
    assessment = _assessment_or_404(request, pk)
    try:
        attempt = services.attempt_start(assessment=assessment, student=request.user)
    except services.AttemptRefused as refused:
        messages.warning(request, refused.reason)
        return redirect("assessments:assessment", pk=assessment.pk)
    return redirect("assessments:attempt", pk=attempt.pk)


# --- taking the attempt ---------------------------------------------------------------------------


def _save_answers(
    *, attempt: Attempt, form_items: list[AttemptItem], answers: dict[int, Any], stored: dict[int, Response]
) -> dict[int, str]:
    """Save the answers that differ from the stored ones; item id -> why one was not saved."""
    errors: dict[int, str] = {}
    for attempt_item in form_items:
        item = attempt_item.item
        answer = answers.get(item.pk)
        previous = stored.get(item.pk)
        if (previous.answer if previous else None) == answer:
            continue
        try:
            services.response_save(attempt=attempt, item=item, answer=answer)
        except ValidationError as invalid:
            errors[item.pk] = " ".join(invalid.messages)
        except services.AttemptClosed as closed:
            errors[item.pk] = closed.reason
    return errors


@student_page
@require_http_methods(["GET", "HEAD", "POST"])
def attempt_take(request: HttpRequest, pk: int) -> HttpResponse:
    attempt = _attempt_or_404(request, pk)
    if attempt.status != Attempt.Status.IN_PROGRESS:
        return redirect("assessments:result", pk=attempt.pk)
    now = timezone.now()
    form_items = selectors.attempt_form(attempt=attempt)
    stored = selectors.attempt_responses(attempt=attempt)
    if request.method == "POST":
        if page_selectors.attempt_is_expired(attempt, now):
            # Time is up: whatever reached the server before the deadline counts.
            _submit(attempt, now)
            messages.info(
                request, "Time was up, so your attempt was submitted with the answers saved in time."
            )
            return redirect("assessments:result", pk=attempt.pk)
        form = AttemptAnswersForm(request.POST, form_items=form_items)
        if form.is_valid():
            errors = _save_answers(
                attempt=attempt, form_items=form_items, answers=form.answers(), stored=stored
            )
            if not errors:
                if form.requested_action == "submit":
                    _submit(attempt, timezone.now())
                    return redirect("assessments:result", pk=attempt.pk)
                if form.requested_action == "review":
                    return redirect("assessments:attempt-submit", pk=attempt.pk)
                messages.success(request, "Your answers are saved.")
                return redirect("assessments:attempt", pk=attempt.pk)
        else:
            errors = {
                attempt_item.item_id: " ".join(form.errors[field_name(attempt_item.item_id)])
                for attempt_item in form_items
                if field_name(attempt_item.item_id) in form.errors
            }
        # Show the page again with what the student sent and why some of it was refused.
        answers = {
            attempt_item.item_id: _posted_answer(request, attempt_item.item) for attempt_item in form_items
        }
        return _render_attempt(request, attempt, form_items, answers, errors, now, status=400)
    answers = {item_id: response.answer for item_id, response in stored.items()}
    return _render_attempt(request, attempt, form_items, answers, {}, now)


def _clock(seconds: int) -> str:
    """12:05 or 1:02:05, as the countdown script shows it."""
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _posted_answer(request: HttpRequest, item: Item) -> Any:
    name = field_name(item.pk)
    if item.type == Item.Type.MULTIPLE_CHOICE:
        return [int(value) for value in request.POST.getlist(name) if value.isdigit()]
    value = request.POST.get(name, "")
    if item.type == Item.Type.SINGLE_CHOICE:
        return int(value) if value.isdigit() else None
    return value or None


def _render_attempt(
    request: HttpRequest,
    attempt: Attempt,
    form_items: list[AttemptItem],
    answers: dict[int, Any],
    errors: dict[int, str],
    now: datetime,
    status: int = 200,
) -> HttpResponse:
    items = _item_views(attempt=attempt, form_items=form_items, answers=answers, errors=errors)
    answered = sum(1 for item in items if item.is_answered)
    remaining = None
    if attempt.deadline is not None:
        # Rounded up, so that the page's zero never comes before the server's deadline.
        remaining = max(math.ceil((attempt.deadline - now).total_seconds()), 0)
    context = {
        "attempt": attempt,
        "assessment": attempt.assessment,
        "items": items,
        "answered": answered,
        "unanswered_count": len(items) - answered,
        "is_closed": page_selectors.attempt_is_expired(attempt, now),
        "remaining_seconds": remaining,
        "remaining_label": _clock(remaining) if remaining is not None else "",
        "errors": errors,
    }
    return render(request, "assessments/attempt_take.html", context, status=status)


@student_page
@require_http_methods(["GET", "HEAD", "POST"])
def attempt_submit(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation (how many items are unanswered); POST: submit, once."""
    attempt = _attempt_or_404(request, pk)
    if request.method == "POST":
        _submit(attempt, timezone.now())
        return redirect("assessments:result", pk=attempt.pk)
    if attempt.status != Attempt.Status.IN_PROGRESS:
        return redirect("assessments:result", pk=attempt.pk)
    form_items = selectors.attempt_form(attempt=attempt)
    stored = selectors.attempt_responses(attempt=attempt)
    answers = {item_id: response.answer for item_id, response in stored.items()}
    items = _item_views(attempt=attempt, form_items=form_items, answers=answers)
    unanswered = [item for item in items if not item.is_answered]
    context = {
        "attempt": attempt,
        "assessment": attempt.assessment,
        "items": items,
        "unanswered": unanswered,
        "answered": len(items) - len(unanswered),
        "is_closed": page_selectors.attempt_is_expired(attempt, timezone.now()),
    }
    return render(request, "assessments/attempt_submit.html", context)


# --- the result -----------------------------------------------------------------------------------


def _answer_display(view: ItemView, answer: Any) -> None:
    if answer is None:
        return
    item = view.item
    if item.has_choices:
        selected = _selected_ids(answer)
        view.answer_list = [choice["text"] for choice in view.choices if choice["id"] in selected]
    else:
        view.answer_text = str(answer)


@student_page
@require_http_methods(["GET", "HEAD"])
def attempt_result(request: HttpRequest, pk: int) -> HttpResponse:
    attempt = _attempt_or_404(request, pk)
    now = timezone.now()
    if attempt.status == Attempt.Status.IN_PROGRESS:
        return redirect("assessments:attempt", pk=attempt.pk)
    form_items = selectors.attempt_form(attempt=attempt)
    stored = selectors.attempt_responses(attempt=attempt)
    answers = {item_id: response.answer for item_id, response in stored.items()}
    items = _item_views(attempt=attempt, form_items=form_items, answers=answers)
    for view in items:
        view.response = stored.get(view.item.pk)
        _answer_display(view, answers.get(view.item.pk))
    pending = [view for view in items if view.response is not None and view.response.needs_grading]
    auto_scored = sum(
        (view.response.score for view in items if view.response and view.response.score is not None),
        Decimal(0),
    )
    pending_points = sum((view.item.max_points for view in pending), Decimal(0))
    rows = page_selectors.attempt_competency_rows(attempt)
    assessment = attempt.assessment
    gate = page_selectors.assessment_gate_for_student(assessment=assessment, student=request.user, now=now)
    context = {
        "attempt": attempt,
        "assessment": assessment,
        "items": items,
        "pending": pending,
        "auto_scored": auto_scored,
        "pending_points": pending_points,
        "competency_rows": rows,
        "is_completed": attempt.status == Attempt.Status.COMPLETED,
        "percent": (
            round(attempt.score / attempt.max_score * 100)
            if attempt.score is not None and attempt.max_score
            else None
        ),
        "gate": gate,
        "is_latest": bool(gate.attempts) and gate.attempts[0].pk == attempt.pk,
        **page_selectors.attempt_next_steps(attempt=attempt, student=request.user, rows=rows),
    }
    return render(request, "assessments/attempt_result.html", context)


# --- the results history --------------------------------------------------------------------------


@student_page
@require_http_methods(["GET", "HEAD"])
def results(request: HttpRequest) -> HttpResponse:
    """Every submitted attempt of mine, newest first, with what it did for each competency."""
    attempts = page_selectors.attempt_history_for_student(student=request.user)
    return render(request, "assessments/results.html", {"attempts": attempts})
