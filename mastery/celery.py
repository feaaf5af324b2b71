"""The Celery app. Queues: ``live`` (a student's own work), ``bulk`` (rescoring), ``nightly`` (sweeps)."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mastery.settings")

app = Celery("mastery")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The beat schedule lives in code so that every deployment runs the same nightly work. Each app that
# ships a periodic task adds its entry here, routed to the ``nightly`` queue.
app.conf.beat_schedule = {}
app.conf.task_routes = {
    # Rescoring is bulk work: it must never queue up behind (or in front of) a student's own work.
    "assessments.tasks.rescore_*": {"queue": "bulk"},
}

# Item statistics (facility, discrimination, suspect items): nightly, after the school day's attempts.
app.conf.beat_schedule["item-statistics-nightly"] = {
    "task": "assessments.item_statistics_refresh",
    "schedule": crontab(hour=3, minute=0),
    "options": {"queue": "nightly"},
}
app.conf.task_routes["assessments.item_statistics_refresh"] = {"queue": "nightly"}

# Progress: a student's recompute runs on ``live``; the BKT fit by EM runs nightly, before the sweep.
app.conf.beat_schedule["bkt-fit-nightly"] = {
    "task": "progress.tasks.bkt_fit_all",
    "schedule": crontab(hour=1, minute=30),
    "options": {"queue": "nightly"},
}
app.conf.task_routes["progress.tasks.bkt_fit_all"] = {"queue": "nightly"}
app.conf.task_routes["progress.tasks.*"] = {"queue": "live"}
# The whole district's recompute (``recompute_district``) is bulk work.
app.conf.task_routes["progress.tasks.district_recompute"] = {"queue": "bulk"}

# Intervention flags: the nightly sweep recomputes mastery and flags for every student (after the BKT
# fit); the teacher digest emails the new flags before school.
app.conf.beat_schedule["sweep-flags-nightly"] = {
    "task": "progress.flag_tasks.sweep_flags_nightly",
    "schedule": crontab(hour=2, minute=30),
    "options": {"queue": "nightly"},
}
app.conf.beat_schedule["teacher-digest-daily"] = {
    "task": "progress.flag_tasks.teacher_digest_daily",
    "schedule": crontab(hour=6, minute=0),
    "options": {"queue": "nightly"},
}
app.conf.task_routes["progress.flag_tasks.*"] = {"queue": "nightly"}

# Publishing fails fast when the broker is down (issue #7): a student's submit commits first and its
# recompute is published after commit; a publish that cannot reach Redis gives up within about a
# second instead of kombu's default retries, and ``progress.receivers`` logs it and carries on. The
# reconciler below catches those students up once the broker is back. Redeliveries of a killed
# worker's messages rely on ``acks_late`` + ``reject_on_worker_lost`` (settings) and the visibility
# timeout; every task is idempotent, so a redelivered message changes nothing twice.
app.conf.task_publish_retry_policy = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.3,
}
app.conf.broker_transport_options = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    **(app.conf.broker_transport_options or {}),
}
# How long an unacknowledged message (its worker was killed) waits before a worker hands it out again:
# the settings' hour by default; ``CELERY_VISIBILITY_TIMEOUT`` (seconds) overrides it, e.g. for the
# fault tests, whose restarted worker takes the killed worker's message back at once.
if os.environ.get("CELERY_VISIBILITY_TIMEOUT"):
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        "visibility_timeout": int(os.environ["CELERY_VISIBILITY_TIMEOUT"]),
    }

# The reconciler: every five minutes, recompute the students whose stored mastery lags their scored
# attempts (``progress.reconcile``: data-derived, so nothing needs to remember lost messages).
app.conf.beat_schedule["progress-reconcile"] = {
    "task": "progress.reconcile.progress_reconcile",
    "schedule": crontab(minute="*/5"),
    "options": {"queue": "nightly"},
}
app.conf.task_routes["progress.reconcile.*"] = {"queue": "nightly"}

# Privacy: raw responses of terms that ended more than MASTERY_RESPONSE_RETENTION_YEARS ago are purged.
app.conf.beat_schedule["responses-purge-nightly"] = {
    "task": "mastery.tasks.responses_purge_nightly",
    "schedule": crontab(hour=4, minute=0),
    "options": {"queue": "nightly"},
}
app.conf.task_routes["mastery.tasks.responses_purge_nightly"] = {"queue": "nightly"}
