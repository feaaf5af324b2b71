"""A key change while the broker is down: the change commits, the job waits pending, and the
reconciler publishes it again once the job is older than the grace period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from assessments import rescoring, tasks
from assessments.models import RescoreJob
from tests.assessments.test_rescoring import _world_with_responses

pytestmark = pytest.mark.django_db(transaction=True)


class BrokerDown(Exception):
    pass


def test_a_job_whose_publish_failed_stays_pending_and_is_requeued(monkeypatch, caplog):
    published: list[int] = []

    def refuse(job_id):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6391. Connection refused.")

    monkeypatch.setattr(tasks.rescore_job_run, "delay", refuse)
    _item, job = _world_with_responses(3)

    job.refresh_from_db()
    assert job.status == RescoreJob.Status.PENDING
    assert f"rescore job {job.pk} not queued (BrokerDown" in caplog.text

    monkeypatch.setattr(tasks.rescore_job_run, "delay", published.append)
    assert rescoring.rescore_jobs_requeue_stale() == []  # still within the grace period
    RescoreJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    assert rescoring.rescore_jobs_requeue_stale() == [job.pk]
    assert published == [job.pk]

    RescoreJob.objects.filter(pk=job.pk).update(status=RescoreJob.Status.COMPLETED)
    assert rescoring.rescore_jobs_requeue_stale() == []
    assert published == [job.pk]
