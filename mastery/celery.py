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
