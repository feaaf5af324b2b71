"""What assessments announce to higher layers. Receivers only schedule work with ``on_commit``."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent inside the scoring transaction when an attempt is completed (all items scored), or when a
#: completed attempt's score changes (a rubric regrade). Keyword arguments: ``attempt_id``, ``student_id``.
attempt_scored = Signal()
