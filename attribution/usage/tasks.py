"""Celery tasks of attribution.usage (thin: take ids, call services).

Rollups are idempotent (delete-then-insert per hour and day), so a redelivered or repeated task is
harmless; only a dropped database connection is worth a retry.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone
from psycopg import OperationalError as PsycopgOperationalError

from attribution.allocation.tasks import allocation_days_task
from attribution.usage import services

_TRANSIENT = (OperationalError, PsycopgOperationalError)
RECENT_WINDOW = dt.timedelta(hours=2)


@shared_task(
    name="attribution.usage.tasks.usage_rollup_task",
    queue="rollup",
    acks_late=True,
    soft_time_limit=600,
    time_limit=660,
    autoretry_for=_TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def usage_rollup_task(start: str, end: str) -> dict[str, int]:
    """Roll up [start, end) (ISO date-times, JSON-safe) into UsageHourly and UsageDaily, then
    re-allocate those days: usage that arrives after a day's bill changes how shared pools split."""
    start_at, end_at = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
    result = services.usage_rollup(start=start_at, end=end_at)
    day, last_day = start_at.astimezone(dt.UTC).date(), end_at.astimezone(dt.UTC).date()
    days = []
    while day <= last_day:
        days.append(day.isoformat())
        day += dt.timedelta(days=1)
    allocation_days_task.delay(None, days)
    return result


@shared_task(
    name="attribution.usage.tasks.usage_rollup_recent",
    queue="rollup",
    acks_late=True,
    soft_time_limit=240,
    time_limit=270,
    autoretry_for=_TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=3,
)
def usage_rollup_recent() -> dict[str, int]:
    """Safety net behind the per-batch rollup: the last two hours, every few minutes (beat)."""
    now = timezone.now()
    return services.usage_rollup(start=now - RECENT_WINDOW, end=now + dt.timedelta(minutes=5))
