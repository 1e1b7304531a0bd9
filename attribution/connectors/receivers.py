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
def period_ingest_enqueue(sender, *, ingest_run_id: int, **finish) -> None:
    transaction.on_commit(period_ingest_signature(ingest_run_id=ingest_run_id, **finish).delay)


@receiver(account_sync_requested, dispatch_uid="attribution.connectors.account_sync_enqueue")
def account_sync_enqueue(sender, *, account_id: int, sync_run_id: int, trigger: str, **kwargs) -> None:
    transaction.on_commit(lambda: account_sync_task.delay(account_id, sync_run_id, trigger))
