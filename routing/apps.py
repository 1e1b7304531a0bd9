from django.apps import AppConfig
from django.db.models.signals import post_delete


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        from routing import policy_cache
        from routing.models import Gateway

        # A gateway deleted anywhere (the admin included) must stop being answered from the
        # policy cache at once: cache bookkeeping, not domain logic, hence a signal.
        post_delete.connect(
            lambda **kwargs: policy_cache.policy_cache_invalidate(),
            sender=Gateway,
            weak=False,
            dispatch_uid="routing.policy_cache.gateway_deleted",
        )
