from django.apps import AppConfig


class AttributionConfig(AppConfig):
    name = "attribution"
    verbose_name = "Attribution"

    def ready(self) -> None:
        # Receivers of attribution's own signals: mapping rules apply inside the ingest swap;
        # allocation and estimate reconciliation are enqueued once the swap commits; background
        # work that services ask for (signals.py) is enqueued by the capability's receivers, so no
        # service imports a task.
        from attribution.allocation import receivers as allocation_receivers  # noqa: F401
        from attribution.connectors import receivers as connector_receivers  # noqa: F401
        from attribution.costs import receivers as cost_receivers  # noqa: F401
        from attribution.estimates import receivers as estimate_receivers  # noqa: F401
        from attribution.ingest import receivers as ingest_receivers  # noqa: F401
        from attribution.mapping import receivers as mapping_receivers  # noqa: F401
        from attribution.usage import receivers as usage_receivers  # noqa: F401
