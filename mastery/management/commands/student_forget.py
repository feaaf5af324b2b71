from django.core.management.base import BaseCommand, CommandError

from mastery import privacy


class Command(BaseCommand):
    help = (
        "Forget one student on request: anonymise (keep the learning records, nothing that identifies "
        "the person), or with --delete remove the account and every row about it (PRIVACY.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--delete", action="store_true", help="Delete instead of anonymising.")

    def handle(self, *args, username: str, delete: bool = False, **options):
        try:
            student_id = privacy.student_forget(student=username, actor=None, delete=delete)
        except privacy.PrivacyError as error:
            raise CommandError(str(error)) from error
        done = "Deleted" if delete else "Anonymised"
        self.stdout.write(self.style.SUCCESS(f"{done} student #{student_id} (was {username})."))
