"""``import_oneroster PATH [--dry-run]``: import a OneRoster 1.1 CSV folder or zip."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from roster import oneroster
from roster.services import RosterImportError, oneroster_import


class Command(BaseCommand):
    help = (
        "Import a OneRoster 1.1 CSV package (a folder or a zip): orgs, academic sessions, courses, classes, "
        "users and enrollments. Rows are matched on sourcedId; tobedeleted deactivates. Prints the counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="a folder holding manifest.csv and the CSV files, or a .zip of them")
        parser.add_argument(
            "--dry-run", action="store_true", help="check the package and print the counts; write nothing"
        )

    def handle(self, *args: object, **options: object) -> None:
        path = Path(str(options["path"]))
        try:
            report = oneroster_import(source=path, dry_run=bool(options["dry_run"]), source_name=path.name)
        except RosterImportError as error:
            lines = [f"{path.name}: nothing was imported. {oneroster.ROW_CONVENTION}"]
            lines += [f"  {message}" for message in error.messages]
            raise CommandError("\n".join(lines)) from error
        self.stdout.write(report.summary())
        if report.dry_run:
            self.stdout.write(self.style.WARNING("Dry run: nothing was written."))
        else:
            self.stdout.write(self.style.SUCCESS("Import applied."))
