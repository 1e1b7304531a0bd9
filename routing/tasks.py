"""Celery tasks of routing (thin: take ids and plain values, call services)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from routing import services
from routing.adapters import PushError
from routing.choices import PublishReason


@shared_task(
    name="routing.policies_republish",
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    max_retries=3,
)
def policies_republish(
    reason: str = PublishReason.BUDGET_ACTION,
    detail: str = "",
    budget_ids: list[int] | None = None,
    **_ignored,
) -> list[int]:
    """Re-evaluate and publish every gateway. Governance enqueues it by name when a budget action is
    applied or lifted, with its own reason (e.g. "budget_actions_changed") and the budget ids."""
    if reason not in PublishReason.values:
        detail = f"{reason.replace('_', ' ')}" + (
            f" (budgets {', '.join(map(str, budget_ids))})" if budget_ids else ""
        )
        reason = PublishReason.BUDGET_ACTION
    return [d.id for d in services.policies_republish(reason=reason, reason_detail=detail)]


@shared_task(name="routing.evaluation_cycle", autoretry_for=(OperationalError,), max_retries=2)
def evaluation_cycle() -> list[int]:
    """Probe, advance restores, evaluate and publish (beat, every ROUTING_CYCLE_SECONDS)."""
    return [d.id for d in services.evaluation_cycle_run()]


@shared_task(
    bind=True,
    name="routing.policy_push",
    max_retries=6,
    acks_late=True,
    soft_time_limit=60,
    # A hard limit under the broker's visibility timeout, or a hung push would be delivered twice.
    time_limit=90,
)
def policy_push(self, document_id: int) -> str:
    """Push one document; retried with exponential backoff and jitter on a failed push (the gateway
    keeps its last good document meanwhile)."""
    try:
        attempt = services.policy_document_push(document_id=document_id, attempt=self.request.retries + 1)
    except PushError as error:
        raise self.retry(exc=error, countdown=_backoff(self.request.retries)) from error
    return "superseded" if attempt is None else attempt.outcome


@shared_task(name="routing.gateways_lag_check")
def gateways_lag_check() -> int:
    return services.gateways_lag_check()


def _backoff(retries: int) -> float:
    import random

    return min(300.0, 2.0 * 2**retries) * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not security)
