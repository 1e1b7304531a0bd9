"""Receivers of the usage capability. Connected from AttributionConfig.ready().

A recorded usage batch enqueues the rollup of the buckets it touched once the batch commits
(the signal is sent inside the batch's transaction, so a rolled-back batch enqueues nothing).
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from attribution.signals import usage_recorded
from attribution.usage.tasks import usage_rollup_task


@receiver(usage_recorded, dispatch_uid="attribution.usage.rollup_enqueue")
def usage_rollup_enqueue(sender, *, start: str, end: str, **kwargs) -> None:
    transaction.on_commit(lambda: usage_rollup_task.delay(start, end))
