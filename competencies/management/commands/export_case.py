"""Write a framework as a CASE 1.1 CFPackage JSON file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from competencies import services
from competencies.models import Framework


class Command(BaseCommand):
    help = "Write the framework with this CASE identifier as a CASE 1.1 CFPackage (to stdout or --output)."

    def add_arguments(self, parser):
        parser.add_argument("identifier")
        parser.add_argument("--output", type=Path, help="File to write; default: standard output.")

    def handle(self, *args, identifier: str, output: Path | None, **options):
        try:
            framework = Framework.objects.get(identifier=uuid.UUID(identifier))
        except (ValueError, Framework.DoesNotExist) as error:
            raise CommandError(f"No framework has the identifier {identifier!r}.") from error
        try:
            package = services.framework_export_case(framework=framework)
        except services.CatalogExportError as error:
            raise CommandError("\n".join(["The export is not valid CASE 1.1:", *error.messages])) from error
        text = json.dumps(package, indent=2, ensure_ascii=False) + "\n"
        if output is None:
            self.stdout.write(text, ending="")
            return
        output.write_text(text, encoding="utf-8")
        self.stderr.write(
            f"Wrote {framework.title}: {len(package['CFItems'])} items, "
            f"{len(package['CFAssociations'])} associations to {output}"
        )
