"""Celery tasks of attribution.estimates (thin: take ids and ISO dates, call services).

The task names keep their old module path (`attribution.allocation.tasks.*`), so beat schedules and
messages already queued still find them. Retries only a dropped database connection.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import OperationalError
from psycopg import OperationalError as PsycopgOperationalError

from attribution.estimates import services as estimates

_RETRY = {
    "autoretry_for": (OperationalError, PsycopgOperationalError),
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}
# Days estimated between bills: bills land up to a few days late.
ESTIMATE_WINDOW_DAYS = 7


@shared_task(
    name="attribution.allocation.tasks.estimates_refresh_recent",
    queue="rollup",
    acks_late=True,
    soft_time_limit=600,
    time_limit=660,
    **_RETRY,
)
def estimates_refresh_recent() -> dict:
    """Beat: estimate spend from usage for the last days whose bill has not landed yet."""
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=offset) for offset in range(ESTIMATE_WINDOW_DAYS)]
    result = estimates.estimates_refresh(days=days)
    return {"estimates_written": result.estimates_written, "reconciled": result.reconciled}


@shared_task(
    name="attribution.allocation.tasks.estimates_reconcile_task",
    queue="rollup",
    acks_late=True,
    soft_time_limit=600,
    time_limit=660,
    **_RETRY,
)
def estimates_reconcile_task(account_id: int, days: list[str]) -> int:
    """A bill landed for (account, days): billed replaces estimated there, with the error recorded.
    Runs straight after the ingest (from DailyCost); allocation reconciles again from AllocatedCost."""
    return estimates.estimates_reconcile(
        account_id=account_id, days=[dt.date.fromisoformat(day) for day in days]
    )
