"""``manage.py rescore (--item ID | --assessment ID) [--wait] [--reason TEXT]``.

Starts a rescoring job that re-applies the current key to every scored response of the item (or of
the items on the assessment's forms), prints its id, and with ``--wait`` follows it with a progress
bar by polling the job row, so it works whether tasks run in process or on a Celery worker.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assessments import rescoring
from assessments.models import Assessment, Item, RescoreJob

BAR_WIDTH = 30
WORKER_HINT_AFTER_SECONDS = 10.0


def progress_bar(job: RescoreJob, width: int = BAR_WIDTH) -> str:
    """``[#########.....]  60%   600/1000 rescored, 42 changed``."""
    fraction = job.done / job.total if job.total else 1.0
    filled = int(fraction * width)
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} "
        f"{job.done:>5}/{job.total} rescored, {job.changed} changed"
    )


class Command(BaseCommand):
    help = "Start a rescoring job for an item or an assessment; --wait follows it with a progress bar."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--item", type=int, help="Rescore every scored response of this item.")
        target.add_argument(
            "--assessment", type=int, help="Rescore every scored response of the items on its forms."
        )
        parser.add_argument("--wait", action="store_true", help="Follow the job to its end.")
        parser.add_argument("--reason", default="", help="Why; kept on the job.")
        parser.add_argument(
            "--interval", type=float, default=0.5, help="Seconds between progress checks (--wait)."
        )

    def handle(
        self,
        *args,
        item: int | None,
        assessment: int | None,
        wait: bool,
        reason: str,
        interval: float,
        **options,
    ) -> None:
        reason = reason or "Requested with manage.py rescore."
        if item is not None:
            found = Item.objects.filter(pk=item).first()
            if found is None:
                raise CommandError(f"Item {item} does not exist.")
            job = rescoring.rescore_job_create(items=[found], force=True, reason=reason)
        else:
            assessment_found = Assessment.objects.filter(pk=assessment).first()
            if assessment_found is None:
                raise CommandError(f"Assessment {assessment} does not exist.")
            job = rescoring.rescore_job_create(assessment=assessment_found, reason=reason)
        self.stdout.write(f"Rescoring job {job.pk} started: {job.total} responses to rescore.")
        if wait:
            self._follow(job.pk, interval=interval)

    def _follow(self, job_id: int, *, interval: float) -> None:
        is_tty = self.stdout.isatty()
        started = time.monotonic()
        hinted = False
        last = ""
        while True:
            job = RescoreJob.objects.get(pk=job_id)
            line = progress_bar(job)
            if line != last:
                # On a terminal the bar redraws in place; in a log each change is a line.
                self.stdout.write(f"\r{line}" if is_tty else line, ending="" if is_tty else "\n")
                self.stdout.flush()
                last = line
            if job.status in (RescoreJob.Status.COMPLETED, RescoreJob.Status.FAILED):
                break
            if (
                not hinted
                and job.status == RescoreJob.Status.PENDING
                and time.monotonic() - started > WORKER_HINT_AFTER_SECONDS
            ):
                self.stderr.write("\nStill pending: is a worker consuming the 'bulk' queue (make worker)?")
                hinted = True
            time.sleep(interval)
        if is_tty:
            self.stdout.write("")
        if job.status == RescoreJob.Status.FAILED:
            raise CommandError(f"Job {job.pk} failed: {job.error}")
        self.stdout.write(
            f"Job {job.pk} completed: {job.done} of {job.total} responses rescored, {job.changed} changed."
        )
