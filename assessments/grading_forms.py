"""The teacher's rubric grading form: one level of the item's rubric and feedback for the student."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crispy_forms.helper import FormHelper
from django import forms

from assessments.models import Response, RubricLevel


def level_label(level: RubricLevel) -> str:
    points = f"{level.points:f}".rstrip("0").rstrip(".") if "." in f"{level.points:f}" else f"{level.points}"
    return f"{points} point{'s' if points != '1' else ''}: {level.description}"


class GradeForm(forms.Form):
    """Grade one extended-text response: a level of the item's rubric (or points, for an item with
    no rubric) and feedback. The choices come from the prefetched levels: no query per form."""

    level = forms.TypedChoiceField(label="Rubric level", coerce=int, widget=forms.RadioSelect)
    points = forms.DecimalField(label="Points", min_value=0, decimal_places=2)
    feedback = forms.CharField(
        label="Feedback for the student",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The student sees it on their result page.",
    )

    def __init__(self, *args: Any, response: Response, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", f"response-{response.pk}")
        super().__init__(*args, **kwargs)
        self.response = response
        self.levels = {level.pk: level for level in response.item.rubric_levels.all()}  # prefetched
        if self.levels:
            self.fields["level"].choices = [(pk, level_label(level)) for pk, level in self.levels.items()]
            del self.fields["points"]
            if response.score is not None and not response.needs_grading:
                chosen = next(
                    (pk for pk, level in self.levels.items() if level.points == response.score), None
                )
                if chosen is not None:
                    self.initial.setdefault("level", chosen)
        else:
            del self.fields["level"]
            self.fields["points"].max_value = response.item.max_points
            self.fields["points"].help_text = f"Between 0 and {response.item.max_points:g}."
        if response.feedback:
            self.initial.setdefault("feedback", response.feedback)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True

    def chosen_points(self) -> Decimal:
        if self.levels:
            return self.levels[self.cleaned_data["level"]].points
        return self.cleaned_data["points"]
