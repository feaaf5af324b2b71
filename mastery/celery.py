"""The Celery app. Queues: ``live`` (a student's own work), ``bulk`` (rescoring), ``nightly`` (sweeps)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mastery.settings")

app = Celery("mastery")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The beat schedule lives in code so that every deployment runs the same nightly work. Each app that
# ships a periodic task adds its entry here, routed to the ``nightly`` queue.
app.conf.beat_schedule = {}
app.conf.task_routes = {}
