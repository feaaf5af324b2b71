"""Forms of the roster admin: the OneRoster upload and the confirmation that applies it."""

from __future__ import annotations

from django import forms
from django.conf import settings


class OneRosterUploadForm(forms.Form):
    """Step 1: a OneRoster 1.1 CSV package as one zip file."""

    package = forms.FileField(
        label="OneRoster zip",
        help_text="A zip of manifest.csv, orgs.csv, academicSessions.csv, courses.csv, classes.csv, users.csv "
        "and enrollments.csv (OneRoster 1.1 CSV). You will see what it would change before anything is written.",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )

    def clean_package(self):
        package = self.cleaned_data["package"]
        if not package.name.lower().endswith(".zip"):
            raise forms.ValidationError("Upload the package as a .zip file.")
        if package.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise forms.ValidationError(
                f"The file is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)} MB."
            )
        return package


class OneRosterApplyForm(forms.Form):
    """Step 2: apply the package previewed; the token names the upload kept in this session."""

    token = forms.RegexField(regex=r"^[A-Za-z0-9_-]{20,64}$", widget=forms.HiddenInput)
