from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        from attribution import signals
        from governance import receivers  # connects the @receiver-decorated alert receivers

        # Every audited change of a governed attribution object becomes an AuditEvent.
        signals.audited_change.connect(
            receivers.audit_event_on_change, dispatch_uid="governance.audit_event_on_change"
        )
