from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mastery import demo


class Command(BaseCommand):
    help = "Create the demo district (sample framework, lessons, a school, two sections, ~40 students)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset", action="store_true", help="Remove the demo district and build it again."
        )

    def handle(self, *args, reset: bool = False, **options):
        if settings.IS_PRODUCTION:
            raise CommandError("seed_demo refuses to run with MASTERY_ENV=production.")
        summary = demo.demo_seed(reset=reset)
        if summary.created:
            for name, count in summary.counts.items():
                self.stdout.write(f"  {count:>4} {name}")
            self.stdout.write(self.style.SUCCESS("Demo district created."))
        else:
            self.stdout.write("The demo district exists already (use --reset to rebuild it).")
        self.stdout.write(f"Demo logins (password {demo.DEMO_PASSWORD}):")
        for username, what in summary.logins:
            self.stdout.write(f"  {username:<14} {what}")
