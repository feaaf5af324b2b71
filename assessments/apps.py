from django.apps import AppConfig
from django.db.models.signals import post_save


class AssessmentsConfig(AppConfig):
    name = "assessments"
    verbose_name = "Assessments"

    def ready(self) -> None:
        # Celery autodiscovery imports only ``assessments.tasks``; the nightly statistics task lives
        # in its own module and registers here.
        from assessments import tasks_statistics  # noqa: F401
        from assessments.audit_receivers import rescore_job_created
        from assessments.models import RescoreJob

        post_save.connect(rescore_job_created, sender=RescoreJob, dispatch_uid="audit-rescore-job-created")
