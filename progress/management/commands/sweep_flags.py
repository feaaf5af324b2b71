"""``sweep_flags [--section ID]``: recompute mastery and intervention flags now (the nightly job)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from progress.flag_services import flags_sweep
from roster.models import Section


class Command(BaseCommand):
    help = "Recompute every active student's mastery and intervention flags now (what the nightly job does)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--section", type=int, help="Only the students of this section.")

    def handle(self, *args, section: int | None = None, **options) -> None:
        if section is not None and not Section.objects.filter(pk=section).exists():
            raise CommandError(f"No section with id {section}.")
        result = flags_sweep(section_id=section)
        self.stdout.write(
            f"students: {result.students}, masteries changed: {result.masteries_changed}, "
            f"flags opened: {result.flags_opened}, flags resolved: {result.flags_resolved}"
        )
