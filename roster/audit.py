"""Write the append-only audit log (``roster.models.AuditEvent``).

Every app may call ``audit_record`` (roster is the lowest layer). Call it inside the transaction of the
change it records, so that a change rolled back leaves no audit row, and a recorded row always matches
a change that happened.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from roster.models import AuditEvent, District, User


def _subject_id(target: models.Model | None) -> int | None:
    """The student an event is about: the target itself, or the target's ``student``."""
    if target is None:
        return None
    if isinstance(target, User):
        return target.pk if target.role == User.Role.STUDENT else None
    student_id = getattr(target, "student_id", None)
    return int(student_id) if student_id is not None else None


def _target_repr(target: models.Model) -> str:
    """People by id only: a name in the log would outlive a student's request to be forgotten."""
    if isinstance(target, User):
        return f"user #{target.pk}"
    if getattr(target, "student_id", None) is not None:
        return f"{target._meta.verbose_name} #{target.pk} (student #{target.student_id})"
    return str(target)[:255]


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str = "",
    district: District | int | None = None,
    subject_id: int | None = None,
) -> AuditEvent:
    """Append one event: who (``actor``, None for the system), what (``action``, an
    ``AuditEvent.Action``), on which object (``target``), with the state ``before`` and ``after``.

    ``district`` defaults to the actor's; ``subject_id`` (the student concerned) to the target's.
    """
    if action not in AuditEvent.Action.values:
        raise ValueError(f"Unknown audit action {action!r}.")
    if isinstance(district, District):
        district_id: int | None = district.pk
    elif district is not None:
        district_id = int(district)
    else:
        district_id = actor.district_id if actor is not None else None
    return AuditEvent.objects.create(
        created_at=timezone.now(),
        action=action,
        actor_id=actor.pk if actor is not None else None,
        actor_username=actor.get_username() if actor is not None else "",
        district_id=district_id,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=_target_repr(target) if target is not None else "",
        subject_id=subject_id if subject_id is not None else _subject_id(target),
        before=before,
        after=after,
        note=note,
    )
