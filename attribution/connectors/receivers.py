"""Receivers of the connectors capability. Connected from AttributionConfig.ready().

A sync that planned a period to ingest enqueues the ingest and then the sync's bookkeeping for
that period, and a sync queued from the page or the API enqueues its task, each once the sender's
transaction commits.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from attribution.connectors.tasks import account_sync_task, period_ingest_signature
from attribution.signals import account_sync_requested, period_ingest_requested


@receiver(period_ingest_requested, dispatch_uid="attribution.connectors.period_ingest_enqueue")
def period_ingest_enqueue(
    sender,
    *,
    ingest_run_id: int,
    sync_run_id: int,
    account_id: int,
    billing_period_start: str,
    source_version: str,
    is_final: bool,
    **kwargs,
) -> None:
    # The finish fields are named one by one: the signal machinery adds its own kwargs (`signal`),
    # and everything handed to Celery must be JSON.
    signature = period_ingest_signature(
        ingest_run_id=ingest_run_id,
        sync_run_id=sync_run_id,
        account_id=account_id,
        billing_period_start=billing_period_start,
        source_version=source_version,
        is_final=is_final,
    )
    transaction.on_commit(signature.delay)


@receiver(account_sync_requested, dispatch_uid="attribution.connectors.account_sync_enqueue")
def account_sync_enqueue(sender, *, account_id: int, sync_run_id: int, trigger: str, **kwargs) -> None:
    transaction.on_commit(lambda: account_sync_task.delay(account_id, sync_run_id, trigger))
