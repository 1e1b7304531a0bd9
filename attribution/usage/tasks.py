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
    """Roll up [start, end) (ISO date-times, JSON-safe) into UsageHourly and UsageDaily."""
    return services.usage_rollup(start=dt.datetime.fromisoformat(start), end=dt.datetime.fromisoformat(end))


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
