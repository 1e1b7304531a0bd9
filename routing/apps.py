from django.apps import AppConfig
from django.db.models.signals import post_delete


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        from attribution.costs.panels import overview_panel_register
        from routing import policy_cache
        from routing.models import Gateway
        from routing.savings import routing_savings_panel

        # The Overview (attribution) shows this month's routing savings without importing routing.
        overview_panel_register(key="routing_savings", builder=routing_savings_panel)

        # A gateway deleted anywhere (the admin included) must stop being answered from the
        # policy cache at once: cache bookkeeping, not domain logic, hence a signal.
        post_delete.connect(
            lambda **kwargs: policy_cache.policy_cache_invalidate(),
            sender=Gateway,
            weak=False,
            dispatch_uid="routing.policy_cache.gateway_deleted",
        )
