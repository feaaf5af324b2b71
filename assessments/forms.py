"""Forms of the student's attempt pages.

The answer form is built from the attempt's drawn form: one field per item, named ``item-<id>``.
It only parses what the browser sent; ``services.answer_clean`` (called by ``response_save``) stays
the one judge of what a valid answer is, so the page and the API accept exactly the same answers.
"""

from __future__ import annotations

from typing import Any

from django import forms

from assessments import services
from assessments.models import AttemptItem, Item


def field_name(item_id: int) -> str:
    return f"item-{item_id}"


class AttemptAnswersForm(forms.Form):
    """Every answer of an attempt, as a plain POST (the page works without JavaScript)."""

    ACTIONS = (("save", "Save answers"), ("review", "Review and submit"), ("submit", "Submit now"))

    action = forms.ChoiceField(choices=ACTIONS, required=False)

    def __init__(self, *args: Any, form_items: list[AttemptItem], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.form_items = form_items
        for attempt_item in form_items:
            item = attempt_item.item
            self.fields[field_name(item.pk)] = self._field_for(item)

    @staticmethod
    def _field_for(item: Item) -> forms.Field:
        if item.has_choices:
            choices = [(choice.pk, choice.text) for choice in item.choices.all()]
            if item.type == Item.Type.SINGLE_CHOICE:
                return forms.TypedChoiceField(
                    choices=choices, coerce=int, required=False, empty_value=None, widget=forms.RadioSelect
                )
            return forms.TypedMultipleChoiceField(
                choices=choices, coerce=int, required=False, widget=forms.CheckboxSelectMultiple
            )
        if item.type == Item.Type.NUMERIC:
            return forms.CharField(required=False, max_length=100)
        if item.type == Item.Type.SHORT_TEXT:
            return forms.CharField(required=False, max_length=services.SHORT_TEXT_MAX_LENGTH)
        return forms.CharField(
            required=False,
            strip=False,
            max_length=services.EXTENDED_TEXT_MAX_LENGTH,
            widget=forms.Textarea,
        )

    def answers(self) -> dict[int, Any]:
        """item id -> the answer in the API's shape; ``None`` for an item left blank."""
        answers: dict[int, Any] = {}
        for attempt_item in self.form_items:
            value = self.cleaned_data.get(field_name(attempt_item.item_id))
            if value in ("", [], None) or (isinstance(value, str) and not value.strip()):
                value = None
            answers[attempt_item.item_id] = value
        return answers

    @property
    def requested_action(self) -> str:
        return self.cleaned_data.get("action") or "save"
