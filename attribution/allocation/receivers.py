"""Allocation follows every ingest: a new version of a billing period re-allocates the days it
touches. Receivers only enqueue, after the swap's transaction commits (the signal is sent inside
it, so a rolled-back swap enqueues nothing). Connected from AttributionConfig.ready()."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from attribution import signals


@receiver(signals.period_ingested, dispatch_uid="attribution.allocation.after_ingest")
def on_period_ingested(sender: Any, *, account_id: int, days: list, **kwargs: Any) -> None:
    from attribution.allocation.tasks import allocation_run_task

    iso_days = sorted({day.isoformat() for day in days})
    if not iso_days:
        return
    transaction.on_commit(lambda: allocation_run_task.delay(account_id, iso_days))
