"""Receivers of the ingest capability. Connected from AttributionConfig.ready().

Runs a person started (retry, upload: attribution/ingest/manual.py) are enqueued on the existing
ingest task once the sender's transaction commits, so a rolled-back request enqueues nothing.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from attribution.ingest.tasks import ingest_run_execute_task
from attribution.signals import ingest_runs_requested


@receiver(ingest_runs_requested, dispatch_uid="attribution.ingest.runs_enqueue")
def ingest_runs_enqueue(sender, *, run_ids: list[int], **kwargs) -> None:
    for run_id in run_ids:
        transaction.on_commit(lambda run_id=run_id: ingest_run_execute_task.delay(run_id))
