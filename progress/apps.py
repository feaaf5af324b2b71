from django.apps import AppConfig


class ProgressConfig(AppConfig):
    name = "progress"
    verbose_name = "Progress"

    def ready(self) -> None:
        from progress import (
            flag_tasks,  # noqa: F401  (registers the nightly sweep and the digest)
            receivers,  # noqa: F401  (connects the signal receivers)
            reconcile,  # noqa: F401  (registers the reconciler's periodic task)
        )
