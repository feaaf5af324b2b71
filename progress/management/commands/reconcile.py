"""``manage.py reconcile``: catch up the students whose stored mastery lags their scored attempts."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from progress import reconcile


class Command(BaseCommand):
    help = (
        "Recompute the mastery of every student whose stored mastery lags their scored attempts "
        "(recomputes lost while the broker or a worker was down). Beat runs it every five minutes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit", type=int, default=reconcile.RECONCILE_BATCH, help="Students per run at most."
        )
        parser.add_argument("--dry-run", action="store_true", help="Only list the students found behind.")

    def handle(self, *args: object, limit: int, dry_run: bool, **options: object) -> None:
        if limit < 1:
            self.stderr.write("--limit must be at least 1.")
            raise SystemExit(2)
        result = reconcile.progress_catch_up(limit=limit, dry_run=dry_run)
        verb = "behind" if dry_run else "caught up"
        self.stdout.write(
            f"{result.found} student(s) {verb}"
            + ("" if dry_run else f", {result.masteries_changed} mastery change(s)")
            + (f": {', '.join(map(str, result.student_ids))}" if result.student_ids else "")
        )
