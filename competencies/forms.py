"""Forms of the catalog's admin: parse and validate what district staff submit; services do the writing."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

from competencies import services
from competencies.models import Competency, Framework, LearningResource, Prerequisite

MAX_IMPORT_BYTES = 20 * 1024 * 1024


class CommaSeparatedListField(forms.CharField):
    """A JSON list of short codes edited as ``06, 07``: the way staff write grade levels."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, list | tuple):
            return ", ".join(str(part) for part in value)
        if isinstance(value, str) and value.startswith("["):
            try:
                return ", ".join(str(part) for part in json.loads(value))
            except ValueError:
                return value
        return value or ""

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return [str(part) for part in value]
        text = super().to_python(value)
        return [part.strip() for part in text.split(",") if part.strip()]


class CompetencyAdminForm(forms.ModelForm):
    """A competency's own fields; the parent must belong to the same framework and not be a descendant."""

    education_levels = CommaSeparatedListField(
        required=False,
        label="Education levels",
        help_text="CEDS grade codes separated by commas, e.g. <code>06, 07</code> (KG, 01 .. 12).",
    )

    class Meta:
        model = Competency
        fields = [
            "framework",
            "parent",
            "code",
            "statement",
            "abbreviated_statement",
            "position",
            "item_type",
            "education_levels",
            "list_enumeration",
            "language",
            "calculation_method",
            "calculation_parameter",
            "notes",
            "identifier",
            "child_association_identifier",
            "last_change_date_time",
        ]
        labels = {
            "list_enumeration": "List enumeration",
            "child_association_identifier": "isChildOf association identifier",
            "last_change_date_time": "Last changed (CASE)",
            "calculation_parameter": "Parameter",
        }
        help_texts = {
            "parent": "The domain or cluster this competency sits under; empty for a top-level node. "
            "It must belong to the same framework.",
            "code": "The human coding scheme, e.g. <code>7.RP.A.1</code>. Codes need not be unique.",
            "statement": "The full statement (CASE fullStatement) students and teachers read.",
            "item_type": "CASE CFItemType, e.g. Domain, Cluster, Standard, Component.",
            "identifier": "The CASE identifier. Stable across re-imports: evidence and alignments key on it.",
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        parent = cleaned.get("parent")
        framework = cleaned.get("framework") or (
            self.instance.framework if self.instance.framework_id else None
        )
        if parent is not None and framework is not None and parent.framework_id != framework.pk:
            self.add_error(
                "parent",
                f"“{parent}” belongs to the framework “{parent.framework}”; "
                f"choose a parent from “{framework}”.",
            )
        return cleaned


class FrameworkAdminForm(forms.ModelForm):
    # URL fields are left to the admin's fieldsets, which build them with assume_scheme="https".
    class Meta:
        model = Framework
        fields = [
            "title",
            "district",
            "description",
            "mastery_scale",
            "calculation_method",
            "calculation_parameter",
            "identifier",
            "creator",
            "publisher",
            "subject",
            "language",
            "version",
            "adoption_status",
            "status_start_date",
            "status_end_date",
            "last_change_date_time",
            "notes",
        ]
        labels = {
            "uri": "URI",
            "official_source_url": "Official source URL",
            "last_change_date_time": "Last changed (CASE)",
            "calculation_parameter": "Parameter",
            "subject": "Subjects",
        }
        help_texts = {
            "title": "As in the CASE CFDocument, e.g. “Grade 7 Mathematics”.",
            "district": "The district that owns the framework; empty for one shared by all districts.",
            "mastery_scale": "The rating scale teachers and students see; its mastery level decides mastery.",
            "calculation_method": "How a student's evidence on a competency becomes one mastery score.",
            "calculation_parameter": "Weighted average: w (0.01-0.99, default 0.65); decaying average: d "
            "(0.50-0.99, default 0.65); n times: n (1-10, default 5). Leave empty for the default.",
            "identifier": "The CFDocument identifier; re-importing a package with it updates this framework.",
            "subject": 'A JSON list, e.g. <code>["Mathematics"]</code>.',
        }


class LearningResourceForm(forms.ModelForm):
    # ``url`` comes from the admin's ``fields``, which build it with assume_scheme="https".
    class Meta:
        model = LearningResource
        fields = ["competency", "kind", "title", "description", "duration_minutes", "position"]
        labels = {"url": "URL", "duration_minutes": "Minutes"}
        help_texts = {
            "url": "A YouTube or Vimeo link plays embedded in the lesson; anything else opens as a link.",
            "position": "Order within the lesson.",
        }


class ServicePrerequisiteFormMixin:
    """Adds the edge through ``prerequisite_add``, the one judge of cycles, while the form validates.

    The edge is written inside the admin's request transaction (rolled back if a later step fails), so
    that a refused edge becomes a form error on the page instead of a server error after validation.
    """

    created_by_service = False

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        form: forms.ModelForm = self  # type: ignore[assignment]
        if form.errors or form.instance.pk is not None:
            return
        prerequisite = form.instance.prerequisite if form.instance.prerequisite_id else None
        competency = form.instance.competency if form.instance.competency_id else None
        if prerequisite is None or competency is None:
            return
        try:
            with transaction.atomic():
                edge = services.prerequisite_add(
                    prerequisite=prerequisite, competency=competency, user=getattr(self, "user", None)
                )
        except ValidationError as error:
            form.add_error(None, error)
            return
        form.instance = edge
        self.created_by_service = True

    def save(self, commit: bool = True) -> Prerequisite:
        form: forms.ModelForm = self  # type: ignore[assignment]
        if self.created_by_service:
            form.save_m2m = lambda: None  # type: ignore[attr-defined]
            return form.instance
        return super().save(commit=commit)  # type: ignore[misc]


class PrerequisiteAdminForm(ServicePrerequisiteFormMixin, forms.ModelForm):
    class Meta:
        model = Prerequisite
        fields = ["prerequisite", "competency"]
        labels = {"prerequisite": "Prerequisite (comes first)", "competency": "Competency (comes after)"}
        help_texts = {
            "prerequisite": "Must be mastered before the competency below.",
            "competency": "Unlocks once the prerequisite is mastered. An edge that closes a cycle is refused.",
        }


class PrerequisiteInlineForm(ServicePrerequisiteFormMixin, forms.ModelForm):
    """One prerequisite of the competency being edited; an existing edge is deleted, never re-pointed."""

    class Meta:
        model = Prerequisite
        fields = ["prerequisite"]
        help_texts = {"prerequisite": "Must be mastered before this competency."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["prerequisite"].disabled = True


class MasteryLevelInlineFormSet(forms.BaseInlineFormSet):
    """A scale's levels: exactly one of them is the mastery level."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        kept = [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        if not kept:
            raise ValidationError("Add the scale's levels, one of them marked as the mastery level.")
        mastery = [form.cleaned_data.get("name") for form in kept if form.cleaned_data.get("is_mastery")]
        if len(mastery) != 1:
            names = ", ".join(f"“{name}”" for name in mastery)
            raise ValidationError(
                "Mark exactly one level as the mastery level; "
                + (f"{len(mastery)} are marked: {names}." if mastery else "none is marked.")
            )


class PacingTargetInlineFormSet(forms.BaseInlineFormSet):
    """A pacing guide's targets: each competency once, and from the guide's framework."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        framework_id = self.instance.framework_id
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE", False):
                continue
            competency = form.cleaned_data.get("competency")
            if competency is not None and framework_id and competency.framework_id != framework_id:
                form.add_error(
                    "competency",
                    f"“{competency}” is not in the guide's framework “{self.instance.framework}”.",
                )


class ImportFileForm(forms.Form):
    """Step 1 of an import: the uploaded file, checked for size and encoding only (services parse it)."""

    extension = ""
    file = forms.FileField(label="File")

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        name = upload.name or ""
        if self.extension and not name.lower().endswith(self.extension):
            raise ValidationError(f"Choose a {self.extension} file; “{name}” is not one.")
        if upload.size > MAX_IMPORT_BYTES:
            raise ValidationError(
                f"The file is {upload.size // (1024 * 1024)} MB; the limit is "
                f"{MAX_IMPORT_BYTES // (1024 * 1024)} MB."
            )
        if upload.size == 0:
            raise ValidationError("The file is empty.")
        return upload


class CaseImportForm(ImportFileForm):
    extension = ".json"
    file = forms.FileField(
        label="CASE package",
        help_text='A CASE 1.0/1.1 CFPackage JSON file (bare or wrapped in <code>{"CFPackage": ...}</code>). '
        "A framework already in the catalog (same CFDocument identifier) is updated in place.",
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )


class CsvImportForm(ImportFileForm):
    extension = ".csv"
    file = forms.FileField(
        label="CSV file",
        help_text="One row per competency, UTF-8; the parent is given by code or identifier.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    framework = forms.ModelChoiceField(
        queryset=Framework.objects.order_by("title"),
        label="Target framework",
        help_text="The rows are added to (or update) this framework.",
    )


class ImportApplyForm(forms.Form):
    """Step 3 of an import: the token of the previewed upload, kept in the session."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
