"""When a bill lands (attribution.signals.period_ingested), reconcile the estimates of its days.

Connected from AttributionConfig.ready(). The receiver only enqueues, after the ingest's swap
transaction commits, so the task reads the new DailyCost rows and a rolled-back ingest enqueues
nothing.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.dispatch import receiver

from attribution.signals import period_ingested


@receiver(period_ingested, dispatch_uid="attribution.allocation.estimates_reconcile_on_ingest")
def estimates_reconcile_on_ingest(sender, *, account_id: int, days: list[dt.date], **kwargs) -> None:
    from attribution.estimates.tasks import estimates_reconcile_task

    day_strings = sorted({day.isoformat() for day in days})
    if not day_strings:
        return
    transaction.on_commit(lambda: estimates_reconcile_task.delay(account_id, day_strings))
