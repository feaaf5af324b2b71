"""What assessments announce to higher layers. Receivers only schedule work with ``on_commit``."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent inside the scoring transaction when an attempt is completed (all items scored), or when a
#: completed attempt's score changes (a rubric regrade). Keyword arguments: ``attempt_id``, ``student_id``.
attempt_scored = Signal()

#: Sent by a rescoring job once per batch, inside the batch's transaction, for the completed attempts
#: whose totals the batch recomputed. One announcement per batch instead of one per attempt, because a
#: key change on a popular item touches tens of thousands of attempts. Keyword arguments:
#: ``attempt_ids`` and ``student_ids`` (lists of distinct ids). While nothing listens to it, rescoring
#: sends ``attempt_scored`` for each attempt instead, so that mastery always follows.
attempts_rescored = Signal()
