"""``manage.py recompute_district``: every student's mastery of every competency (``progress.district``)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from progress.district import district_recompute


class Command(BaseCommand):
    help = "Recompute and store every student's mastery of every competency from all evidence (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--framework", type=int, action="append", dest="framework_ids", help="Only this framework's id."
        )

    def handle(self, *args, framework_ids=None, **options):
        if connection.vendor != "postgresql":
            raise CommandError("recompute_district needs PostgreSQL (COPY); use the per-student recompute.")
        result = district_recompute(framework_ids=framework_ids, progress=self.stdout.write)
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.students:,} students, {result.rows:,} mastery rows computed from "
                f"{result.evidence:,} evidence rows; {result.written:,} written in {result.seconds:.1f} s."
            )
        )
