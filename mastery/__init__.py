"""Project wiring: settings, URLs, the Celery app and base templates. No models live here."""

from mastery.celery import app as celery_app

__all__ = ["celery_app"]
