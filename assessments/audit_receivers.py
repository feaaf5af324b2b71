"""The audit log's record of rescoring: one AuditEvent when a RescoreJob is created.

A ``post_save`` receiver (the house prefers explicit calls, but the job is created in
``assessments/rescoring.py``, which this module must not change; the receiver runs inside the same
transaction, so a job rolled back leaves no audit row). Connected from ``AssessmentsConfig.ready``.
"""

from __future__ import annotations

from typing import Any

from assessments.models import RescoreJob
from roster.audit import audit_record
from roster.models import AuditEvent


def rescore_job_created(*, sender: type[RescoreJob], instance: RescoreJob, created: bool, **_: Any) -> None:
    if not created:
        return
    actor = instance.requested_by if instance.requested_by_id is not None else None
    district_id = actor.district_id if actor is not None else None
    if district_id is None and instance.assessment_id is not None:
        district_id = instance.assessment.district_id
    audit_record(
        actor=actor,
        action=AuditEvent.Action.RESCORE_JOB_CREATED,
        target=instance,
        after={
            "assessment_id": instance.assessment_id,
            "total": instance.total,
            "changes": instance.changes,
        },
        note=instance.reason,
        district=district_id,
    )
