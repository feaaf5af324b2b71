from django.core.management.base import BaseCommand, CommandError

from mastery import privacy


class Command(BaseCommand):
    help = (
        "Purge the raw responses of terms that ended more than MASTERY_RESPONSE_RETENTION_YEARS years "
        "ago (attempt totals, evidence and mastery stay). The nightly task runs the same."
    )

    def add_arguments(self, parser):
        parser.add_argument("--years", type=int, default=None, help="Override the retention setting.")
        parser.add_argument("--dry-run", action="store_true", help="Count only; delete nothing.")

    def handle(self, *args, years: int | None = None, dry_run: bool = False, **options):
        try:
            result = privacy.responses_purge(years=years, dry_run=dry_run)
        except privacy.PrivacyError as error:
            raise CommandError(str(error)) from error
        verb = "Would purge" if dry_run else "Purged"
        self.stdout.write(
            f"{verb} {result.responses} responses of {result.terms} terms that ended before {result.cutoff}."
        )
