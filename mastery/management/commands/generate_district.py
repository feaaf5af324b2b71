"""``manage.py generate_district``: a synthetic district for benchmarks (see ``mastery.district``)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mastery import district


class Command(BaseCommand):
    help = (
        "Write a synthetic district: by default 30,000 students, 1,200 sections, 150 competencies, "
        "3,000 items and 3,000,000 scored responses over a school year (PostgreSQL COPY)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same district (default 1).")
        parser.add_argument(
            "--scale", type=float, default=1.0, help="Multiply every count, e.g. 0.1 for a tenth (default 1)."
        )
        parser.add_argument(
            "--students", type=int, default=None, help="Number of students; the other counts in proportion."
        )
        parser.add_argument(
            "--competencies", type=int, default=district.COMPETENCIES, help="Framework size (default 150)."
        )
        parser.add_argument(
            "--replace", action="store_true", help="Delete every existing row first (refused otherwise)."
        )

    def handle(self, *args, **options):
        if settings.IS_PRODUCTION:
            raise CommandError("generate_district refuses to run with MASTERY_ENV=production.")
        if options["students"] is not None and options["students"] < 1:
            raise CommandError("--students must be at least 1.")
        try:
            size = district.Size.of(
                scale=options["scale"], students=options["students"], competencies=options["competencies"]
            )
        except ValueError as error:
            raise CommandError(f"--scale: {error}") from None
        self.stdout.write(
            f"Generating {size.students:,} students, {size.sections:,} sections, {size.competencies} "
            f"competencies, {size.items:,} items, {size.responses:,} responses (seed {options['seed']})."
        )
        try:
            counts = district.generate(
                size=size, seed=options["seed"], progress=self.stdout.write, replace=options["replace"]
            )
        except district.DistrictNotEmpty as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"District generated: {counts['responses']:,} responses."))
