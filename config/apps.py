from django.apps import AppConfig


class InferensysConfig(AppConfig):
    """Holds project-wide system checks; no models."""

    name = "config"
    label = "inferensys"
    verbose_name = "Inferensys"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the checks)
