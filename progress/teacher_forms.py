"""Forms of the teacher's pages: the heatmap's sort and filter (GET), and a teacher's override or
unlock with its required note (POST, rendered with crispy forms)."""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from django import forms

STUDENT_SORTS = [
    ("name", "Name, A to Z"),
    ("-name", "Name, Z to A"),
    ("-mastered", "Most mastered first"),
    ("mastered", "Fewest mastered first"),
]
COMPETENCY_ORDERS = [
    ("pacing", "Pacing guide order"),
    ("code", "Code, A to Z"),
    ("-code", "Code, Z to A"),
    ("-mastery", "Class mastery, highest first"),
    ("mastery", "Class mastery, lowest first"),
]


class HeatmapQueryForm(forms.Form):
    """How the heatmap is sorted and filtered: GET parameters, so a link (and the CSV) says it all."""

    sort = forms.ChoiceField(label="Sort students by", choices=STUDENT_SORTS, required=False)
    order = forms.ChoiceField(label="Order competencies by", choices=COMPETENCY_ORDERS, required=False)
    unit = forms.TypedChoiceField(label="Unit", coerce=int, empty_value=None, required=False)

    def __init__(self, *args: Any, units: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["unit"].choices = [
            ("", "All units"),
            *((unit["id"], f"{unit['code']} {unit['statement']}".strip()) for unit in units),
        ]
        if not units:
            self.fields["unit"].widget = forms.HiddenInput()

    def clean_sort(self) -> str:
        return self.cleaned_data.get("sort") or "name"

    def clean_order(self) -> str:
        return self.cleaned_data.get("order") or "pacing"

    def error_text(self) -> str:
        """Every error, each naming its parameter: '``sort``: Select a valid choice...'."""
        return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in self.errors.items())


OVERRIDE_ACTIONS = [
    ("mastered", "Mark as mastered (the override wins over the calculation)"),
    ("unlocked", "Unlock (ready without its prerequisites)"),
]


class OverrideForm(forms.Form):
    """A teacher's decision on one competency for one student, always with a note saying why."""

    competency = forms.TypedChoiceField(label="Competency", coerce=int)
    action = forms.ChoiceField(label="Decision", choices=OVERRIDE_ACTIONS, widget=forms.RadioSelect)
    note = forms.CharField(
        label="Note (required: why)",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept with the decision in the student's history.",
    )

    def __init__(self, *args: Any, competencies: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["competency"].choices = [("", "Choose a competency"), *competencies]
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError("Write a note saying why.")
        return note
