from django.apps import AppConfig


class AssessmentsConfig(AppConfig):
    name = "assessments"
    verbose_name = "Assessments"

    def ready(self) -> None:
        # Celery autodiscovery imports only ``assessments.tasks``; the nightly statistics task lives
        # in its own module and registers here.
        from assessments import tasks_statistics  # noqa: F401
