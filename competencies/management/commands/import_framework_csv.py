"""Import one CSV row per competency into an existing framework (columns in the README)."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from competencies import services
from competencies.models import Framework


class Command(BaseCommand):
    help = "Import a CSV of competencies (one row each, parent by code or identifier) into a framework."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--framework", required=True, help="The framework's CASE identifier.")
        parser.add_argument("--dry-run", action="store_true", help="Check and count, write nothing.")

    def handle(self, *args, path: Path, framework: str, dry_run: bool, **options):
        try:
            target = Framework.objects.get(identifier=uuid.UUID(framework))
        except (ValueError, Framework.DoesNotExist) as error:
            raise CommandError(f"No framework has the identifier {framework!r}.") from error
        try:
            source = path.read_bytes()
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror}") from error
        try:
            report = services.framework_import_csv(
                source=source, framework=target, dry_run=dry_run, source_name=path.name
            )
        except services.CatalogImportError as error:
            raise CommandError("\n".join([f"{path.name}: nothing was imported.", *error.messages])) from error
        for warning in report.warnings:
            self.stderr.write(f"warning: {warning}")
        prefix = "Dry run, nothing written" if dry_run else "Imported"
        self.stdout.write(f"{prefix}: {path.name} into {target.title}")
        self.stdout.write(report.summary())
        self.stdout.write(
            f"total: {report.created} created, {report.updated} updated, {report.unchanged} unchanged"
        )
