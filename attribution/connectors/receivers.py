"""Receivers of the connectors capability. Connected from AttributionConfig.ready().

A sync that planned a period to ingest enqueues the ingest and then the sync's bookkeeping for
that period, once the sync's transaction commits.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from attribution.connectors.tasks import period_ingest_signature
from attribution.signals import period_ingest_requested


@receiver(period_ingest_requested, dispatch_uid="attribution.connectors.period_ingest_enqueue")
def period_ingest_enqueue(sender, *, ingest_run_id: int, **finish) -> None:
    transaction.on_commit(period_ingest_signature(ingest_run_id=ingest_run_id, **finish).delay)
