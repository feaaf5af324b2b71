"""Import a CASE CFPackage JSON file (bare or wrapped in {"CFPackage": ...})."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from competencies import services


class Command(BaseCommand):
    help = "Import a CASE CFPackage JSON file; a re-import of the same document updates it in place."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Check and count, write nothing.")

    def handle(self, *args, path: Path, dry_run: bool, **options):
        try:
            source = path.read_bytes()
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror}") from error
        try:
            report = services.framework_import_case(source=source, dry_run=dry_run, source_name=path.name)
        except services.CatalogImportError as error:
            raise CommandError("\n".join([f"{path.name}: nothing was imported.", *error.messages])) from error
        for warning in report.warnings:
            self.stderr.write(f"warning: {warning}")
        title = report.framework.title if report.framework else "(new framework)"
        prefix = "Dry run, nothing written" if dry_run else "Imported"
        self.stdout.write(f"{prefix}: {title}")
        self.stdout.write(report.summary())
        self.stdout.write(
            f"total: {report.created} created, {report.updated} updated, {report.unchanged} unchanged"
        )
