"""Celery tasks of the attribution layer: thin, take ids, call a service.

Retries only what may succeed next time: a dropped database connection (psycopg / Django
OperationalError), a period that another run is loading (PeriodBusyError) and a remote source that
could not be read for now (an error marked `transient`), with exponential backoff and jitter.
A bad file (IngestError) is recorded on the run and not retried.
"""

from __future__ import annotations

import datetime as dt
import logging
import random

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from psycopg import OperationalError as PsycopgOperationalError

from attribution.ingest import services, sweep
from attribution.ingest.errors import IngestError, PeriodBusyError

logger = logging.getLogger(__name__)

_TRANSIENT = (OperationalError, PsycopgOperationalError, PeriodBusyError)


@shared_task(
    bind=True,
    name="attribution.tasks.ingest_run_execute_task",
    queue="ingest",
    acks_late=True,
    # A worker killed mid-run redelivers the message; the run's execution lock tells a dead
    # executor from a live one (see services.ingest_run_execute), and a run's attempts are capped
    # (services.INGEST_MAX_ATTEMPTS), so a file that kills its worker cannot loop forever.
    reject_on_worker_lost=True,
    # The broker's visibility timeout is derived from these (config/settings/base.py).
    soft_time_limit=settings.INGEST_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.INGEST_TASK_TIME_LIMIT,
    autoretry_for=_TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def ingest_run_execute_task(self, run_id: int) -> dict:
    try:
        executor = services.executor_describe(f"worker {self.request.hostname or ''}".strip())
        run = services.ingest_run_execute(run_id=run_id, executor=executor)
    except IngestError as error:
        logger.warning("ingest run %s failed: %s", run_id, error)
        return {"run_id": run_id, "state": "failed", "error": str(error)}
    except Exception as error:
        # A remote source that could not be read for now (a connector error marked transient:
        # throttling, 5xx, timeouts): the run went back to pending; retry with backoff and jitter.
        if not getattr(error, "transient", False) or self.request.retries >= self.max_retries:
            raise
        backoff = min(600.0, 5.0 * 2**self.request.retries) * random.uniform(0.5, 1.5)  # noqa: S311
        raise self.retry(exc=error, countdown=max(backoff, getattr(error, "retry_after", None) or 0))
    # Periods found beyond the files' first rows were planned as runs of their own.
    for followup in services.ingest_run_followups(run=run):
        ingest_run_execute_task.delay(followup.pk)
    return {"run_id": run.pk, "state": run.state, "rows_loaded": run.rows_loaded}


@shared_task(
    name="attribution.tasks.storage_sweep_task",
    queue="default",
    ignore_result=True,
    soft_time_limit=600,
    time_limit=660,
)
def storage_sweep_task(collect_tag_sets: bool = False) -> dict:
    """Reap dead ingest runs, drop orphan tables, re-enqueue runs whose work was lost (sweep.py)."""
    report = sweep.storage_sweep(collect_tag_sets=collect_tag_sets)
    for run_id in report.retried + report.requeued:
        ingest_run_execute_task.delay(run_id)
    return report.as_dict()


@shared_task(
    name="attribution.tasks.rollup_daily_cost_task",
    queue="rollup",
    acks_late=True,
    soft_time_limit=1800,
    time_limit=1900,
    autoretry_for=(OperationalError, PsycopgOperationalError),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def rollup_daily_cost_task(account_id: int, billing_period_start: str) -> int:
    """Rebuild DailyCost of one (account, period); the period is an ISO date (JSON-safe)."""
    period = dt.date.fromisoformat(billing_period_start)
    return services.daily_cost_rebuild(account_id=account_id, billing_period_start=period)
