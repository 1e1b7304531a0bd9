from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        from attribution import signals
        from attribution.costs.panels import overview_panel_register
        from governance import receivers  # connects the @receiver-decorated alert receivers
        from governance.overview_panel import open_alerts_panel

        # The Overview (attribution) shows open alerts without importing governance.
        overview_panel_register(key="alerts", builder=open_alerts_panel)

        # Every audited change of a governed attribution object becomes an AuditEvent.
        signals.audited_change.connect(
            receivers.audit_event_on_change, dispatch_uid="governance.audit_event_on_change"
        )
