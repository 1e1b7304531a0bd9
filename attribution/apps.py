from django.apps import AppConfig


class AttributionConfig(AppConfig):
    name = "attribution"
    verbose_name = "Attribution"

    def ready(self) -> None:
        from attribution.allocation import receivers  # noqa: F401 - connects the mapping-rule receiver
