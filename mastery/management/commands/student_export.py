from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mastery import privacy


class Command(BaseCommand):
    help = "Export everything held about one student, as JSON or as a zip of CSV files (PRIVACY.md)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--format", choices=["json", "csv"], default="json", dest="export_format")
        parser.add_argument("--out", required=True, help="The file to write (.json, or .zip for csv).")

    def handle(self, *args, username: str, export_format: str, out: str, **options):
        try:
            data = privacy.student_export(student=username, actor=None, export_format=export_format)
        except privacy.PrivacyError as error:
            raise CommandError(str(error)) from error
        Path(out).write_bytes(data)
        self.stdout.write(self.style.SUCCESS(f"Wrote {len(data)} bytes about {username} to {out}."))
