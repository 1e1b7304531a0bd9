from django.apps import AppConfig


class AttributionConfig(AppConfig):
    name = "attribution"
    verbose_name = "Attribution"

    def ready(self) -> None:
        # Receivers of attribution's own signals: mapping rules apply inside the ingest swap;
        # allocation and estimate reconciliation are enqueued once the swap commits.
        from attribution.allocation import (  # noqa: F401
            allocation_receivers,
            estimate_receivers,
            receivers,
        )
